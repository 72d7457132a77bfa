import { describeError } from '../../core/errors';
import {
  allowedDecision,
  busyDecision,
  failedClosedDecision,
  failedOpenDecision,
  modelRefusedDecision,
} from '../../core/limiter/decide/decisions';
import { landedAdmission } from '../../core/limiter/decide/landed';
import { askOn } from '../../core/limiter/decide/model';
import type { DecideInput, Decision, DeniedDecision } from '../../core/limiter/decision';
import { evaluate } from '../../core/limiter/evaluate';
import { userKey } from '../../core/limiter/item/attributes';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../core/limiter/item/state';
import { modelFor } from '../../core/limiter/policy';
import { ECHO_MODEL } from '../../core/models';
import type { EnqueueAsk, EnqueueOutcome } from '../../services/ports';
import { decideOnStore } from './admission-round';
import { MAX_TRANSIENT_RETRIES } from './beliefs';
import { BusyItems } from './busy-items';
import type { LimiterContext } from './context';
import type { DecideState } from './decide-state';
import {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
} from './errors';
import { teamReservation, undoGlobal, undoShare } from './global-admission';
import type { QueueOps } from './queue-ops';

/**
 * Admission decisions on the store: each in the user's lane, retried while the item is busy, with
 * the fail policy only when the breaker says the store is down for everyone, and a write whose
 * answer was lost resolved by its marker (never "busy, nothing counted" for a write that landed).
 */
export class Admission {
  private readonly busy: BusyItems;

  constructor(
    private readonly ctx: LimiterContext,
    private readonly queue: QueueOps,
  ) {
    this.busy = new BusyItems(ctx.items.clock);
  }

  async decide(input: DecideInput, nowMs: number): Promise<Decision> {
    const key = userKey(input.userId);
    const arrivedAtMs = Math.min(this.ctx.items.clock(), input.seenSinceMs ?? Number.POSITIVE_INFINITY);
    const arrival = this.busy.arrive();
    return this.ctx.items.lane(key, () => this.decideInLane(key, input, nowMs, arrivedAtMs, arrival));
  }

  /**
   * Decides a direct request and, if it is refused and `queueIfDenied` says it may wait, puts it at
   * the end of the user's waiting list — both in the user's lane, so the queue a refusal sees is
   * the one the previous frame left, and a burst over a full queue costs no write at all.
   */
  async decideOrQueue(
    input: DecideInput,
    nowMs: number,
    queueIfDenied: (denied: DeniedDecision) => EnqueueAsk | undefined,
  ): Promise<{ readonly decision: Decision; readonly slot?: EnqueueOutcome }> {
    const key = userKey(input.userId);
    const arrivedAtMs = this.ctx.items.clock();
    const arrival = this.busy.arrive();
    return this.ctx.items.lane(key, async () => {
      const decision = await this.decideInLane(key, input, nowMs, arrivedAtMs, arrival);
      if (decision.allowed) return { decision };
      const ask = queueIfDenied(decision);
      if (!ask) return { decision };
      // The content first: the item the enqueue writes points at it (issue 22).
      if (ask.storeContent && !(await ask.storeContent())) return { decision, slot: { kind: 'unstored' } };
      try {
        return { decision, slot: await this.queue.enqueueInLane(key, ask.request, ask.maxQueued, nowMs) };
      } catch (err) {
        if (err instanceof LimiterBusyError || err instanceof LimiterUnavailableError) {
          return { decision, slot: { kind: 'busy' } };
        }
        throw err;
      }
    });
  }

  private async decideInLane(
    key: string,
    input: DecideInput,
    nowMs: number,
    arrivedAtMs: number,
    arrival: number,
  ): Promise<Decision> {
    const state: DecideState = { ambiguousWrite: false };
    const done = await this.decideHolding(key, input, nowMs, arrivedAtMs, arrival, state).then(
      (decision) => ({ decision }),
      (error: unknown) => ({ error }),
    );
    // Taken from a global shard and then not admitted by the user's own write: given back whole
    // (its message too), so a request refused after all is charged nothing anywhere. A shard that
    // does not answer the give-back may still hold the share: then the outcome is not known, and
    // the client must not be told that nothing was counted (the share ends with its lease).
    // The same for a team's share (SPEC §9.4), taken after the global one.
    const teamUndone = await undoShare(
      this.ctx,
      state.team?.counters,
      input.requestId,
      state.team?.hold ?? {},
    );
    if (
      (state.globalHeld && !(await undoGlobal(this.ctx, input.requestId, state.globalHeld))) ||
      !teamUndone
    ) {
      throw new LimiterOutcomeUnknownError({ cause: 'error' in done ? done.error : undefined });
    }
    if ('error' in done) throw done.error;
    return done.decision;
  }

  private async decideHolding(
    key: string,
    input: DecideInput,
    nowMs: number,
    arrivedAtMs: number,
    arrival: number,
    state: DecideState,
  ): Promise<Decision> {
    const isReplay = input.queue?.mode === 'replay';
    // An item found busy stays so for the retryAfter its refusal told, for the frames that were
    // already behind it in the lane: they are refused the same way without piling more calls onto
    // it. A frame that arrives after that verdict asks the store itself, once, without retries
    // (SPEC §6: "busy" only for an item that is contended, throttled or slow now, never from a
    // memory of an earlier fault; one call is all a frame spends on an item just found busy).
    const verdict = isReplay ? 'none' : this.busy.verdict(key, arrival);
    if (verdict === 'refuse') return this.busyDecision(input, nowMs);
    try {
      const decision = await this.ctx.items.withRetries(
        () => decideOnStore(this.ctx, key, input, nowMs, arrivedAtMs, state),
        verdict === 'ask-once' ? 0 : MAX_TRANSIENT_RETRIES,
      );
      if (decision.allowed) {
        state.globalHeld = undefined;
        state.team = undefined;
      }
      return decision;
    } catch (err) {
      // A write that got no answer may have landed: "busy, nothing counted" only if it did not (a
      // replay that landed is handed off by this delivery, not after its lease).
      if (err instanceof LimiterBusyError && state.ambiguousWrite) {
        return await this.resolveAmbiguous(key, input, nowMs, state, err);
      }
      // A replay must leave the waiting list in the same write that admits it, so it never
      // fails open or closed: the processor tries again later.
      if (isReplay) throw err;
      if (err instanceof LimiterUnavailableError) return this.failed(input, err, nowMs);
      if (err instanceof LimiterBusyError) {
        // A throttled shard is not the user's item: the user's next frame tries again.
        if (!state.globalFailed) this.busy.mark(key);
        return this.busyDecision(input, nowMs);
      }
      throw err;
    }
  }

  /**
   * Every retry ran out after a write whose answer was lost: one more read of the item says whether
   * that write landed (its marker is there: the admission it made, counted once, is the decision)
   * or not (then "busy" is the truth). No answer to the read either: the outcome is unknown, and
   * the decision throws rather than tell the client that nothing was counted.
   */
  private async resolveAmbiguous(
    key: string,
    input: DecideInput,
    nowMs: number,
    state: DecideState,
    busy: LimiterBusyError,
  ): Promise<Decision> {
    let snap: LimiterSnapshot;
    try {
      // One look: the retries already spent the operation's budget of waiting.
      snap = await this.ctx.items.read(key);
    } catch (err) {
      // No answer, throttled, or the breaker open: the store could not say.
      if (err instanceof LimiterStoreError) {
        // The store is down for everyone (the breaker opened, on this read or before it): then the
        // fail policy decides, as for every decision while it is open (SPEC §6) — fail open admits
        // uncounted (logged and metered), fail closed refuses as unavailable. A replay neither.
        if (this.ctx.breaker.state === 'open' && input.queue?.mode !== 'replay') {
          return this.failed(input, err, nowMs);
        }
        // Frames behind it in the lane are refused as busy without a call (for them that is true).
        this.busy.mark(key);
        throw new LimiterOutcomeUnknownError({ cause: err });
      }
      throw err;
    }
    const basis = this.ctx.basis(snap, input.claimTier, nowMs);
    const pending = snap.reservations[input.requestId];
    const model =
      this.ctx.models.find((m) => m.id === pending?.model) ??
      modelFor(basis.policy, this.ctx.models, input.model) ??
      ECHO_MODEL;
    const evaluation = evaluate(basis.policy, snap, askOn(input, model), nowMs);
    const landed = landedAdmission(input, snap, evaluation);
    if (!landed) {
      if (input.queue?.mode === 'replay') throw busy;
      this.busy.mark(key);
      return this.busyDecision(input, nowMs);
    }
    const team = teamReservation(state, this.ctx.teams && this.ctx.teamOf(snap, input.claimTeam)?.name);
    const decision = allowedDecision(
      basis,
      input,
      landed,
      { model: model.id, price: model },
      state.globalHeld,
      team,
    );
    state.globalHeld = undefined;
    state.team = undefined;
    return decision;
  }

  /** The user's item stayed busy: refused from what this instance last saw of it. */
  private busyDecision(input: DecideInput, nowMs: number): DeniedDecision {
    const snap = this.ctx.items.belief(userKey(input.userId))?.snap ?? EMPTY_SNAPSHOT;
    return busyDecision(this.ctx.basis(snap, input.claimTier, nowMs), this.ctx.random);
  }

  /** The store is down for everyone (breaker open): the fail policy decides. */
  private failed(input: DecideInput, err: unknown, nowMs: number): Decision {
    const snap = this.ctx.items.belief(userKey(input.userId))?.snap ?? EMPTY_SNAPSHOT;
    const basis = this.ctx.basis(snap, input.claimTier, nowMs);
    if (this.ctx.failPolicy === 'closed') return failedClosedDecision(basis.tier, basis.policy, nowMs);
    const model = modelFor(basis.policy, this.ctx.models, input.model);
    if (!model) return modelRefusedDecision(basis);
    this.ctx.onFailOpen?.(describeError((err as { cause?: unknown }).cause ?? err));
    return failedOpenDecision(input, basis.tier, basis.policy, model, nowMs);
  }
}
