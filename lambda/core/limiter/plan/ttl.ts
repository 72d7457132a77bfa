import { LIMIT_KINDS } from '../kinds/registry';

/** How long an idle user's item lives (TTL) at least: every bucket and daily limit is whole again. */
export const ITEM_TTL_SECONDS = 2 * 24 * 3600;
/** Items carrying an admin's tier or override live this long after their last use. */
export const POLICY_TTL_SECONDS = 400 * 24 * 3600;
/** A lapsed lease's reservation and slot are kept this long for the sweep to repair them. */
export const REPAIR_MARGIN_MS = 3_600_000;

/**
 * The item's TTL (epoch seconds) after a write at `nowMs` that counts in the windows open now and
 * holds state until `holdsUntilEpochMs` (a lease, a queued request's deadline). DynamoDB deletes
 * an item some time after its TTL, so the TTL never precedes the end of any window whose counter
 * the item holds (issue 20, finding 10: the monthly budgets live here, and a 2-day TTL made a
 * spent monthly budget whole after two idle days), nor a lease's end plus the time the sweep
 * needs to repair what it left. Each limit kind with a fixed window declares its end; every
 * write that sets the TTL uses this, so no write lowers it below an open window's end.
 */
export function itemTtlEpochSeconds(args: {
  readonly nowMs: number;
  readonly keepsPolicy: boolean;
  readonly holdsUntilEpochMs?: number;
}): number {
  const { nowMs, keepsPolicy } = args;
  const idle = nowMs + (keepsPolicy ? POLICY_TTL_SECONDS : ITEM_TTL_SECONDS) * 1000;
  const windows = LIMIT_KINDS.map((k) => k.windowEndsAtMs?.(nowMs) ?? nowMs);
  const held = args.holdsUntilEpochMs === undefined ? nowMs : args.holdsUntilEpochMs + REPAIR_MARGIN_MS;
  return Math.ceil(Math.max(idle, held, ...windows) / 1000);
}
