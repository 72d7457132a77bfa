import type { AdminResponse, HealthReport } from '../../lambda/core/admin';
import type { AuditReport } from '../../lambda/core/queue/audit';

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

/** How `usage` says where the tier in effect comes from (SPEC §9.5). */
const TIER_SOURCES: Readonly<Record<string, string>> = {
  record: 'set by an admin',
  'last token': 'from the last token seen',
  token: "the token's claim",
  default: 'default: no record, no token seen',
};

/** Human output of one admin answer: what changed, the override in force, and each limit. */
export function renderAdminResponse(response: AdminResponse, nowMs: number): string {
  if (!response.ok) return `error: ${response.error.code}: ${response.error.message}`;
  const result = response.result as {
    known?: boolean;
    purged?: string[];
    history?: DayRow[];
    override?: OverrideView | null;
    tierSource?: string;
    team?: { name: string; source: string; limits: { name: string; limit: number; used: number }[] };
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
    const source = result.tierSource ? ` (${TIER_SOURCES[result.tierSource] ?? result.tierSource})` : '';
    lines.push(`tier: ${result.status.tier}${source}   queued: ${result.status.queue.queued}`);
    // Older admin functions do not report the override at all (undefined): say nothing then.
    if (result.override !== undefined) lines.push(`override: ${renderOverride(result.override, nowMs)}`);
    if (result.team) {
      const totals = result.team.limits.map((l) => `${l.name} ${l.used} of ${l.limit}`).join(', ');
      lines.push(
        `team: ${result.team.name} (${TIER_SOURCES[result.team.source]})${totals ? `   ${totals}` : ''}`,
      );
    }
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

export interface TopResult {
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

/** What `team-usage` answers. */
export interface TeamUsageResult {
  readonly team: string;
  readonly limits: readonly { name: string; limit: number; used: number; unit: string; resetAt?: number }[];
  readonly members?: TopResult['users'];
}

/** Human output of `team-usage`: the team's limits' totals, then its members' usage today. */
export function renderTeamUsage(usage: TeamUsageResult, nowMs: number): string {
  const lines = [`team ${usage.team}`];
  if (usage.limits.length === 0) lines.push('  team limits: none configured');
  for (const l of usage.limits) {
    const pct = l.limit > 0 ? ` (${Math.round((100 * l.used) / l.limit)} %)` : '';
    lines.push(`  ${l.name.padEnd(24)} ${String(l.used).padStart(12)} of ${l.limit} ${l.unit}${pct}`);
  }
  // The members' table as `top --team` prints it, without its global line.
  const members = renderTop({ by: 'tokens', users: usage.members ?? [] }, nowMs).split('\n');
  lines.push(`members ${members[0]!.slice('top users '.length)}`, ...members.slice(1, -1));
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
