import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
import { stackClock } from '../lambda/core/clock';
import { keepDeduplicationOnClock } from './fauxqs-clock';

/** Where the DynamoDB and SQS APIs are served, and how to stop what this process started. */
export interface Emulators {
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  /** Which endpoints are embedded (started here) rather than external. */
  readonly embedded: { readonly dynamodb: boolean; readonly sqs: boolean };
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** Use this DynamoDB-compatible endpoint instead of starting dynalite. */
  readonly dynamodbEndpoint?: string;
  /** Use this SQS-compatible endpoint instead of starting fauxqs. */
  readonly sqsEndpoint?: string;
  /**
   * Keep the embedded DynamoDB's tables on disk in this directory (`DATA_DIR`), so they survive a
   * restart; fauxqs keeps its queues in memory whatever is set. @default in memory
   */
  readonly dataDir?: string;
}

/**
 * Starts dynalite (in-process) and fauxqs on 127.0.0.1 with random ports, unless external
 * endpoints are given. `stop()` closes only what was started here.
 */
export async function startEmulators(options: EmulatorOptions = {}): Promise<Emulators> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const dynamodbEndpoint = options.dynamodbEndpoint ?? (await startEmbeddedDynamo(stops, options.dataDir));
    const sqsEndpoint = options.sqsEndpoint ?? (await startEmbeddedSqs(stops));
    return {
      dynamodbEndpoint,
      sqsEndpoint,
      embedded: { dynamodb: !options.dynamodbEndpoint, sqs: !options.sqsEndpoint },
      stop: () => stopAll(stops),
    };
  } catch (err) {
    await stopAll(stops);
    throw err;
  }
}

async function startEmbeddedDynamo(stops: (() => Promise<void>)[], dataDir?: string): Promise<string> {
  const server = await startDynalite(dataDir);
  stops.push(() => closeServer(server));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startEmbeddedSqs(stops: (() => Promise<void>)[]): Promise<string> {
  // FIFO deduplication intervals on the stack's clock, as AWS keeps them (local/fauxqs-clock.ts).
  await keepDeduplicationOnClock(stackClock);
  const app = buildApp({ logger: false });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  stops.push(() => app.close());
  return url;
}

/**
 * Starts an in-process dynalite with instant table creation, in memory or, given `dataDir`, in a
 * LevelDB store under it (closed with the server).
 */
export async function startDynalite(dataDir?: string): Promise<Server> {
  const path = dataDir === undefined ? undefined : join(dataDir, 'dynamodb');
  if (path) mkdirSync(path, { recursive: true });
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(path ? { path } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

async function stopAll(stops: (() => Promise<void>)[]): Promise<void> {
  await Promise.allSettled(stops.reverse().map((stop) => stop()));
}
