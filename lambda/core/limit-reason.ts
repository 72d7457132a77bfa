import type { DeniedDecision } from './limiter/decision';
import { parseModelQuotaName } from './limiter/global/model-quotas';
import { isLimitName, type LimitState, limitKind, type RegisteredKind } from './limiter/kinds/registry';

/**
 * A reason a person reads (SPEC §9.3): one sentence naming the limit that holds a request back by
 * its label, its state and when it frees, e.g. "Message rate: 25 of 25 used; one more every 3 s,
 * next at 12:00:03 UTC." Every `request_queued` and every refusal by a limit carries it as
 * `details.reason`; the page and the terminal show it as is. What it says comes from the limit's
 * kind (label, unit, refill), never from its name.
 */
export function limitReason(
  decision: Pick<DeniedDecision, 'limit' | 'limits' | 'policy' | 'queued' | 'quotaLimit' | 'team'>,
  retryAfterMs: number,
  nowMs: number,
  extra?: string,
): string {
  const clause = reasonClause(decision, retryAfterMs, nowMs);
  return `${clause}${extra === undefined ? '' : `; ${extra}`}.`;
}

/** The clause a full queue adds to the reason of the limit that filled it. */
export const queueFullClause = (queued: number, maxQueued: number) =>
  `your queue is full (${queued} of ${maxQueued} waiting)`;

function reasonClause(
  decision: Pick<DeniedDecision, 'limit' | 'limits' | 'policy' | 'queued' | 'quotaLimit' | 'team'>,
  retryAfterMs: number,
  nowMs: number,
): string {
  const { limit } = decision;
  const freesAt = utcInstant(nowMs + Math.max(0, retryAfterMs), nowMs);
  if (isLimitName(limit)) {
    const kind = limitKind(limit);
    const state = decision.limits.find((l) => l.name === limit);
    return `${capitalized(kind.label)}: ${stateOf(kind, state)}; ${whenFrees(kind, decision.policy, freesAt)}`;
  }
  const quota = limit.startsWith('global.') ? parseModelQuotaName(limit.slice('global.'.length)) : undefined;
  if (quota) {
    const per = quota.measure === 'requestsPerMinute' ? 'requests' : 'tokens';
    const of =
      decision.quotaLimit === undefined
        ? ''
        : ` of ${decision.quotaLimit.toLocaleString('en-US')} ${per} a minute`;
    return `The model ${quota.modelId}'s account quota${of} is in use for all users; room again at ${freesAt}`;
  }
  if (limit.startsWith('global.')) {
    const own = limit.slice('global.'.length);
    const label = isLimitName(own) ? limitKind(own).label : own;
    return `${capitalized(label)} for all users: the stack's limit is reached; room again at ${freesAt}`;
  }
  if (limit.startsWith('team.')) {
    const own = limit.slice('team.'.length);
    const label = isLimitName(own) ? limitKind(own).label : own;
    const team = decision.team === undefined ? 'your team' : `team ${decision.team}`;
    return `${capitalized(label)} for ${team}: the team's limit is reached; room again at ${freesAt}`;
  }
  if (limit === 'queue') {
    const ahead =
      decision.queued === 1 ? '1 earlier request waits' : `${decision.queued} earlier requests wait`;
    return `Your ${ahead} first: your requests run in the order you sent them`;
  }
  if (limit === 'busy')
    return `Too many of your requests arrived at once; nothing was counted; try again at ${freesAt}`;
  if (limit === 'unavailable')
    return `The limiter is unavailable; nothing was counted; try again at ${freesAt}`;
  return `Refused (${limit}); try again at ${freesAt}`;
}

function stateOf(kind: RegisteredKind, state: LimitState | undefined): string {
  if (!state) return 'reached';
  return `${amount(kind, state.used)} of ${amount(kind, state.limit)} used`;
}

function whenFrees(kind: RegisteredKind, policy: DeniedDecision['policy'], freesAt: string): string {
  if (kind.waitsFor === 'slot') return `one frees when one of your replies ends`;
  const refill = kind.refill?.(policy);
  if (refill) {
    const more = refill.amount === 1 ? 'one more' : `${amount(kind, refill.amount)} more`;
    return `${more} every ${seconds(refill.everyMs)}, next at ${freesAt}`;
  }
  return `frees at ${freesAt}`;
}

/** An amount in the limit's unit as people write it: 100,000 tokens, $4.50. */
function amount(kind: RegisteredKind, value: number): string {
  if (kind.unit === 'usd') {
    const digits = Math.max(2, Math.min(6, decimals(value)));
    return `$${value.toFixed(digits)}`;
  }
  return value.toLocaleString('en-US');
}

const decimals = (value: number) => (String(value).split('.')[1] ?? '').length;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

const capitalized = (label: string) => label.charAt(0).toUpperCase() + label.slice(1);

/**
 * An instant rounded up to the second (never earlier than the truth), as UTC wall time; with the
 * date when it is not on the same UTC day as `nowMs`.
 */
export function utcInstant(ms: number, nowMs: number): string {
  const at = new Date(Math.ceil(ms / 1000) * 1000).toISOString();
  const sameDay = at.slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10);
  return `${sameDay ? '' : `${at.slice(0, 10)} `}${at.slice(11, 19)} UTC`;
}
