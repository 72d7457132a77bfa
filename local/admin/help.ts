import { adminFlagUsage, LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';

/**
 * `set-override`'s flags for the limits, from the limit kinds: a new kind's flag shows up in the
 * help without an edit here. A budget in dollars takes `USD`, every other limit `N`.
 */
function limitFlags(): string[] {
  return [...adminFlagUsage(), '[--burst N]', '[--max-output N]'];
}

/** What `reset --scope` takes: each kind's scope, in the registry's order, and `all`. */
export function resetScopes(): string[] {
  return [...new Set(LIMIT_KINDS.map((k) => k.resetScope)), 'all'];
}

/** Words laid out in lines of at most `width` characters, each line after the first indented. */
function wrap(words: readonly string[], indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

const SET_OVERRIDE = '  set-override <user> ';

/** `npm run admin -- --help`. */
export function adminUsage(): string {
  const overrideIndent = ' '.repeat(SET_OVERRIDE.length);
  return `usage: npm run admin -- <operation> [<userId>] [options]

operations:
  usage <user> [--history [--days N]]   tier in effect and its source, limits, usage and queue
                                        (consumes nothing); --history: per UTC day for the last N
                                        days (default 30, at most 35)
  reset <user> --scope ${resetScopes().join('|')}
                                        frees the scope's limits; today's usage, top and the
                                        history keep what was used
  set-tier <user> --tier free|pro|enterprise
${SET_OVERRIDE}${wrap(limitFlags(), SET_OVERRIDE.length, 96)}
${overrideIndent}[--shadow NAME[,NAME]]   (limits evaluated and reported, not enforced)
${overrideIndent}[--limits JSON] [--expires 2h|ISO-8601]
  clear-override <user>
  purge-queue <user>                    cancel every queued request (clients are told)
  audit <user>                          check the user's state against the invariants: "ok"
                                        or what is wrong (exit 1 when something is)
  health                                whether the tables, the queue and the DLQ answer, the
                                        DLQ depth and the limiter breaker (exit 1 if unhealthy)
  set-team <user> <team> | --clear      the user's team (wins over the token's team claim)
  team-usage <team>                     the team's limits' totals over its members, and its
                                        members' usage today
  top [--by tokens|cost|messages] [--limit N] [--team TEAM]
                                        today's heaviest users (UTC day) and the global totals
                                        against the global limits (default: by tokens, 10);
                                        --team: only that team's members
  clock [--advance DURATION]            local only: the stack's clock (ISO, and its offset from
                                        this machine's); --advance 90s|15m|2h|3d moves it forward
                                        (windows, leases, TTL follow; never backwards). Refused
                                        with --stack: AWS's clock is not moved
  events [--follow]                     local only: the events the stack published (budget
                                        thresholds, repairs, breaker), one line each; --follow
                                        waits for more. In AWS: an EventBridge rule
                                        (docs/operations.md#events)
  export-traffic [--since 1d]           the settled requests of the stack's log as JSON lines for
                                        \`npm run simulate\` (no contents); with --stack, from its
                                        log groups by CloudWatch Logs Insights (billed per GB
                                        scanned: docs/admin.md)

target (local by default: the \`npm start\` of this checkout, whatever its PORT):
  --endpoint URL      a local gateway, e.g. http://localhost:3002 (PORT=3002 in the environment
                      does the same); either wins over the running \`npm start\`
  --stack NAME        a deployed stack: the admin function is found from its outputs
  --region R          AWS region of --stack
  --function NAME     invoke this function name or ARN directly
  --json              print the raw JSON response
  -h, --help          this help

exit status: 0 ok, 1 the call failed (function error, stack not reachable), 2 bad input`;
}
