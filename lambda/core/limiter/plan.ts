import { bucketOf, dayNumber, type Evaluation, evaluate, hourNumber, type TokenAsk } from './evaluate';
import { type LimiterSnapshot, RESERVATION_PREFIX } from './snapshot';
import type { LimitPolicy } from './types';

/** An UpdateItem in plain data: the adapter marshals the values and sends it. */
export interface UpdatePlan {
  readonly update: string;
  readonly condition: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

export type QueueMode = 'direct' | 'replay';

export type AdmissionPlan =
  /** The believed state refuses the request (the caller confirms with a fresh read). */
  | { readonly kind: 'reject'; readonly evaluation: Evaluation }
  /** Direct mode: the limits would admit, but the user has requests waiting (no overtaking). */
  | { readonly kind: 'queued-ahead'; readonly evaluation: Evaluation }
  /** Replay mode: the request is neither waiting nor admitted (cancelled or purged). */
  | { readonly kind: 'not-waiting'; readonly evaluation: Evaluation }
  /** Replay mode: a previous delivery already admitted it; the same reservation stands. */
  | {
      readonly kind: 'already-admitted';
      readonly evaluation: Evaluation;
      readonly inputTokens: number;
      readonly outputAllowance: number;
      readonly day: number;
    }
  | {
      readonly kind: 'write';
      readonly evaluation: Evaluation;
      readonly plan: UpdatePlan;
      readonly day: number;
    };

/** How long an idle user's item lives (TTL): every limit it holds is whole again after a day. */
export const ITEM_TTL_SECONDS = 2 * 24 * 3600;
/** Items carrying an admin's tier or override live this long after their last use. */
export const POLICY_TTL_SECONDS = 400 * 24 * 3600;

/**
 * Plans the one conditional UpdateItem that admits a request, from the state the caller
 * *believes* the item is in (its cache, or nothing). DynamoDB expressions have no `max()`, so each
 * counter has two shapes (idle or busy bucket; same or new window) and the belief picks one. Every
 * shape carries a condition that makes it correct whatever the item really holds: if the belief
 * was wrong the write fails as a whole, nothing moves, and the caller re-reads and plans again.
 */
export function planAdmission(args: {
  readonly policy: LimitPolicy;
  readonly belief: LimiterSnapshot;
  readonly ask: TokenAsk;
  readonly requestId: string;
  readonly mode: QueueMode;
  readonly nowMs: number;
}): AdmissionPlan {
  const { policy, belief, ask, requestId, mode, nowMs } = args;
  const evaluation = evaluate(policy, belief, ask, nowMs);
  const day = dayNumber(nowMs);
  const waitingIndex = belief.waiting.indexOf(requestId);
  if (mode === 'replay' && waitingIndex < 0) {
    const pending = belief.reservations[requestId];
    if (pending)
      return {
        kind: 'already-admitted',
        evaluation,
        inputTokens: pending.i,
        outputAllowance: pending.o,
        day: pending.d,
      };
    return { kind: 'not-waiting', evaluation };
  }
  if (evaluation.blocking || !evaluation.reservation) return { kind: 'reject', evaluation };
  if (mode === 'direct' && belief.waiting.length > 0) return { kind: 'queued-ahead', evaluation };

  const w = new ExpressionWriter();
  const now = w.value(nowMs);

  // Policy version: the limits above are the ones in force. An admin change of tier or override
  // bumps `pv`, so a write planned from an older policy fails instead of applying stale limits.
  w.condition(
    belief.pv === 0 ? `attribute_not_exists(${w.name('pv')})` : `${w.name('pv')} = ${w.value(belief.pv)}`,
  );

  // Message bucket (GCRA). Idle (tat ≤ now): restart from now. Busy (now < tat ≤ now + τ): push
  // tat one interval on. Either way tat stays ≤ now + τ + T, so at most `capacity` messages pass
  // back to back and then one per interval, however many writers race.
  const bucket = bucketOf(policy);
  const tat = w.name('tat');
  if (belief.tat === undefined || belief.tat <= nowMs) {
    w.condition(`(attribute_not_exists(${tat}) OR ${tat} <= ${now})`);
    w.set(`${tat} = ${w.value(nowMs + bucket.intervalMs)}`);
  } else {
    w.condition(`(${tat} > ${now} AND ${tat} <= ${w.value(nowMs + bucket.toleranceMs)})`);
    w.set(`${tat} = ${tat} + ${w.value(bucket.intervalMs)}`);
  }

  // Message quotas: count in the current UTC hour and day, even without a quota configured, so a
  // quota set later by an admin applies to what was already sent. Same window: count < limit.
  // New window: only if the stored window is older (another writer may have opened it already).
  const one = w.value(1);
  countWindow(w, 'hw', 'hc', hourNumber(nowMs), belief.hw, policy.hourlyMessages, one);
  countWindow(w, 'dw', 'dc', day, belief.dw, policy.dailyMessages, one);

  // Token budget: the reservation fits what is left today. Same day: used + reserved ≤ budget, so
  // concurrent reservations can never overdraw it. New day: start from this reservation.
  const reserved = evaluation.reservation.reservedTokens;
  const td = w.name('td');
  const tu = w.name('tu');
  if (belief.td === day) {
    w.condition(`${td} = ${w.value(day)} AND ${tu} <= ${w.value(policy.dailyTokens - reserved)}`);
    w.set(`${tu} = ${tu} + ${w.value(reserved)}`);
  } else {
    w.condition(`(attribute_not_exists(${td}) OR ${td} < ${w.value(day)})`);
    w.set(`${td} = ${w.value(day)}`, `${tu} = ${w.value(reserved)}`);
    // Reservations of earlier days no longer matter: drop the markers we know of.
    for (const [id, pending] of Object.entries(belief.reservations)) {
      if (pending.d < day && id !== requestId) w.remove(w.name(`${RESERVATION_PREFIX}${id}`));
    }
  }
  // The pending reservation, so reconcile can refund exactly once (it removes this marker).
  w.set(
    `${w.name(`${RESERVATION_PREFIX}${requestId}`)} = ${w.value({
      d: day,
      i: evaluation.reservation.inputTokens,
      o: evaluation.reservation.outputAllowance,
    })}`,
  );

  // The queue takes part in the same write. Direct: nobody may be waiting (no overtaking).
  // Replay: this request must still be where we believe it is; admitting removes it.
  const waiting = w.name('waiting');
  if (mode === 'direct') {
    w.condition(`(attribute_not_exists(${waiting}) OR size(${waiting}) = ${w.value(0)})`);
  } else {
    w.condition(`${waiting}[${waitingIndex}] = ${w.value(belief.waitingEntries[waitingIndex])}`);
    w.remove(`${waiting}[${waitingIndex}]`);
    const wv = w.name('wv');
    w.set(`${wv} = if_not_exists(${wv}, ${w.value(0)}) + ${one}`);
  }
  // Idle users' items expire; one an admin gave a tier or override (pv > 0, pinned above) is kept.
  const ttlSeconds = belief.pv > 0 ? POLICY_TTL_SECONDS : ITEM_TTL_SECONDS;
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(nowMs / 1000) + ttlSeconds)}`);
  return { kind: 'write', evaluation, plan: w.build(), day };
}

function countWindow(
  w: ExpressionWriter,
  windowAttr: string,
  countAttr: string,
  current: number,
  believed: number | undefined,
  limit: number | undefined,
  one: string,
): void {
  const win = w.name(windowAttr);
  const count = w.name(countAttr);
  if (believed === current) {
    const underLimit = limit === undefined ? '' : ` AND ${count} < ${w.value(limit)}`;
    w.condition(`${win} = ${w.value(current)}${underLimit}`);
    w.set(`${count} = ${count} + ${one}`);
  } else {
    w.condition(`(attribute_not_exists(${win}) OR ${win} < ${w.value(current)})`);
    w.set(`${win} = ${w.value(current)}`, `${count} = ${one}`);
  }
}

/** Collects placeholders so each plan reads like the expression it sends. */
export class ExpressionWriter {
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly conditions: string[] = [];
  private valueCount = 0;

  name(attribute: string): string {
    const existing = Object.entries(this.names).find(([, v]) => v === attribute);
    if (existing) return existing[0];
    const key = `#n${Object.keys(this.names).length}`;
    this.names[key] = attribute;
    return key;
  }

  value(value: unknown): string {
    const key = `:v${this.valueCount++}`;
    this.values[key] = value;
    return key;
  }

  set(...clauses: string[]): void {
    this.sets.push(...clauses);
  }

  remove(...paths: string[]): void {
    this.removes.push(...paths);
  }

  condition(clause: string): void {
    this.conditions.push(clause);
  }

  build(): UpdatePlan {
    const update = [
      this.sets.length ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length ? `REMOVE ${this.removes.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return { update, condition: this.conditions.join(' AND '), names: this.names, values: this.values };
  }
}
