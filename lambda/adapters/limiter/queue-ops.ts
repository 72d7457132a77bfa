import { describeError } from '../../core/errors';
import type { GlobalWaiter } from '../../core/limiter/global/priority';
import { userIdOf, userKey } from '../../core/limiter/item/attributes';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import {
  isStuckActive,
  planEndStuckActive,
  planEnqueue,
  planPark,
  planRemoveWaiting,
  planTakeover,
} from '../../core/limiter/plan/queue';
import { bindingWait, type GlobalWait } from '../../core/queue/global-eta';
import type { ActiveRequest, QueuedRequest } from '../../core/queue/request';
import type { EnqueueOutcome } from '../../services/ports';
import { MAX_CONTENTION_ROUNDS } from './beliefs';
import type { LimiterContext } from './context';
import {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
  StoreFaultError,
} from './errors';

type Waiting = QueuedRequest & { readonly userId?: string };

/** The user's waiting list and active request on the store: each operation one conditional write. */
export class QueueOps {
  constructor(private readonly ctx: LimiterContext) {}

  /** Appends a request to the user's waiting list (cap and duplicates checked in the same write). */
  enqueue(request: QueuedRequest & { readonly userId: string }, maxQueued: number, nowMs: number) {
    const key = userKey(request.userId);
    return this.ctx.items.lane(key, () => this.enqueueInLane(key, request, maxQueued, nowMs));
  }

  /** {@link enqueue} inside the user's lane (decideOrQueue calls it there). */
  async enqueueInLane(
    key: string,
    request: Waiting,
    maxQueued: number,
    nowMs: number,
  ): Promise<EnqueueOutcome> {
    const ambiguous = { write: false };
    try {
      return await this.ctx.items.withRetries(() =>
        this.enqueueOnItem(key, request, maxQueued, nowMs, ambiguous),
      );
    } catch (err) {
      if (!(err instanceof LimiterBusyError) || !ambiguous.write) throw err;
      // Every retry ran out after a write whose answer was lost: the item says whether the request
      // was queued (then it was, at that position), or not ("busy, nothing was written" is then
      // the truth). Unreadable too: unknown, never told "nothing was written" (issue 20, finding 7).
      const snap = await this.ctx.items
        .withRetries(() => this.ctx.items.read(key))
        .catch((readErr) => {
          if (readErr instanceof LimiterBusyError || readErr instanceof LimiterUnavailableError) {
            throw new LimiterOutcomeUnknownError({ cause: readErr });
          }
          throw readErr;
        });
      const index = snap.waiting.indexOf(request.requestId);
      if (index >= 0 && snap.queued[request.requestId]) return { kind: 'queued', position: index + 1, snap };
      throw err;
    }
  }

  /** One try: rounds of plan-write from the belief; `ambiguous.write` once a write got no answer. */
  private async enqueueOnItem(
    key: string,
    request: Waiting,
    maxQueued: number,
    nowMs: number,
    ambiguous: { write: boolean },
  ): Promise<EnqueueOutcome> {
    const { userId: _userId, ...waiting } = request;
    const { items } = this.ctx;
    for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
      const believed = items.belief(key)?.snap;
      const keepsPolicy = (believed?.policyVersion ?? 0) > 0;
      const sweep = { userId: userIdOf(key), believedAfterEpochMs: believed?.sweepAfterEpochMs };
      let result: Awaited<ReturnType<typeof items.write>>;
      try {
        result = await items.write(
          key,
          planEnqueue({ request: waiting, maxQueued, nowMs, keepsPolicy, sweep }),
        );
      } catch (err) {
        // No answer: the write may have landed; the item will tell on the next round.
        if (err instanceof StoreFaultError && err.mayHaveLanded) ambiguous.write = true;
        throw err;
      }
      const { snap } = result;
      const index = snap.waiting.indexOf(request.requestId);
      if (result.ok || (ambiguous.write && index >= 0 && snap.queued[request.requestId])) {
        return { kind: 'queued', position: index + 1, snap };
      }
      if (snap.queued[request.requestId] || snap.reservations[request.requestId])
        return { kind: 'duplicate' };
      if (snap.waiting.length >= maxQueued) return { kind: 'full', queued: snap.waiting.length };
    }
    throw new LimiterBusyError({ cause: new LimiterStoreError('enqueue contention outlasted every round') });
  }

  /** Takes a waiting request out of the list, with its data (cancel, purge, expiry). */
  removeWaiting(userId: string, requestId: string): Promise<{ removed: boolean; snap: LimiterSnapshot }> {
    return this.ctx.items.update<{ removed: boolean; snap: LimiterSnapshot }>(
      userKey(userId),
      'read',
      (snap) => {
        const index = snap.waiting.indexOf(requestId);
        if (index < 0) return { done: { removed: false, snap } };
        return {
          plan: planRemoveWaiting(requestId, index),
          after: (result) => (result.ok ? { removed: true, snap: result.snap } : undefined),
        };
      },
      'removal contention outlasted every round',
    );
  }

  /**
   * Takes over the active request of a crashed attempt whose lease lapsed (or, `endsLease`, ends
   * the lease of a hand-off that failed), moving its in-flight slot with the lease.
   */
  takeOver(
    userId: string,
    active: ActiveRequest,
    leaseUntilEpochMs: number,
    options: { readonly endsLease?: boolean } = {},
  ): Promise<{ ok: boolean; snap: LimiterSnapshot; full?: boolean }> {
    return this.ctx.items.update<{ ok: boolean; snap: LimiterSnapshot; full?: boolean }>(
      userKey(userId),
      'belief',
      (belief) => {
        const nowMs = this.ctx.items.clock();
        const planned = planTakeover({
          active,
          leaseUntilEpochMs,
          belief,
          policy: this.ctx.policyOf(belief, belief.queued[active.requestId]?.claimTier, nowMs),
          nowMs,
          endsLease: options.endsLease,
        });
        if ('full' in planned) return { done: { ok: false, snap: belief, full: true } };
        return { plan: planned, after: (result) => result };
      },
    );
  }

  /**
   * Ends the user's active request if nothing else can (admin `purge-queue`, `reset`): see
   * {@link planEndStuckActive}. Returns its id, or undefined when there was none to end.
   */
  endStuckActive(userId: string): Promise<string | undefined> {
    return this.ctx.items.update<string | undefined>(userKey(userId), 'read', (snap) => {
      const active = snap.active;
      if (!active || !isStuckActive(snap)) return { done: undefined };
      return {
        plan: planEndStuckActive(snap, active),
        after: (result) => (result.ok ? active.requestId : undefined),
      };
    });
  }

  /** Parks the user's wake-up until a reply in flight ends (see {@link planPark}). */
  park(userId: string, receiptHandle: string): Promise<{ ok: boolean }> {
    return this.ctx.items.update(userKey(userId), 'belief', (belief) => ({
      plan: planPark(belief, receiptHandle),
      after: ({ ok }) => ({ ok }),
    }));
  }

  /**
   * Puts the user in line (or refreshes its entry): one write of the user's own line item. Never
   * throws for a store that does not answer the line: the waiter is then not listed this time (it
   * still goes when nobody listed is before it, and writes its entry again on its next look),
   * which is logged.
   */
  async joinGlobalLine(waiter: GlobalWaiter): Promise<void> {
    const { line, items } = this.ctx;
    if (!line) return;
    const nowMs = waiter.seenAtEpochMs ?? items.clock();
    await line
      .register({ ...waiter, seenAtEpochMs: nowMs }, nowMs, this.ctx.priorityUrgentMs)
      .catch((err) => {
        if (!(err instanceof LimiterBusyError || err instanceof LimiterUnavailableError)) throw err;
        this.ctx.onGlobalError?.('join line', describeError(err));
      });
  }

  /**
   * The wait for global capacity of a user's head, or for its team's (`team`: the team in effect),
   * whichever lets it go last, as this instance knows them (no call of its own).
   */
  async globalWait(
    me: Omit<GlobalWaiter, 'limit'>,
    nowMs: number,
    team?: string,
  ): Promise<GlobalWait | undefined> {
    const waits = await Promise.all([
      this.ctx.globalWait?.estimate(me, nowMs),
      team === undefined ? undefined : this.ctx.teams?.waitOf(team)?.estimate(me, nowMs),
    ]);
    return bindingWait(waits, nowMs);
  }

  /** Takes the user's entry out of the global line (one delete of its own line item). */
  async leaveGlobalLine(userId: string): Promise<void> {
    await this.ctx.line?.unregister(userId);
  }

  /**
   * Takes every entry out of the global line that is no longer live: overdue on its waiter's own
   * schedule (the user left: served elsewhere, cancelled, crashed) or past its deadline. The sweep
   * calls it every minute (the head of each line partition; TTL ends the rest). Returns whose
   * entries went.
   */
  async pruneGlobalLine(nowMs: number): Promise<{ readonly removed: readonly string[] }> {
    const { line } = this.ctx;
    return { removed: line ? await line.prune(nowMs) : [] };
  }

  /**
   * Gives back the global shares nothing holds any more (GlobalCounters.releaseOrphans): a share
   * whose decision ended with its outcome unknown and its undo unanswered, or whose settle's
   * release never landed. The sweep calls it every minute. Returns the requests given back.
   */
  async releaseOrphanedGlobalShares(
    nowMs: number,
  ): Promise<{ readonly released: readonly { readonly userId: string; readonly requestId: string }[] }> {
    const { global, teams } = this.ctx;
    const released = global ? await global.releaseOrphans(nowMs) : [];
    // Every team's shards too: the teams the configuration names or the index has seen.
    for (const team of teams ? await teams.known() : []) {
      released.push(...((await teams!.of(team)?.releaseOrphans(nowMs)) ?? []));
    }
    return { released };
  }
}
