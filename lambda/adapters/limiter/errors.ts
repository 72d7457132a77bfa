import { OutcomeUnknownError } from '../../services/ports';
import { AdapterError } from '../errors';

/**
 * Errors of the limiter's store access (STYLE §7: the adapters' base class, specific subclasses).
 * All but {@link LimiterOutcomeUnknownError} extend `AdapterError`; that one is the services'
 * `OutcomeUnknownError` (the port names it), kept here so `adapters/errors.ts` imports nothing.
 */
export class LimiterStoreError extends AdapterError {}

/** A call got no answer: a timeout, a broken connection, a 5xx. Counts toward the breaker. */
export class StoreFaultError extends LimiterStoreError {
  /**
   * Whether a write may have been applied though no answer came: a timeout or a 5xx (the request
   * may have reached DynamoDB), not a connection refused or reset (it is taken as never read).
   * @default true
   */
  readonly mayHaveLanded: boolean;

  constructor(message: string, options?: { cause?: unknown; mayHaveLanded?: boolean }) {
    super(message, options);
    this.mayHaveLanded = options?.mayHaveLanded ?? true;
  }
}

/** DynamoDB answered with throttling: the item (or table) is hot. An answer, not an outage. */
export class StoreThrottledError extends LimiterStoreError {}

/**
 * One user's item stayed contended, throttled or slow through every retry: nothing was decided,
 * and the request must be queued or refused with a `retryAfter`, never admitted uncounted.
 */
export class LimiterBusyError extends LimiterStoreError {
  constructor(options?: { cause?: unknown }) {
    super('the user item stayed busy through every retry', options);
  }
}

/**
 * A write got no answer, may have landed, and the item could not be read to tell (issue 20,
 * finding 7): the decision is not known, so the client must not be told "nothing was counted".
 * What the write may have left (a reservation, a slot) ends with its lease.
 */
export class LimiterOutcomeUnknownError extends OutcomeUnknownError {
  constructor(options?: { cause?: unknown }) {
    super('a write got no answer and the item could not be read to tell whether it landed', options);
    this.name = 'LimiterOutcomeUnknownError';
  }
}

/** The breaker is open: the store is failing for everyone. The fail policy applies. */
export class LimiterUnavailableError extends LimiterStoreError {
  constructor(options?: { cause?: unknown }) {
    super('the limiter store is unavailable (breaker open)', options);
  }
}
