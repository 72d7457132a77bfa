import { BUSY_RETRY_AFTER_MS } from '../../core/limiter/decide/decisions';

/**
 * Items that stayed busy through every retry: until when, and the last frame (by arrival) that was
 * already waiting behind that decision. Only those frames are refused without a call; a frame that
 * arrives after the verdict asks the store once, without retries.
 */
export class BusyItems {
  private readonly until = new Map<string, { readonly untilMs: number; readonly throughArrival: number }>();
  /** Frames of this instance numbered as they arrive (decide / decideOrQueue). */
  private arrivals = 0;

  constructor(private readonly clock: () => number) {}

  /** Numbers a frame as it arrives. */
  arrive(): number {
    return ++this.arrivals;
  }

  /**
   * What a frame may spend on the item: `refuse` (it was behind a busy verdict still in force),
   * `ask-once` (the verdict is in force but came before it), or `none` (no verdict).
   */
  verdict(key: string, arrival: number): 'refuse' | 'ask-once' | 'none' {
    const marked = this.until.get(key);
    if (marked === undefined || marked.untilMs <= this.clock()) return 'none';
    return arrival <= marked.throughArrival ? 'refuse' : 'ask-once';
  }

  mark(key: string): void {
    this.until.set(key, { untilMs: this.clock() + BUSY_RETRY_AFTER_MS, throughArrival: this.arrivals });
    if (this.until.size > 1000) {
      const now = this.clock();
      for (const [k, { untilMs }] of this.until) if (untilMs <= now) this.until.delete(k);
    }
  }
}
