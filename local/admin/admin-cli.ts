import { parseArgs } from 'node:util';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { ADMIN_OPERATIONS, type AdminResponse, type HealthReport } from '../../lambda/core/admin';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds';
import type { AuditReport } from '../../lambda/core/queue/audit';
import { FUNCTIONS } from '../../lambda/core/resources';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../aws-clients';
import { localStackNow } from '../clock';
import {
  findLocalStack,
  isConnectionRefused,
  LocalStackNotFoundError,
  type LocalTarget,
  unreachableMessage,
} from '../discovery';
import { isClockCommand, runClockCommand } from './clock-command';
import { readStackOutputs, stackOutput } from './stack-outputs';

export const ADMIN_USAGE = `usage: npm run admin -- <operation> [<userId>] [options]

operations:
  usage <user> [--history [--days N]]   limits, usage and queue (consumes nothing); --history:
                                        per UTC day for the last N days (default 30, at most 35)
  reset <user> --scope messages|tokens|cost|all
  set-tier <user> --tier free|pro|enterprise
  set-override <user> [--messages-per-minute N] [--burst N] [--hourly N] [--daily N]
                      [--daily-tokens N] [--tokens-per-minute N] [--monthly-tokens N]
                      [--daily-cost USD] [--monthly-cost USD] [--concurrent N]
                      [--max-output N]
                      [--shadow NAME[,NAME]]   (limits evaluated and reported, not enforced)
                      [--limits JSON] [--expires 2h|ISO-8601]
  clear-override <user>
  purge-queue <user>                    cancel every queued request (clients are told)
  audit <user>                          check the user's state against the invariants: "ok"
                                        or what is wrong (exit 1 when something is)
  health                                whether the tables, the queue and the DLQ answer, the
                                        DLQ depth and the limiter breaker (exit 1 if unhealthy)
  top [--by tokens|cost|messages] [--limit N]
                                        today's heaviest users (UTC day) and the global totals
                                        against the global limits (default: by tokens, 10)
  clock [--advance DURATION]            local only: the stack's clock (ISO, and its offset from
                                        this machine's); --advance 90s|15m|2h|3d moves it forward
                                        (windows, leases, TTL follow; never backwards). Refused
                                        with --stack: AWS's clock is not moved

target (local by default: the \`npm start\` of this checkout, whatever its PORT):
  --endpoint URL      a local gateway, e.g. http://localhost:3002 (PORT=3002 in the environment
                      does the same); either wins over the running \`npm start\`
  --stack NAME        a deployed stack: the admin function is found from its outputs
  --region R          AWS region of --stack
  --function NAME     invoke this function name or ARN directly
  --json              print the raw JSON response
  -h, --help          this help

exit status: 0 ok, 1 the call failed (function error, stack not reachable), 2 bad input`;

/** A command line the CLI cannot run: the message says what is wrong. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface Target {
  readonly client: LambdaClient;
  readonly functionName: string;
  /** The local stack, when the target is one: for messages when it does not answer. */
  readonly local?: LocalTarget;
}

/** Runs `npm run admin`; resolves with the exit code (0 ok, 1 failed, 2 bad input). */
export async function runAdminCli(
  argv: readonly string[],
  io: { out: (s: string) => void; err: (s: string) => void } = {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  },
): Promise<number> {
  // The stack's clock is the local gateway's, not an admin function's operation.
  if (isClockCommand(argv) && !argv.some((a) => a === '--help' || a === '-h'))
    return runClockCommand(argv, io);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError || isParseArgsError(err))) throw err;
    io.err(`admin: ${(err as Error).message}\n(npm run admin -- --help shows every operation and option)`);
    return 2;
  }
  if (parsed === 'help') {
    io.out(ADMIN_USAGE);
    return 0;
  }
  const { payload, options } = parsed;
  let target: Target;
  try {
    target = await resolveTarget(options);
  } catch (err) {
    if (!(err instanceof LocalStackNotFoundError)) throw err;
    io.err(`admin: ${err.message}`);
    return 1;
  }
  // Locally "now" is the stack's clock (LOCAL_CLOCK, `clock --advance`): expiries and today are on it.
  const nowMs = target.local ? await localStackNow(target.local.httpUrl) : Date.now();
  if (options.expires && payload.expiresAtEpochMs !== undefined)
    payload.expiresAtEpochMs = parseExpiry(options.expires, nowMs);
  let response: InvokeCommandOutput;
  try {
    response = await target.client.send(
      new InvokeCommand({ FunctionName: target.functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
    );
  } catch (err) {
    if (!(target.local && isConnectionRefused(err))) throw err;
    io.err(`admin: ${unreachableMessage(target.local)}`);
    return 1;
  }
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : 'null';
  if (response.FunctionError) {
    io.err(`admin function failed (${response.FunctionError}): ${text}`);
    return 1;
  }
  const result = JSON.parse(text) as AdminResponse;
  if (result.ok && result.operation === 'health') {
    const report = result.result as HealthReport;
    io.out(options.json ? JSON.stringify(result, null, 2) : renderHealthReport(report));
    return report.healthy ? 0 : 1;
  }
  if (result.ok && result.operation === 'audit') {
    const report = result.result as AuditReport;
    io.out(options.json ? JSON.stringify(result, null, 2) : renderAudit(report));
    return report.ok ? 0 : 1;
  }
  if (options.json) io.out(JSON.stringify(result, null, 2));
  else if (result.ok && result.operation === 'top') io.out(renderTop(result.result as TopResult, nowMs));
  else io[result.ok ? 'out' : 'err'](renderAdminResponse(result, nowMs));
  return result.ok ? 0 : 2;
}

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const OPTIONS = {
  scope: { type: 'string' },
  tier: { type: 'string' },
  limits: { type: 'string' },
  'messages-per-minute': { type: 'string' },
  burst: { type: 'string' },
  hourly: { type: 'string' },
  daily: { type: 'string' },
  'max-output': { type: 'string' },
  shadow: { type: 'string' },
  ...Object.fromEntries(LIMIT_KINDS.map((k) => [k.adminFlag.flag, { type: 'string' as const }])),
  expires: { type: 'string' },
  endpoint: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  function: { type: 'string' },
  json: { type: 'boolean', default: false },
  by: { type: 'string' },
  limit: { type: 'string' },
  history: { type: 'boolean' },
  days: { type: 'string' },
} as const;

/** node:util parseArgs reports unknown options and missing values as coded TypeErrors. */
function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
}

/** `set-override` flags and the limit each one sets: each limit kind declares its own. */
const OVERRIDE_FLAGS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(LIMIT_KINDS.map((k) => [k.adminFlag.flag, k.adminFlag.field])),
  burst: 'burst',
  'max-output': 'defaultMaxOutputTokens',
  shadow: 'shadow',
};

/** Options that only mean something to one operation; the rest (target, --json) go with any. */
const OPERATION_FLAGS: Readonly<Record<string, readonly string[]>> = {
  reset: ['scope'],
  'set-tier': ['tier'],
  'set-override': [...Object.keys(OVERRIDE_FLAGS), 'limits', 'expires'],
  top: ['by', 'limit'],
  usage: ['history', 'days'],
};

function parse(argv: readonly string[]): 'help' | { payload: Record<string, unknown>; options: Options } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPTIONS, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals[0] === 'help') return 'help';
  const [operation, userId, ...rest] = positionals;
  if (!operation) throw new UsageError(`an operation is required: ${ADMIN_OPERATIONS.join(', ')}`);
  if (!(ADMIN_OPERATIONS as readonly string[]).includes(operation)) {
    throw new UsageError(`unknown operation: ${operation} (operations: ${ADMIN_OPERATIONS.join(', ')})`);
  }
  if (operation === 'health' || operation === 'top') {
    const extra = [userId, ...rest].filter((a) => a !== undefined);
    if (extra.length > 0) throw new UsageError(`${operation} takes no userId: unexpected ${extra.join(' ')}`);
  } else if (!userId) {
    throw new UsageError(`${operation} needs a userId: npm run admin -- ${operation} alice`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const misplaced = Object.values(OPERATION_FLAGS)
    .flat()
    .filter((flag) => values[flag as keyof typeof values] !== undefined)
    .filter((flag) => !OPERATION_FLAGS[operation]?.includes(flag));
  if (misplaced.length > 0)
    throw new UsageError(`${misplaced.map((f) => `--${f}`).join(', ')} does not apply to ${operation}`);
  const payload: Record<string, unknown> =
    operation === 'health' || operation === 'top' ? { operation } : { operation, userId };
  if (operation === 'usage' && (values.history || values.days !== undefined)) {
    if (!values.history) throw new UsageError('--days goes with --history');
    payload.history = true;
    if (values.days !== undefined) {
      const n = Number(values.days);
      if (!Number.isInteger(n) || n < 1 || n > 35)
        throw new UsageError(`--days: a whole number 1-35, not ${values.days}`);
      payload.days = n;
    }
  }
  if (operation === 'top') {
    if (values.by !== undefined) {
      if (!['tokens', 'cost', 'messages'].includes(values.by))
        throw new UsageError(`--by: tokens, cost or messages, not ${values.by}`);
      payload.by = values.by;
    }
    if (values.limit !== undefined) {
      const n = Number(values.limit);
      if (!Number.isInteger(n) || n < 1 || n > 100)
        throw new UsageError(`--limit: a whole number 1-100, not ${values.limit}`);
      payload.limit = n;
    }
  }
  if (operation === 'reset') payload.scope = values.scope ?? 'all';
  if (operation === 'set-tier') {
    if (!values.tier) throw new UsageError('set-tier needs --tier free|pro|enterprise');
    payload.tier = values.tier;
  }
  if (operation === 'set-override') {
    payload.limits = overrideLimits(values);
    if (values.expires) payload.expiresAtEpochMs = parseExpiry(values.expires, Date.now());
  }
  return { payload, options: values };
}

function overrideLimits(values: Options): Record<string, unknown> {
  let limits: Record<string, unknown> = {};
  if (values.limits) {
    try {
      limits = JSON.parse(values.limits);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new UsageError(`--limits is not JSON (${err.message}): ${values.limits}`);
    }
  }
  for (const [flag, field] of Object.entries(OVERRIDE_FLAGS)) {
    const raw = values[flag as keyof typeof values];
    // Numbers are passed as given; the admin function validates them and names what is wrong.
    if (typeof raw !== 'string') continue;
    // --shadow takes limit names, comma-separated; every other flag a number.
    if (field === 'shadow') limits[field] = raw.split(',').filter(Boolean);
    else limits[field] = Number.isNaN(Number(raw)) ? raw : Number(raw);
  }
  return limits;
}

/** `90s`, `30m`, `2h`, `7d` from now, or an ISO-8601 instant. */
export function parseExpiry(text: string, nowMs: number): number {
  const relative = /^(\d+)(s|m|h|d)$/.exec(text);
  if (relative) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return nowMs + Number(relative[1]) * unit;
  }
  const absolute = Date.parse(text);
  if (Number.isNaN(absolute))
    throw new UsageError(`--expires: not a duration (90s, 30m, 2h, 7d) or an ISO-8601 time: ${text}`);
  return absolute;
}

async function resolveTarget(options: Options): Promise<Target> {
  if (options.stack || (options.function && !options.endpoint)) {
    const client = new LambdaClient({ region: options.region });
    if (options.function) return { client, functionName: options.function };
    return { client, functionName: await adminFunctionFromStack(options.stack!, options.region) };
  }
  const local = findLocalStack({ endpoint: options.endpoint, flag: '--endpoint http://localhost:PORT' });
  const client = new LambdaClient({
    endpoint: local.httpUrl,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    // Nothing listening is not a transient fault here: say so at once rather than after retries.
    maxAttempts: 1,
  });
  return { client, functionName: options.function ?? FUNCTIONS.admin.id, local };
}

/** The admin function of a deployed stack, from its `AdminFunctionName` output. */
export async function adminFunctionFromStack(stackName: string, region: string | undefined): Promise<string> {
  return stackOutput(await readStackOutputs(stackName, region), 'AdminFunctionName', stackName);
}

/** Human output of `audit`: "ok", or one line per broken invariant. */
export function renderAudit(report: AuditReport): string {
  if (report.ok) return `audit ${report.userId}: ok`;
  return [
    `audit ${report.userId}: ${report.findings.length} problem(s)`,
    ...report.findings.map((f) => `  ${f.code}: ${f.message}`),
  ].join('\n');
}

/** The user's current override as the admin function reports it (`null`: none). */
interface OverrideView {
  readonly limits: Record<string, number>;
  readonly expiresAtEpochMs?: number;
}

/** Human output of one admin answer: what changed, the override in force, and each limit. */
export function renderAdminResponse(response: AdminResponse, nowMs: number): string {
  if (!response.ok) return `error: ${response.error.code}: ${response.error.message}`;
  const result = response.result as {
    known?: boolean;
    purged?: string[];
    history?: DayRow[];
    override?: OverrideView | null;
    status?: {
      tier: string;
      limits: { name: string; limit: number; used: number; remaining: number; resetAt: number }[];
      queue: { queued: number };
    };
  };
  const lines = [
    `${response.operation} ${response.userId}: ok${result.known === false ? ' (user not seen before)' : ''}`,
  ];
  if (result.purged)
    lines.push(
      `purged ${result.purged.length} queued request(s)${result.purged.length ? `: ${result.purged.join(', ')}` : ''}`,
    );
  if (result.history) lines.push(...renderHistory(result.history));
  if (result.status) {
    lines.push(`tier: ${result.status.tier}   queued: ${result.status.queue.queued}`);
    // Older admin functions do not report the override at all (undefined): say nothing then.
    if (result.override !== undefined) lines.push(`override: ${renderOverride(result.override, nowMs)}`);
    for (const l of result.status.limits) {
      lines.push(
        `  ${l.name.padEnd(16)} ${String(l.used).padStart(9)} used of ${String(l.limit).padEnd(9)} resets ${new Date(l.resetAt).toISOString()}`,
      );
    }
  }
  return lines.join('\n');
}

interface DayRow {
  readonly date: string;
  readonly messages: number;
  readonly tokens: number;
  readonly costUsd: number;
  readonly queued: number;
}

/** `usage --history` in a terminal: one line per UTC day, a bar of its tokens against the busiest. */
export function renderHistory(days: readonly DayRow[]): string[] {
  const most = Math.max(0, ...days.map((d) => d.tokens));
  const width = 30;
  return [
    most > 0
      ? `usage per UTC day (tokens; bar: against the busiest day, ${most.toLocaleString('en-US')} tokens)`
      : 'usage per UTC day (no tokens used in these days)',
    ...days.map((d) => {
      const bar =
        most > 0 ? '█'.repeat(Math.round((d.tokens / most) * width)) || (d.tokens > 0 ? '▏' : '') : '';
      return `  ${d.date} ${bar.padEnd(width)} ${d.tokens.toLocaleString('en-US').padStart(10)} tok ${String(d.messages).padStart(5)} msg $${d.costUsd.toFixed(6)} ${String(d.queued).padStart(4)} queued`;
    }),
  ];
}

interface TopResult {
  readonly by: 'tokens' | 'cost' | 'messages';
  readonly users: readonly { userId: string; tokens: number; costUsd: number; messages: number }[];
  readonly global?: readonly { name: string; limit: number; used: number; unit: string; resetAt: number }[];
}

/** Human output of `top`: a table of today's heaviest users, then the global totals. */
export function renderTop(top: TopResult, nowMs: number): string {
  const day = new Date(nowMs).toISOString().slice(0, 10);
  const lines = [`top users by ${top.by}, ${day} (UTC)`];
  if (top.users.length === 0) lines.push('  nobody has used anything today');
  else {
    lines.push(
      `  ${'#'.padStart(3)}  ${'user'.padEnd(24)} ${'tokens'.padStart(12)} ${'cost USD'.padStart(12)} ${'messages'.padStart(9)}`,
    );
    top.users.forEach((u, i) => {
      lines.push(
        `  ${String(i + 1).padStart(3)}  ${u.userId.slice(0, 24).padEnd(24)} ${u.tokens.toLocaleString('en-US').padStart(12)} ${u.costUsd.toFixed(6).padStart(12)} ${String(u.messages).padStart(9)}`,
      );
    });
  }
  if (top.global?.length) {
    lines.push('global limits (all users):');
    for (const g of top.global) {
      const pct = g.limit > 0 ? ` (${Math.round((100 * g.used) / g.limit)} %)` : '';
      lines.push(`  ${g.name.padEnd(24)} ${String(g.used).padStart(12)} of ${g.limit} ${g.unit}${pct}`);
    }
  } else lines.push('global limits: none configured');
  return lines.join('\n');
}

/** Human output of `health`: one line per table and queue, then the breaker. */
export function renderHealthReport(report: HealthReport): string {
  const line = (name: string, check: { ok: boolean; latencyMs: number; error?: string }, extra = '') =>
    `  ${name.padEnd(18)} ${check.ok ? 'ok  ' : 'FAIL'} ${`${check.latencyMs} ms`.padStart(7)}${extra}${
      check.error ? `   ${check.error}` : ''
    }`;
  const depth = (d: number | undefined) => (d === undefined ? '' : `   depth ${d}`);
  return [
    `health: ${report.healthy ? 'ok' : 'UNHEALTHY'} (${new Date(report.checkedAtEpochMs).toISOString()})`,
    ...Object.entries(report.tables).map(([name, check]) => line(`table ${name}`, check)),
    ...Object.entries(report.queues).map(([name, check]) => line(`queue ${name}`, check, depth(check.depth))),
    `  limiter breaker    ${report.breaker.state} (as the ${report.breaker.scope} sees it)`,
  ].join('\n');
}

function renderOverride(override: OverrideView | null, nowMs: number): string {
  if (!override) return 'none';
  const limits = Object.entries(override.limits)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
  if (override.expiresAtEpochMs === undefined) return `${limits} (no expiry)`;
  const expires = new Date(override.expiresAtEpochMs).toISOString();
  if (override.expiresAtEpochMs <= nowMs) return `${limits} (expired ${expires}, no longer applies)`;
  return `${limits} (expires ${expires}, in ${formatDuration(override.expiresAtEpochMs - nowMs)})`;
}

/** `1 h 59 min`, `12 min`, `40 s`: the two largest units. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const parts: [number, string][] = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor((seconds % 86_400) / 3_600), 'h'],
    [Math.floor((seconds % 3_600) / 60), 'min'],
    [seconds % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return '0 s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(' ');
}
