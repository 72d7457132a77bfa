import type { ExpressionWriter } from '../limiter/expression';

/**
 * The version of a user's waiting list (`qv` in the user's item): every write that takes an entry
 * out of the list — the admission of its head, a cancel, a purge, an expiry — adds one, in the same
 * write. A request's position can only go down as the version goes up (entries are appended at
 * the end and only removed), so two notices of one request's place are ordered by their versions:
 * the one with the higher version is the newer, whatever order they arrive in. `request_queued`
 * (sent by the Message function from its enqueue write) and `queue_position` (sent by whoever moved
 * the list, from that write) carry it as `queueVersion`, so a client can drop the older one of two
 * notices that crossed (issue 20, finding 13).
 */
import { QUEUE_VERSION_ATTRIBUTE } from '../limiter/item/attributes';

export { QUEUE_VERSION_ATTRIBUTE };

/** Adds one to the list's version, in a write that removes an entry from the list. */
export function bumpQueueVersion(w: ExpressionWriter): void {
  const qv = w.name(QUEUE_VERSION_ATTRIBUTE);
  w.set(`${qv} = if_not_exists(${qv}, ${w.value(0)}) + ${w.value(1)}`);
}

/** A request's place as told: its position and the list version it was computed from. */
export interface ToldPlace {
  readonly position: number;
  /** Absent from a server that predates versions: then only the position can tell. */
  readonly queueVersion?: number;
}

/**
 * Is `next` news about a request whose place was last told as `previous`? Not when it was computed
 * from an older version of the list than `previous` (the two crossed on the way). Without versions
 * (an older server), every notice is news.
 */
export function isNewerPlace(previous: ToldPlace | undefined, next: ToldPlace): boolean {
  if (previous?.queueVersion === undefined || next.queueVersion === undefined) return true;
  return next.queueVersion >= previous.queueVersion;
}
