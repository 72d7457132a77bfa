import { statSync } from 'node:fs';
import { resolve } from 'node:path';

/** `npm start`'s setting that keeps the embedded DynamoDB's tables on disk across restarts. */
export const DATA_DIR_ENV = 'DATA_DIR';

/**
 * `DATA_DIR` as an absolute path (undefined: in memory), or why it cannot be used: a path that
 * exists but is not a directory, or an external DynamoDB that keeps its own data.
 */
export function parseDataDir(
  raw: string | undefined,
  dynamodbEndpoint: string | undefined,
): string | undefined | Error {
  if (raw === undefined || raw === '') return undefined;
  if (dynamodbEndpoint)
    return new Error(
      `${DATA_DIR_ENV} keeps the embedded DynamoDB's tables; with DYNAMODB_ENDPOINT set, leave it unset`,
    );
  const path = resolve(raw);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory())
    return new Error(`${DATA_DIR_ENV}: a directory (created if missing), got a file: '${raw}'`);
  return path;
}

/**
 * The banner's line saying where the data lives (SPEC §9.5 "Restarts are honest"): in memory, lost
 * when `npm start` stops, or the tables on disk with the queues still in memory — a request that
 * was waiting when it stopped is woken again by the sweep (every minute) after the restart.
 */
export function storageLine(dataDir: string | undefined, embeddedDynamo: boolean): string {
  if (!embeddedDynamo) return 'storage:   tables in the external DynamoDB; queues as SQS_ENDPOINT keeps them';
  if (dataDir === undefined)
    return `storage:   in memory: usage, tiers and queues are lost when this stops (${DATA_DIR_ENV}=PATH keeps the tables)`;
  return `storage:   tables in ${dataDir} (${DATA_DIR_ENV}); queues in memory: waiting requests are woken again by the sweep`;
}
