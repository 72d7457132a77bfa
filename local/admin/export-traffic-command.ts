import { parseArgs } from 'node:util';
import { CloudWatchLogsServiceException } from '@aws-sdk/client-cloudwatch-logs';
import { isTier } from '../../lambda/core/limiter/tiers';
import { LocalError, UsageError } from '../errors';
import { REQUESTS_PATH, type RequestLogLine } from '../request-log';
import { type TrafficRequest, trafficLine } from '../simulate/traffic';
import { callLocalStack, type Io, isLocalCommand, usageFailure } from './local-command';
import { StackOutputError } from './stack-outputs';
import { type QueryWait, readStackRequestLog, StackLogError } from './stack-request-log';

/** `npm run admin -- export-traffic [--since 1d] [--stack NAME [--region R]]`: the flags it takes. */
const EXPORT_OPTIONS = {
  since: { type: 'string' },
  endpoint: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  function: { type: 'string' },
} as const;

/** Is this command line `export-traffic …`? */
export const isExportTrafficCommand = (argv: readonly string[]) =>
  isLocalCommand(argv, 'export-traffic', EXPORT_OPTIONS);

const UNITS_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30m`, `12h`, `1d`: a look-back in ms. */
export function parseSince(text: string): number {
  const m = /^(\d+)([mhd])$/.exec(text);
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--since: a duration like 30m, 12h or 1d, got "${text}"`);
  return Number(m[1]) * UNITS_MS[m[2]!]!;
}

/** What an `export-traffic` command line asks for. */
interface ExportRequest {
  readonly sinceMs: number;
  readonly endpoint?: string;
  readonly stack?: string;
  readonly region?: string;
}

/**
 * Writes the traffic of the stack's request log as `npm run simulate` reads it, one request a line,
 * oldest first: each settled request at the time its `sendMessage` line was logged, with the tokens
 * its `request settled` line says it used. The local stack's log by default; with `--stack NAME`,
 * the deployed stack's log groups through CloudWatch Logs Insights (stack-request-log.ts). Requests
 * that never settled (refused, expired, still running) used no tokens and are left out; stderr says
 * how many. Resolves with the exit code: 0 ok, 1 no stack or a failed query, 2 bad input.
 */
export async function runExportTrafficCommand(
  argv: readonly string[],
  io: Io,
  nowMs: () => number = Date.now,
  wait?: QueryWait,
): Promise<number> {
  let request: ExportRequest;
  try {
    request = parseExportArgs(argv);
  } catch (err) {
    return usageFailure(err, io);
  }
  const toMs = nowMs();
  const fromMs = toMs - request.sinceMs;
  const lines =
    request.stack === undefined
      ? await readLocalLog(request.endpoint, io)
      : await readStackLog({ stackName: request.stack, region: request.region, fromMs, toMs }, io, wait);
  if (lines === undefined) return 1;
  const { requests, unsettled } = trafficOf(lines, fromMs);
  for (const r of requests) io.out(trafficLine(r));
  io.err(
    `export-traffic: ${requests.length} settled requests` +
      (unsettled > 0
        ? `; ${unsettled} received but never settled (refused, expired or running) are not in it`
        : ''),
  );
  return 0;
}

function parseExportArgs(argv: readonly string[]): ExportRequest {
  const parsed = parseArgs({
    args: [...argv],
    options: EXPORT_OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const extra = parsed.positionals.slice(1);
  if (extra.length > 0) throw new UsageError(`export-traffic takes no userId: unexpected ${extra.join(' ')}`);
  const { stack, function: fn, region, endpoint, since } = parsed.values;
  if (fn !== undefined)
    throw new UsageError("export-traffic reads the functions' log groups, not a function: use --stack NAME");
  if (stack !== undefined && endpoint !== undefined)
    throw new UsageError('--stack (a deployed stack) and --endpoint (a local one): choose one');
  if (region !== undefined && stack === undefined) throw new UsageError('--region goes with --stack NAME');
  return { sinceMs: since === undefined ? 86_400_000 : parseSince(since), endpoint, stack, region };
}

/** The local stack's request log; undefined (said on stderr) when there is no stack to read. */
async function readLocalLog(endpoint: string | undefined, io: Io): Promise<RequestLogLine[] | undefined> {
  const read = await callLocalStack(endpoint, io, async (target) => {
    const res = await fetch(`${target.httpUrl}${REQUESTS_PATH}`);
    if (!res.ok) throw new LocalError(`the stack's request log answered ${res.status}`);
    return ((await res.json()) as { lines: RequestLogLine[] }).lines;
  });
  return read?.value;
}

/**
 * A deployed stack's request log, and on stderr what the queries scanned (Logs Insights' price is
 * per GB scanned); undefined (said on stderr) when the stack, its outputs or a query failed.
 */
async function readStackLog(
  where: { stackName: string; region?: string; fromMs: number; toMs: number },
  io: Io,
  wait: QueryWait | undefined,
): Promise<RequestLogLine[] | undefined> {
  try {
    const log = await readStackRequestLog({ ...where, warn: io.err, wait });
    const mb = (log.bytesScanned / 1_000_000).toFixed(1);
    io.err(
      `export-traffic: ${log.queries} Logs Insights ${log.queries === 1 ? 'query' : 'queries'}, ${mb} MB scanned`,
    );
    return log.lines;
  } catch (err) {
    if (err instanceof CloudWatchLogsServiceException) {
      io.err(`admin: CloudWatch Logs ${err.name}: ${err.message}`);
      return undefined;
    }
    if (!(err instanceof StackOutputError || err instanceof StackLogError)) throw err;
    io.err(`admin: ${err.message}`);
    return undefined;
  }
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);

/** Joins each `request settled` line with its request's `sendMessage` line (by user and request id). */
export function trafficOf(
  lines: readonly RequestLogLine[],
  fromMs: number,
): { readonly requests: Omit<TrafficRequest, 'line'>[]; readonly unsettled: number } {
  const received = new Map<string, RequestLogLine>();
  const requests: Omit<TrafficRequest, 'line'>[] = [];
  for (const line of lines) {
    const key = `${line.userId}\n${line.requestId}`;
    if (line.message === 'sendMessage') {
      received.set(key, line);
      continue;
    }
    const came = received.get(key);
    if (!came) continue; // its arrival is older than the log: when it came is not known
    received.delete(key);
    const atMs = Date.parse(String(came.timestamp));
    const userId = str(line.userId);
    const tier = isTier(line.tier) ? line.tier : isTier(came.tier) ? came.tier : 'free';
    const [inputTokens, outputTokens] = [num(line.inputTokens), num(line.outputTokens)];
    if (!userId || Number.isNaN(atMs) || inputTokens === undefined || outputTokens === undefined) continue;
    if (atMs < fromMs) continue;
    const team = str(came.team);
    const model = str(line.model) ?? str(came.model);
    requests.push({
      atMs,
      userId,
      tier,
      ...(team ? { team } : {}),
      ...(model ? { model } : {}),
      inputTokens,
      outputTokens,
    });
  }
  // Those still in `received` never settled (or are settling now); counted if in the window.
  const unsettled = [...received.values()].filter((l) => Date.parse(String(l.timestamp)) >= fromMs).length;
  return { requests: requests.sort((a, b) => a.atMs - b.atMs), unsettled };
}
