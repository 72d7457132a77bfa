// What is left of a limit between two `status` answers (issue 23: the gauges stayed stale until
// the next one). Each limit's way of filling again comes from its kind (`LIMIT_REFILLS`, served in
// /limit-labels.js by the local gateway).

/**
 * `limit` (one entry of a `status` frame's `limits`) projected to `nowMs` on the server's clock:
 * a `bucket` gets one unit back per interval (`windowSeconds` × 1000 / `limit`) and is full at
 * `resetAt`; a `window` is whole again once `resetAt` passed; anything else (`slot`: a reply must
 * end) stays as the status said. Never less than the status said.
 */
export function remainingAt(limit, refill, nowMs) {
  if (refill === 'window') return nowMs >= limit.resetAt ? limit.limit : limit.remaining;
  if (refill !== 'bucket') return limit.remaining;
  const intervalMs = (limit.windowSeconds * 1000) / limit.limit;
  if (!(intervalMs > 0)) return limit.remaining;
  // The server's own count: used = ⌈(resetAt − now) / interval⌉ (lambda/core/limiter/kinds).
  const owed = Math.min(limit.limit, Math.max(0, Math.ceil((limit.resetAt - nowMs) / intervalMs - 1e-9)));
  return Math.max(limit.remaining, limit.limit - owed);
}
