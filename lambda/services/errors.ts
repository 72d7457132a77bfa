import type { ReplyUsage } from '../core/server-messages';

/**
 * The services' errors: a base class every flow-level fault extends, so a handler can tell "a
 * flow could not finish" from a rule's refusal (a value, never thrown) and from a bug. Each sets
 * its `name` from its class and takes `{ cause }` when it wraps another error.
 */
export class ServiceError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A decision whose write got no answer, may have landed, and could not be confirmed (SPEC §9.1,
 * issue 20 finding 7): nothing is known, so the client must not be told "nothing was counted".
 * The limiter port's `decide` and `decideOrQueue` throw it; what the write may have left ends with
 * its lease.
 */
export class OutcomeUnknownError extends ServiceError {}

/**
 * A wake-up whose receipt handle no longer holds it (SQS `MessageNotInflight`, or a handle SQS no
 * longer knows): its hold ended and it is visible, or received again under a newer handle — its
 * processor is looking, or about to. The queue port's `defer` throws it.
 */
export class WakeUpNotHeldError extends ServiceError {}

/**
 * The model stopped before its reply was whole. `usage` is what it produced up to then (SPEC §2:
 * a reply cut short is charged what the model produced, never more than was reserved); nothing
 * produced means nothing to charge.
 */
export class ReplyInterruptedError extends ServiceError {
  constructor(
    readonly usage: ReplyUsage,
    readonly produced: boolean,
    options: { cause: unknown },
  ) {
    super('the model stopped before the reply was complete', options);
  }
}

/**
 * The reply could not be settled before the runner's time ran out (the store stayed out): what
 * was produced is kept (`ProducedReply`) and the invocation fails, so Lambda's retry of the event
 * (or its on-failure destination, or the processor's takeover) settles it.
 */
export class ReplyNotSettledError extends ServiceError {
  constructor(requestId: string, options?: { cause?: unknown }) {
    super(`the reply to ${requestId} was produced but not settled; it is kept for the next attempt`, options);
  }
}
