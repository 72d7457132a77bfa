/** Types of refill.js: a limit of a `status` frame projected to a later instant. */
export declare function remainingAt(
  limit: { limit: number; remaining: number; resetAt: number; windowSeconds: number },
  refill: 'window' | 'bucket' | 'slot' | undefined,
  nowMs: number,
): number;
