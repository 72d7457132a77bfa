/**
 * A user's stop of a reply being answered (SPEC §9.3): `cancel` runs in the Message function and
 * the model in the reply runner, another function, so the cancel leaves a mark the runner reads
 * while the model streams. The mark is one small item of its own (Requests table), never the
 * user's limiter item: that item is written by every decision, and a stop concerns one request.
 */
export interface StopMarkPort {
  /** Asks the runner of this request to stop (idempotent: a second stop writes the same mark). */
  requestStop(userId: string, requestId: string, nowMs: number): Promise<void>;
  /** Has the user asked to stop this request? One strongly consistent read of one small item. */
  isStopRequested(userId: string, requestId: string): Promise<boolean>;
}

/** Stop marks outlive every lease of the request they name (960 s), then their TTL ends them. */
export const STOP_MARK_LIFE_SECONDS = 3600;
