import type { ExpressionWriter } from '../../expression';
import { type KindSnapshot, storedNumber } from '../kind';

/**
 * What a fixed window holds now against its limit: its count when the stored window is `window`,
 * else 0 — less what a reset freed in it (`freedAttr`, see {@link freeWindow}).
 */
export function countIn(
  snap: KindSnapshot,
  windowAttr: string,
  countAttr: string,
  window: number,
  freedAttr?: string,
): number {
  if (storedNumber(snap, windowAttr) !== window) return 0;
  return (storedNumber(snap, countAttr) ?? 0) - freedOf(snap, freedAttr);
}

const freedOf = (snap: KindSnapshot, freedAttr: string | undefined) =>
  freedAttr === undefined ? 0 : (storedNumber(snap, freedAttr) ?? 0);

/**
 * A reset of an accounting counter (the daily ones `top` and `usage --history` read): the count
 * stays what was used, and the limit is freed by recording it in `freedAttr` — the limit counts
 * only what comes after (issue 23, item 6). `freed` belongs to the stored window: opening the next
 * window removes it ({@link countInWindow}). A count absent frees 0.
 */
export function freeWindow(w: ExpressionWriter, args: { countAttr: string; freedAttr: string }): void {
  w.set(`${w.name(args.freedAttr)} = if_not_exists(${w.name(args.countAttr)}, ${w.value(0)})`);
}

/**
 * A counter in a fixed window, its part of a write: same window (as believed) — `count + amount`
 * under `count <= limit − amount`; a newer window — start it at `amount`, only if the stored one is
 * older (another writer may have opened it). The belief picks the shape; the condition makes it
 * correct whatever the item holds. No limit (unset or shadow): counted without a bound. Used by
 * the quotas and budgets and by the global shards (global.ts). Returns whether it opened the
 * window.
 */
export function countInWindow(
  w: ExpressionWriter,
  args: {
    readonly snap: KindSnapshot;
    readonly windowAttr: string;
    readonly countAttr: string;
    readonly window: number;
    readonly amount: number;
    readonly limit: number | undefined;
    /** Where a reset records what it freed of this window ({@link freeWindow}), if it can. */
    readonly freedAttr?: string;
  },
): boolean {
  const { snap, windowAttr, countAttr, window, amount, limit, freedAttr } = args;
  const win = w.name(windowAttr);
  const count = w.name(countAttr);
  if (storedNumber(snap, windowAttr) === window) {
    // count − freed + amount ≤ limit. A reset since this belief only raised `freed` (it records the
    // count, which never falls below it): the believed `freed` makes the bound stricter, never looser.
    const bound = limit === undefined ? undefined : limit + freedOf(snap, freedAttr) - amount;
    const fits = bound === undefined ? '' : ` AND ${count} <= ${w.value(bound)}`;
    w.condition(`${win} = ${w.value(window)}${fits}`);
    w.set(`${count} = ${count} + ${w.value(amount)}`);
    return false;
  }
  w.condition(`(attribute_not_exists(${win}) OR ${win} < ${w.value(window)})`);
  w.set(`${win} = ${w.value(window)}`, `${count} = ${w.value(amount)}`);
  // What a reset freed belonged to the window that ends here.
  if (freedAttr !== undefined) w.remove(w.name(freedAttr));
  return true;
}

/**
 * A settle's part in a window counter (issue 20, finding 5): a refund (`amount` > 0) goes to the
 * window it was taken from, or nowhere — into the count only while the item still holds the
 * reservation's own window (`win = :w`), whatever the settling clock or the belief's age; once
 * another window was opened (or a reset removed it), nowhere, and that is pinned too
 * (`win <> :w`), so a belief that lags behind the reservation fails the write and the settle
 * reads again instead of dropping a refund that was due. A charge (`amount` < 0) goes only into
 * the window open now (`currentWindow`), pinned to the count it was capped from.
 */
export function settleInWindow(
  w: ExpressionWriter,
  args: {
    readonly snap: KindSnapshot;
    readonly windowAttr: string;
    readonly countAttr: string;
    /** The window the reservation was counted in (from its marker). */
    readonly window: number | undefined;
    readonly currentWindow: number;
    readonly amount: number;
  },
): void {
  const { snap, windowAttr, countAttr, window, amount } = args;
  if (amount === 0 || window === undefined) return;
  if (amount < 0 && window !== args.currentWindow) return;
  const win = w.name(windowAttr);
  if (storedNumber(snap, windowAttr) !== window) {
    w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(window)})`);
    return;
  }
  const used = w.name(countAttr);
  w.condition(`${win} = ${w.value(window)}`);
  if (amount > 0) {
    w.set(`${used} = ${used} - ${w.value(amount)}`);
  } else {
    w.condition(`${used} = ${w.value(countIn(snap, windowAttr, countAttr, window))}`);
    w.set(`${used} = ${used} + ${w.value(-amount)}`);
  }
}
