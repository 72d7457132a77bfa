/** Errors of the limiter's store access (STYLE §7: one base class, specific subclasses). */
export class LimiterStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LimiterStoreError';
  }
}

/** A call got no answer: a timeout, a broken connection, a 5xx. Counts toward the breaker. */
export class StoreFaultError extends LimiterStoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreFaultError';
  }
}

/** DynamoDB answered with throttling: the item (or table) is hot. An answer, not an outage. */
export class StoreThrottledError extends LimiterStoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreThrottledError';
  }
}

/**
 * One user's item stayed contended, throttled or slow through every retry: nothing was decided,
 * and the request must be queued or refused with a `retryAfter`, never admitted uncounted.
 */
export class LimiterBusyError extends LimiterStoreError {
  constructor(options?: { cause?: unknown }) {
    super('the user item stayed busy through every retry', options);
    this.name = 'LimiterBusyError';
  }
}

/** The breaker is open: the store is failing for everyone. The fail policy applies. */
export class LimiterUnavailableError extends LimiterStoreError {
  constructor(options?: { cause?: unknown }) {
    super('the limiter store is unavailable (breaker open)', options);
    this.name = 'LimiterUnavailableError';
  }
}
