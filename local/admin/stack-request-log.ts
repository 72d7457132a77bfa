import {
  CloudWatchLogsClient,
  GetQueryResultsCommand,
  type ResultField,
  StartQueryCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { logGroupOutputName, REQUEST_LOG_FUNCTIONS } from '../../lambda/core/resources';
import { LocalError } from '../errors';
import { REQUEST_LOG_MESSAGES, type RequestLogLine } from '../request-log';
import { readStackOutputs, StackOutputError, stackOutput } from './stack-outputs';

/**
 * A deployed stack's request log (SPEC §9.4): the same two lines the local stack keeps — the message
 * handler's `sendMessage` and the reply runner's `request settled` — read from the two functions'
 * log groups with CloudWatch Logs Insights, with the caller's own credentials
 * (`logs:StartQuery` and `logs:GetQueryResults` on those groups).
 */

/**
 * The fields the export reads, and the only ones the query asks for: ids, tier, team, model and
 * token counts. Powertools writes them at the top level of its JSON line, where Logs Insights
 * discovers them; a message's contents are in no such line, and could not come back if they were.
 */
export const REQUEST_LOG_FIELDS = [
  'timestamp',
  'message',
  'userId',
  'requestId',
  'tier',
  'team',
  'model',
  'inputTokens',
  'outputTokens',
] as const;

/** Rows one query returns at most: Logs Insights QL's largest `limit`, read 10,000 a page. */
export const MAX_ROWS_PER_QUERY = 100_000;
const PAGE_ROWS = 10_000;

/** The Logs Insights query, oldest first (the join needs each arrival before its settle). */
export const REQUEST_LOG_QUERY = [
  `fields @timestamp, ${REQUEST_LOG_FIELDS.join(', ')}`,
  `filter message in [${[...REQUEST_LOG_MESSAGES].map((m) => JSON.stringify(m)).join(', ')}]`,
  'sort @timestamp asc',
  `limit ${MAX_ROWS_PER_QUERY}`,
].join(' | ');

/** How long and how often the export waits on each query. */
export interface QueryWait {
  /** @default 1000 */
  readonly pollMs?: number;
  /** Give up on a query still running after this long (Logs Insights' own limit is 60 min). @default 600_000 */
  readonly maxWaitMs?: number;
  /** @default Date.now */
  readonly nowMs?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface StackRequestLog {
  /** The lines, oldest first, as the local stack's log holds them. */
  readonly lines: RequestLogLine[];
  readonly queries: number;
  /** What Logs Insights charges for: the sum of each query's `bytesScanned`. */
  readonly bytesScanned: number;
}

/** A query that failed, was cancelled or timed out, or ran longer than the export waits. */
export class StackLogError extends LocalError {}

/**
 * Reads the request lines of `[fromMs, toMs]`. Logs Insights takes whole seconds (both ends
 * included) and returns at most {@link MAX_ROWS_PER_QUERY} rows a query: a window that matched
 * more is split into as many parts as it needs and queried again, so nothing is left out unless a
 * single second holds more than that — then `warn` says which second and how many are missing.
 */
export async function readStackRequestLog(options: {
  readonly stackName: string;
  readonly region?: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly warn: (text: string) => void;
  readonly wait?: QueryWait;
}): Promise<StackRequestLog> {
  const { stackName, region, warn } = options;
  const outputs = await readStackOutputs(stackName, region);
  const logGroupNames = REQUEST_LOG_FUNCTIONS.map((key) => {
    const name = logGroupOutputName(key);
    if (!Object.keys(outputs).some((k) => k.startsWith(name)))
      throw new StackOutputError(
        `stack ${stackName} has no ${name} output: it was deployed before export-traffic could read it; deploy it again`,
      );
    return stackOutput(outputs, name, stackName);
  });
  const client = new CloudWatchLogsClient({ region });
  const rows: ResultField[][] = [];
  let [queries, bytesScanned] = [0, 0];
  // Windows still to read, the next one last: read in order, so rows come oldest first.
  const todo: Window[] = [
    { startSec: Math.floor(options.fromMs / 1000), endSec: Math.floor(options.toMs / 1000) },
  ];
  for (let window = todo.pop(); window; window = todo.pop()) {
    const result = await runQuery(client, logGroupNames, window, options.wait ?? {});
    queries += 1;
    bytesScanned += result.bytesScanned;
    // Cut short: fewer rows than matched, at a query's or (where results do not page) a page's end.
    const missing = result.rows.length >= PAGE_ROWS ? result.matched - result.rows.length : 0;
    if (window.endSec > window.startSec && missing > 0) {
      todo.push(...splitWindow(window, result.matched).reverse());
      continue;
    }
    for (const row of result.rows) rows.push(row); // up to 100,000: not as spread arguments
    if (missing > 0)
      warn(
        `export-traffic: ${new Date(window.startSec * 1000).toISOString()} holds ${result.matched} request ` +
          `lines, more than one query returns (${result.rows.length}): ${missing} are not in the export`,
      );
  }
  return { lines: orderedLines(rows), queries, bytesScanned };
}

/** Whole seconds, both included (as StartQuery takes them). */
interface Window {
  readonly startSec: number;
  readonly endSec: number;
}

/**
 * Splits a window that matched `matched` rows into parts that should each hold at most 80 % of a
 * query's rows if the lines are spread evenly (a part that still holds more is split again).
 */
export function splitWindow(window: Window, matched: number): Window[] {
  const seconds = window.endSec - window.startSec + 1;
  const parts = Math.min(seconds, Math.max(2, Math.ceil(matched / (MAX_ROWS_PER_QUERY * 0.8))));
  const windows: Window[] = [];
  for (let i = 0; i < parts; i += 1) {
    const startSec = window.startSec + Math.floor((seconds * i) / parts);
    const endSec = window.startSec + Math.floor((seconds * (i + 1)) / parts) - 1;
    windows.push({ startSec, endSec });
  }
  return windows;
}

async function runQuery(
  client: CloudWatchLogsClient,
  logGroupNames: string[],
  window: Window,
  wait: QueryWait,
): Promise<{ rows: ResultField[][]; matched: number; bytesScanned: number }> {
  const { pollMs = 1000, maxWaitMs = 600_000, nowMs = Date.now } = wait;
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const { queryId } = await client.send(
    new StartQueryCommand({
      logGroupNames,
      startTime: window.startSec,
      endTime: window.endSec,
      queryString: REQUEST_LOG_QUERY,
    }),
  );
  if (!queryId) throw new StackLogError('Logs Insights StartQuery answered without a query id');
  const span = `${new Date(window.startSec * 1000).toISOString()} to ${new Date(window.endSec * 1000 + 999).toISOString()}`;
  const deadline = nowMs() + maxWaitMs;
  let answer = await client.send(new GetQueryResultsCommand({ queryId, maxItems: PAGE_ROWS }));
  while (answer.status === 'Scheduled' || answer.status === 'Running') {
    if (nowMs() >= deadline)
      throw new StackLogError(
        `Logs Insights query ${queryId} (${span}) is still ${answer.status} after ${maxWaitMs / 1000} s: ` +
          'try a shorter --since, or see the query in the CloudWatch console',
      );
    await sleep(pollMs);
    answer = await client.send(new GetQueryResultsCommand({ queryId, maxItems: PAGE_ROWS }));
  }
  if (answer.status !== 'Complete')
    throw new StackLogError(
      `Logs Insights query ${queryId} (${span}) ended ${answer.status ?? 'without a status'}`,
    );
  const rows = [...(answer.results ?? [])];
  // The rest of a large result, a page at a time (the token lasts an hour).
  for (let token = answer.nextToken; token; ) {
    const page = await client.send(
      new GetQueryResultsCommand({ queryId, nextToken: token, maxItems: PAGE_ROWS }),
    );
    if (!page.results?.length) break;
    rows.push(...page.results);
    token = page.nextToken;
  }
  const matched = answer.statistics?.recordsMatched ?? rows.length;
  return {
    rows,
    matched: Math.max(matched, rows.length),
    bytesScanned: answer.statistics?.bytesScanned ?? 0,
  };
}

const COUNTS: ReadonlySet<string> = new Set(['inputTokens', 'outputTokens']);
const KEPT: ReadonlySet<string> = new Set(REQUEST_LOG_FIELDS);

/**
 * One Logs Insights row as the local stack's log holds the line: the request fields only (every
 * value comes back as a string: the token counts are numbers again), its `timestamp` the
 * Powertools line's own, or the event's `@timestamp` (`2026-12-03 18:00:00.000`, UTC) without one.
 */
export function requestLineOf(row: readonly ResultField[]): RequestLogLine {
  const line: Record<string, unknown> = {};
  let eventTime: string | undefined;
  for (const { field, value } of row) {
    if (field === undefined || value === undefined) continue;
    if (field === '@timestamp') eventTime = `${value.replace(' ', 'T')}Z`;
    else if (!KEPT.has(field)) continue;
    else line[field] = COUNTS.has(field) && /^\d+$/.test(value) ? Number(value) : value;
  }
  if (line.timestamp === undefined && eventTime !== undefined) line.timestamp = eventTime;
  return line;
}

/**
 * The rows as lines, oldest first; an arrival before a settle of the same millisecond, so the join
 * (which meets each arrival before its settle) never loses one to a tie.
 */
function orderedLines(rows: readonly ResultField[][]): RequestLogLine[] {
  const rank = (l: RequestLogLine) => (l.message === 'sendMessage' ? 0 : 1);
  return rows
    .map(requestLineOf)
    .map((line) => ({ line, atMs: Date.parse(String(line.timestamp)) || 0 }))
    .sort((a, b) => a.atMs - b.atMs || rank(a.line) - rank(b.line))
    .map(({ line }) => line);
}
