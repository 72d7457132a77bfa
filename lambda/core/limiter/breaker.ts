/**
 * When is the limiter's store "unavailable" (SPEC §6 v2)? Only when it has stopped answering for
 * everyone: a slow store still answers, a throttled or contended item answers (with a refusal),
 * and neither may ever turn the limiter off for the user who is bursting.
 *
 * The breaker (one per function instance) watches every call its limiter makes, for every user:
 *
 *   closed ──(no answer at all for `silenceMs`, ≥ `minFaults` faults in that time, and a probe
 *             of another item gets no answer either)──▶ open
 *   open ──(a probe, at most one every `probeIntervalMs`, gets any answer)──▶ closed
 *
 * The probe before opening is what tells "this user's item is slow" from "the store is down": it
 * reads an item no user writes, so it answers whenever the store answers anyone.
 *
 * An *answer* is anything DynamoDB said, refusals included (ConditionalCheckFailed, throttling,
 * validation). A *fault* is a call that got no answer: a timeout, a dropped connection, a 5xx.
 * While the breaker is closed a fault is retried or refused, never admitted uncounted; only while
 * it is open does the configured fail policy (open or closed) apply.
 */
export interface BreakerOptions {
  /** No answer for this long (with faults in it) opens the breaker. @default 3000 */
  readonly silenceMs?: number;
  /** Faults needed within the silence to open it. @default 3 */
  readonly minFaults?: number;
  /** While open, one call in this interval may try the store. @default 500 */
  readonly probeIntervalMs?: number;
  readonly clock?: () => number;
  /** Told when the state changes (logs). */
  readonly onChange?: (state: BreakerState, detail: { readonly cause?: string }) => void;
}

export type BreakerState = 'closed' | 'open';

export class StoreBreaker {
  private readonly silenceMs: number;
  private readonly minFaults: number;
  private readonly probeIntervalMs: number;
  private readonly clock: () => number;
  private readonly onChange?: BreakerOptions['onChange'];
  private stateNow: BreakerState = 'closed';
  private lastAnswerAtMs: number;
  private faultsSinceAnswer = 0;
  private lastProbeAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: BreakerOptions = {}) {
    this.silenceMs = options.silenceMs ?? 3000;
    this.minFaults = options.minFaults ?? 3;
    this.probeIntervalMs = options.probeIntervalMs ?? 500;
    this.clock = options.clock ?? Date.now;
    this.onChange = options.onChange;
    // A fresh instance has heard nothing yet; it must still see a whole silence before opening.
    this.lastAnswerAtMs = this.clock();
  }

  get state(): BreakerState {
    return this.stateNow;
  }

  /**
   * May a call go to the store now? Always while closed; while open, one probe per interval (the
   * caller applies the fail policy to everything else).
   */
  allowsCall(): boolean {
    if (this.stateNow === 'closed') return true;
    const now = this.clock();
    if (now - this.lastProbeAtMs < this.probeIntervalMs) return false;
    this.lastProbeAtMs = now;
    return true;
  }

  /** The store answered (anything, a refusal included). */
  recordAnswer(): void {
    this.lastAnswerAtMs = this.clock();
    this.faultsSinceAnswer = 0;
    if (this.stateNow === 'open') {
      this.stateNow = 'closed';
      this.onChange?.('closed', {});
    }
  }

  /**
   * A call got no answer. True when the store has now been silent long enough to suspect an
   * outage: the caller probes another item and then calls {@link open} or {@link recordAnswer}.
   */
  recordFault(): boolean {
    this.faultsSinceAnswer++;
    if (this.stateNow === 'open') return false;
    const silentForMs = this.clock() - this.lastAnswerAtMs;
    return silentForMs >= this.silenceMs && this.faultsSinceAnswer >= this.minFaults;
  }

  /** The probe got no answer either: the store is down for everyone. */
  open(cause: string): void {
    if (this.stateNow === 'open') return;
    this.stateNow = 'open';
    this.lastProbeAtMs = this.clock();
    this.onChange?.('open', { cause });
  }
}
