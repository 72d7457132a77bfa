import { describeError } from '../../core/errors';
import { globalRefund } from '../../core/limiter/decide/settle';
import type { TokenReservation } from '../../core/limiter/decision';
import { unusedQuotaTokens } from '../../core/limiter/global/model-quotas';
import type { GlobalReservation } from '../../core/limiter/global/share-record';
import { teamScope } from '../../core/limiter/teams';
import type { SettleOutcome } from '../../services/ports';
import type { LimiterContext } from './context';
import type { GlobalCounters } from './global-counters';
import { forgetSettledCharge } from './global-orphans';

/** Waiters a settle that freed global capacity may try to wake, in line order (the first awake: the next). */
const GLOBAL_WAKE_UP_TRIES = 3;

type Used = {
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
};

/**
 * A settled request's shares of the global counters and of its team's (SPEC §9.4): its slot, and
 * the unused tokens and cost, back to the shard each was taken from, once the user's settle is
 * done — by this call, or by one whose answer was lost. Each release is conditioned on the shard's
 * entry for the request, so it gives back once however many settles come. `remember`: a share
 * stayed held (its shard did not answer); the settle is remembered as landed, so the caller's next
 * reconcile of the request is told the same outcome and gives it back.
 */
export async function releaseShares(
  ctx: LimiterContext,
  args: {
    readonly reservation: TokenReservation;
    readonly used: Used;
    readonly nowMs: number;
    readonly outcome: SettleOutcome;
    readonly team: { readonly name: string; readonly counters?: GlobalCounters } | undefined;
  },
  remember: () => void,
): Promise<SettleOutcome> {
  const { reservation, used, nowMs, outcome, team } = args;
  const parts = [
    ...(ctx.global ? [{ counters: ctx.global, share: reservation.global }] : []),
    ...(team?.counters ? [{ counters: team.counters, share: reservation.team?.share }] : []),
  ];
  let released = false;
  for (const { counters, share } of parts) {
    const result = await releaseOne(ctx, counters, share, reservation, used, nowMs, () => {
      if (outcome.applied) remember();
    });
    if (result === 'unreleased') return { ...outcome, globalUnreleased: true };
    released ||= result === 'released';
  }
  if (!released) return outcome;
  // Every share is back: the charge the settle left for the sweep (`gs_<id>`) goes, so a user's
  // item does not carry one per settle for an hour (issue 22: ~60 bytes each, paid on every
  // write). One more write, only with global or team limits on; if it fails the entry expires.
  if (outcome.applied) {
    const { items, client, tableName } = ctx;
    await forgetSettledCharge(items, client, tableName, reservation.userId, reservation.requestId).catch(
      (err: unknown) => ctx.onGlobalError?.('forget charge', describeError(err)),
    );
  }
  // Capacity freed: wake whoever is first in line for capacity this request held (the stack's, its
  // team's — never a waiter for another team's), and the next few: whom to wake instead when the
  // first is found awake already. Its processor checks its turn.
  const scopes = team?.counters ? [teamScope(team.name)] : [];
  const next = ctx.line
    ? await ctx.line.nextWakeUps(nowMs, ctx.priorityUrgentMs, GLOBAL_WAKE_UP_TRIES, scopes).catch(() => [])
    : [];
  const [first, ...rest] = next.flatMap((w) => (w.wakeUp ? [w.wakeUp] : []));
  if (!first) return outcome;
  return { ...outcome, globalWakeUp: first, ...(rest.length ? { globalWakeUpsAfter: rest } : {}) };
}

/**
 * One share back to its shard. A reservation rebuilt from the user's item (a taken-over or failed
 * queued request) does not say which shard holds it: the shards' entries do (one read each, only
 * then). A shard that does not answer (an outage, throttling past the retries) leaves it held.
 */
async function releaseOne(
  ctx: LimiterContext,
  counters: GlobalCounters,
  share: GlobalReservation | undefined,
  reservation: TokenReservation,
  used: Used,
  nowMs: number,
  onUnreleased: () => void,
): Promise<'released' | 'none' | 'unreleased'> {
  const unreleased = (operation: string) => (err: unknown) => {
    ctx.onGlobalError?.(operation, describeError(err));
    onUnreleased();
    return 'unreleased' as const;
  };
  const taken = share ?? (await counters.find(reservation).catch(unreleased('find')));
  if (taken === 'unreleased') return taken;
  if (!taken) return 'none';
  return counters
    .release(
      reservation.requestId,
      taken,
      {
        ...globalRefund(taken, used.tokens, used.costMicroUsd),
        // A model quota's unused tokens go back to the minute they were counted in, if it is not over.
        quotaTokens: unusedQuotaTokens(taken.quota, counters.limits.models, used, nowMs),
      },
      false,
    )
    .then(() => 'released' as const, unreleased('release'));
}
