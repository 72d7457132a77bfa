import type { DeniedDecision, TokenReservation } from '../../lambda/core/limiter/decision';
import { sharesCapacity } from '../../lambda/core/limiter/global/priority';
import { isLimitName, limitKind } from '../../lambda/core/limiter/kinds/registry';
import type { LimitsConfig } from '../../lambda/core/limiter/policy';
import { teamScope } from '../../lambda/core/limiter/teams';
import { costMicroUsd, FREE_PRICE } from '../../lambda/core/models';
import { estimatedWaitSeconds } from '../../lambda/core/queue/eta';
import { isExpired, type QueuedRequest, queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import { FUNCTIONS } from '../../lambda/core/resources';
import { EventHeap } from './event-heap';
import { MemoryLimiter, type WriteObserver } from './memory-limiter';
import type { SimulationResult } from './result';
import { Tally } from './tally';
import type { TrafficRequest } from './traffic';

/** The product's settings the replay depends on, besides the limits file. */
export interface SimulationSettings {
  /** MAX_QUEUED_PER_USER. @default 10 */
  readonly maxQueuedPerUser?: number;
  /** MAX_QUEUE_WAIT_SECONDS. @default 900 */
  readonly maxQueueWaitSeconds?: number;
  /**
   * How fast a reply is written: a reply of n output tokens takes n / tokensPerSecond seconds
   * (an assumption: the traffic records tokens, not durations). @default 50
   */
  readonly tokensPerSecond?: number;
  /** Sees every write of the in-memory store (a test compares them with DynamoDB's). */
  readonly onWrite?: WriteObserver;
}

/** The in-flight lease of an admitted request (the limiter's default: the reply's timeout + 60 s). */
const LEASE_MS = (FUNCTIONS.reply.timeoutSeconds + 60) * 1000;
/** Reasons of refusals that are not a limit's name. */
export const QUEUE_FULL = 'queue full';
export const EXPIRED = 'expired in queue';
export const MODEL_REFUSED = 'model not allowed for the tier';

type SimEvent =
  | {
      readonly kind: 'settle';
      readonly reservation: TokenReservation;
      readonly used: Used;
      readonly fromQueue: boolean;
    }
  | { readonly kind: 'replay'; readonly userId: string };
interface Used {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * Replays recorded traffic through one limits configuration in simulated time: every request is
 * decided by the limiter's own planners on an in-memory store (MemoryLimiter), queued when the
 * product would queue it, replayed from the user's queue when its limits allow, and settled with
 * what its reply used when the reply would end. Events run in time order; no clock, no sleep.
 */
export function simulate(
  traffic: readonly TrafficRequest[],
  config: LimitsConfig,
  settings: SimulationSettings = {},
): SimulationResult {
  return new Simulation(config, settings).run(traffic);
}

class Simulation {
  private readonly limiter: MemoryLimiter;
  private readonly heap = new EventHeap<SimEvent>();
  private readonly tally = new Tally();
  /** Queued requests, by id: the traffic line each replays. */
  private readonly waiting = new Map<string, TrafficRequest>();
  /** Each user's next scheduled look at their queue. */
  private readonly replayAt = new Map<string, number>();
  /**
   * Users whose queue head waits for a shared slot, in the order they parked, with whose capacity
   * they wait for (undefined: the stack's; `team:<name>`: a team's): a release of a share of it
   * looks at them again.
   */
  private parked = new Map<string, string | undefined>();
  private readonly maxQueued: number;
  private readonly maxWaitSeconds: number;
  private readonly tokensPerSecond: number;

  constructor(config: LimitsConfig, settings: SimulationSettings) {
    this.limiter = new MemoryLimiter(config, settings.onWrite);
    this.maxQueued = settings.maxQueuedPerUser ?? 10;
    this.maxWaitSeconds = settings.maxQueueWaitSeconds ?? 900;
    this.tokensPerSecond = settings.tokensPerSecond ?? 50;
  }

  run(traffic: readonly TrafficRequest[]): SimulationResult {
    let i = 0;
    for (;;) {
      const next = this.heap.peekTime();
      const arrival = traffic[i];
      if (arrival && (next === undefined || arrival.atMs < next)) {
        i++;
        this.arrive(arrival);
      } else if (next !== undefined) {
        const { at, event } = this.heap.pop()!;
        this.handle(event, at);
      } else break;
    }
    return this.tally.result(traffic.length);
  }

  private handle(event: SimEvent, nowMs: number): void {
    if (event.kind === 'settle') {
      const { reservation } = event;
      this.limiter.settle(reservation, event.used, event.fromQueue, nowMs);
      this.serveQueue(reservation.userId, nowMs);
      const team = reservation.team?.share ? reservation.team.name : undefined;
      if (reservation.global || team) this.wakeParked(nowMs, team ? [teamScope(team)] : []);
      return;
    }
    // A look scheduled earlier than the one in force was superseded.
    if (this.replayAt.get(event.userId) !== nowMs) return;
    this.replayAt.delete(event.userId);
    this.serveQueue(event.userId, nowMs);
  }

  private arrive(r: TrafficRequest): void {
    const nowMs = r.atMs;
    const requestId = `r${r.line}`;
    const admission = this.limiter.admit(
      { ...this.askOf(r, requestId), queue: { mode: 'direct' } },
      nowMs + LEASE_MS,
      nowMs,
    );
    if (admission.allowed) {
      this.tally.admitted(r, false, 0);
      this.startReply(r, admission.reservation, false, nowMs);
      return;
    }
    if ('model' in admission) {
      this.tally.refused(r, MODEL_REFUSED);
      return;
    }
    const { decision } = admission;
    if (!this.mayWait(decision, nowMs)) {
      const full = this.maxQueued === 0 || decision.queued >= this.maxQueued;
      this.tally.refused(r, full ? QUEUE_FULL : decision.limit);
      return;
    }
    const request: QueuedRequest = {
      requestId,
      connectionId: 'simulated',
      contentKey: 'simulated',
      model: r.model,
      claimTier: r.tier,
      ...(r.team !== undefined ? { claimTeam: r.team } : {}),
      estimatedInputTokens: r.inputTokens,
      enqueuedAtEpochMs: nowMs,
      expiresAtEpochMs: queueDeadlineEpochMs(nowMs, this.maxWaitSeconds),
    };
    const position = this.limiter.enqueue(r.userId, request, this.maxQueued, nowMs);
    this.waiting.set(requestId, r);
    this.tally.queued(r);
    // The head's wake-up comes when its limit allows it; those behind follow the head.
    if (position === 1) this.schedule(r.userId, nowMs + Math.max(0, decision.retryAfterMs));
  }

  /**
   * May a refused request wait? The product's rule (lambda/services/chat/admit.ts `mayWait`, with
   * `waitSeconds` of services/chat/enqueue.ts), on the core's ETA: not a refusal that cannot wait,
   * not into a full queue, not for longer than MAX_QUEUE_WAIT.
   */
  private mayWait(decision: DeniedDecision, nowMs: number): boolean {
    if (['duplicate', 'unavailable', 'busy', 'model'].includes(decision.limit)) return false;
    if (this.maxQueued === 0 || decision.queued >= this.maxQueued) return false;
    const position = decision.queued + 1;
    const waitSeconds = Math.max(
      estimatedWaitSeconds(position, decision.limits, decision.policy, nowMs),
      Math.ceil(decision.retryAfterMs / 1000),
    );
    return waitSeconds <= this.maxWaitSeconds;
  }

  /**
   * The user's queue, as the processor serves it (services/replay/serve.ts): nothing while a
   * queued request is being answered; an expired head leaves the list; else the head is decided
   * in replay mode and, refused, looked at again when its limit allows (time) or when a slot
   * frees (a settle), and at its deadline at the latest. True: the head parked, waiting for a
   * shared slot.
   */
  private serveQueue(userId: string, nowMs: number): boolean {
    for (;;) {
      const snap = this.limiter.snapOf(userId);
      const head = snap.waiting[0];
      if (snap.active || head === undefined) return false;
      const request = snap.queued[head]!;
      const r = this.waiting.get(head)!;
      if (isExpired(request, nowMs)) {
        this.limiter.removeWaiting(userId, head);
        this.waiting.delete(head);
        this.tally.refused(r, EXPIRED);
        continue;
      }
      const leaseUntilEpochMs = nowMs + LEASE_MS;
      const admission = this.limiter.admit(
        { ...this.askOf(r, head), queue: { mode: 'replay', leaseUntilEpochMs } },
        leaseUntilEpochMs,
        nowMs,
      );
      if (admission.allowed) {
        this.waiting.delete(head);
        this.tally.admitted(r, true, nowMs - request.enqueuedAtEpochMs);
        this.startReply(r, admission.reservation, true, nowMs);
        return false;
      }
      if ('model' in admission)
        throw new Error(`simulate: line ${r.line}: the model was allowed when queued`);
      const { decision } = admission;
      // A kind's limit (its own, or its global part); a model's quota waits for time, not a slot.
      const bound = admission.global ?? decision.limit;
      const limit = isLimitName(bound) ? bound : undefined;
      const waitsForSlot = limit !== undefined && limitKind(limit).waitsFor === 'slot';
      const parks = waitsForSlot && admission.global !== undefined;
      if (parks)
        this.parked.set(userId, admission.team === undefined ? undefined : teamScope(admission.team));
      const retryAt = waitsForSlot ? request.expiresAtEpochMs : nowMs + Math.max(1, decision.retryAfterMs);
      this.schedule(userId, Math.min(retryAt, request.expiresAtEpochMs));
      return parks;
    }
  }

  /**
   * A shared slot freed (the stack's, and with `scopes` a team's): the users parked on one such
   * capacity are looked at in the order they parked, until one finds no slot (then it keeps its
   * place and the rest wait behind it), as a settle wakes the next in line in the product
   * (share-release.ts, services/shared/wake-ups.ts), not everyone; a waiter for another team's
   * capacity is not woken (sharesCapacity).
   */
  private wakeParked(nowMs: number, scopes: readonly string[]): void {
    // Walked in place (a Map iterates in insertion order and survives deletes): a user served and
    // parked again is set again under its own key, which keeps its place — no copy of the line on
    // every settle. Only the user being served can park meanwhile (serveQueue parks no one else).
    for (const [userId, scope] of this.parked) {
      if (!sharesCapacity({ scope }, scopes)) continue;
      if (this.serveQueue(userId, nowMs)) return;
      this.parked.delete(userId);
    }
  }

  private askOf(r: TrafficRequest, requestId: string) {
    return {
      userId: r.userId,
      requestId,
      tier: r.tier,
      team: r.team,
      model: r.model,
      inputTokens: r.inputTokens,
    };
  }

  /** The reply runs for its output at `tokensPerSecond`, capped at the allowance, then settles. */
  private startReply(
    r: TrafficRequest,
    reservation: TokenReservation,
    fromQueue: boolean,
    nowMs: number,
  ): void {
    const used = {
      inputTokens: r.inputTokens,
      outputTokens: Math.min(r.outputTokens, reservation.outputAllowance),
    };
    const price = reservation.price ?? FREE_PRICE;
    this.tally.used(
      used.inputTokens,
      used.outputTokens,
      costMicroUsd(price, used.inputTokens, used.outputTokens),
    );
    const durationMs = Math.ceil((used.outputTokens / this.tokensPerSecond) * 1000);
    this.heap.push(nowMs + durationMs, { kind: 'settle', reservation, used, fromQueue });
  }

  private schedule(userId: string, atMs: number): void {
    const current = this.replayAt.get(userId);
    if (current !== undefined && current <= atMs) return;
    this.replayAt.set(userId, atMs);
    this.heap.push(atMs, { kind: 'replay', userId });
  }
}
