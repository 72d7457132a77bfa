import { parseArgs } from 'node:util';
import { ADMIN_OPERATIONS } from '../../lambda/core/admin';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';
import { UsageError } from '../errors';
import { resetScopes } from './help';

/** A command line the CLI cannot run: the message says what is wrong. */
export { UsageError };

const OPTIONS = {
  scope: { type: 'string' },
  tier: { type: 'string' },
  limits: { type: 'string' },
  burst: { type: 'string' },
  'max-output': { type: 'string' },
  shadow: { type: 'string' },
  // Each limit kind declares its own `set-override` flag.
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
  team: { type: 'string' },
  clear: { type: 'boolean' },
} as const;

export type Options = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

/** A command line the CLI can run: the admin function's payload and the options (target, output). */
export interface ParsedCommand {
  readonly payload: Record<string, unknown>;
  readonly options: Options;
}

/** node:util parseArgs reports unknown options and missing values as coded TypeErrors. */
export function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
}

/** `set-override` flags and the policy field each one sets: each limit kind declares its own. */
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
  top: ['by', 'limit', 'team'],
  usage: ['history', 'days'],
  'set-team': ['clear'],
};

/** Operations whose one positional is not a user: `team-usage TEAM`. */
const TEAM_OPERATIONS: readonly string[] = ['team-usage'];

/** The command line as the admin function's payload; throws {@link UsageError} when it cannot be. */
export function parseCommand(argv: readonly string[]): 'help' | ParsedCommand {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { ...OPTIONS, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals[0] === 'help') return 'help';
  const [operation, userId, ...more] = positionals;
  // `set-team USER TEAM`: the team is the second positional (or --clear).
  const [team, rest] = operation === 'set-team' ? [more[0], more.slice(1)] : [undefined, more];
  checkPositionals(operation, userId, rest);
  checkFlagsApply(operation!, values);
  if (TEAM_OPERATIONS.includes(operation!)) return { payload: { operation, team: userId }, options: values };
  const payload: Record<string, unknown> =
    operation === 'health' || operation === 'top' ? { operation } : { operation, userId };
  if (operation === 'set-team') {
    if ((team === undefined) === !values.clear)
      throw new UsageError(
        'set-team needs a team or --clear: set-team alice research | set-team alice --clear',
      );
    payload.team = team ?? null;
  }
  if (operation === 'usage') Object.assign(payload, historyOptions(values));
  if (operation === 'top') Object.assign(payload, topOptions(values));
  if (operation === 'reset') {
    // The help shows --scope as required: a reset of everything is asked for, never assumed.
    if (!values.scope) throw new UsageError(`reset needs --scope ${resetScopes().join('|')}`);
    payload.scope = values.scope;
  }
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

function checkPositionals(operation: string | undefined, userId: string | undefined, rest: string[]): void {
  if (!operation) throw new UsageError(`an operation is required: ${ADMIN_OPERATIONS.join(', ')}`);
  if (!(ADMIN_OPERATIONS as readonly string[]).includes(operation)) {
    throw new UsageError(`unknown operation: ${operation} (operations: ${ADMIN_OPERATIONS.join(', ')})`);
  }
  if (operation === 'health' || operation === 'top') {
    const extra = [userId, ...rest].filter((a) => a !== undefined);
    if (extra.length > 0) throw new UsageError(`${operation} takes no userId: unexpected ${extra.join(' ')}`);
  } else if (!userId) {
    const example = TEAM_OPERATIONS.includes(operation) ? 'a team: research' : 'a userId: alice';
    throw new UsageError(
      `${operation} needs ${example.split(': ')[0]}: npm run admin -- ${operation} ${example.split(': ')[1]}`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
}

/** An option meant for another operation is a mistake, not something to ignore. */
function checkFlagsApply(operation: string, values: Options): void {
  const misplaced = Object.values(OPERATION_FLAGS)
    .flat()
    .filter((flag) => values[flag as keyof typeof values] !== undefined)
    .filter((flag) => !OPERATION_FLAGS[operation]?.includes(flag));
  if (misplaced.length > 0)
    throw new UsageError(`${misplaced.map((f) => `--${f}`).join(', ')} does not apply to ${operation}`);
}

/** `usage --history [--days N]`. */
function historyOptions(values: Options): Record<string, unknown> {
  if (!values.history && values.days === undefined) return {};
  if (!values.history) throw new UsageError('--days goes with --history');
  if (values.days === undefined) return { history: true };
  return { history: true, days: wholeNumber('--days', values.days, 35) };
}

/** `top [--by tokens|cost|messages] [--limit N]`. */
function topOptions(values: Options): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (values.by !== undefined) {
    if (!['tokens', 'cost', 'messages'].includes(values.by))
      throw new UsageError(`--by: tokens, cost or messages, not ${values.by}`);
    options.by = values.by;
  }
  if (values.limit !== undefined) options.limit = wholeNumber('--limit', values.limit, 100);
  if (values.team !== undefined) options.team = values.team;
  return options;
}

function wholeNumber(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UsageError(`${flag}: a whole number 1-${max}, not ${text}`);
  return n;
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
