/**
 * Sorting what a DynamoDB call threw: an answer (throttled, or a refusal such as a validation
 * error) or a fault (no answer), and, for a fault, whether a write may still have landed.
 */
const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * An answer of the store (`throttled`, or `other`: a refusal such as a validation error) or a
 * `fault` (no answer: a timeout, a broken connection, a 5xx). Conditional-check failures are
 * handled before this by their class.
 */
export function classifyStoreError(err: unknown): 'throttled' | 'fault' | 'other' {
  const e = err as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $fault?: string;
    cause?: unknown;
  };
  if (!e || typeof e !== 'object') return 'fault';
  if (e.name && THROTTLING.has(e.name)) return 'throttled';
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'fault';
  if (e.code && NETWORK_CODES.has(e.code)) return 'fault';
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined && e.$fault === undefined) return 'fault'; // never reached the service
  if (status !== undefined && status >= 500) return 'fault';
  if (e.name === 'InternalServerError' || e.name === 'ServiceUnavailable') return 'fault';
  return 'other';
}

/**
 * Connection errors after which a request is taken as never read by the store: refused, reset or
 * broken before an answer, unresolvable. A timeout (`ETIMEDOUT`, or this limiter's own abort) and a
 * 5xx are not among them: the write may have been applied, and the item must tell (issue 20,
 * finding 7). A reset after the store applied a write is possible but rare next to a timeout; it
 * is the one case taken as not landed, so that a store cut off for everyone still gets `busy`
 * refusals until the breaker opens (SPEC §6).
 */
const NEVER_READ_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export function mayHaveLanded(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return !(code && NEVER_READ_CODES.has(code));
}
