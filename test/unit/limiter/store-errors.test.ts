import { describe, expect, it } from 'vitest';
import { classifyStoreError, describeError } from '../../../lambda/adapters/limiter/user-items';

/** An error as the AWS SDK shapes one: a name, the HTTP status and who was at fault. */
const sdkError = (name: string, status?: number, fault?: 'client' | 'server', code?: string) =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(code ? { code } : {}),
    ...(status !== undefined || fault ? { $metadata: { httpStatusCode: status }, $fault: fault } : {}),
  });

describe('classifyStoreError', () => {
  it('counts a throttle as an answer of the store, whatever its status', () => {
    for (const name of [
      'ThrottlingException',
      'ProvisionedThroughputExceededException',
      'RequestLimitExceeded',
      'TooManyRequestsException',
    ]) {
      expect(classifyStoreError(sdkError(name, 400, 'client'))).toBe('throttled');
    }
  });

  it('counts no answer at all as a fault: timeouts, broken connections, a call that never reached the service', () => {
    expect(classifyStoreError(sdkError('AbortError'))).toBe('fault');
    expect(classifyStoreError(sdkError('AbortError', undefined, 'client'))).toBe('fault');
    expect(classifyStoreError(null)).toBe('fault');
    expect(classifyStoreError(sdkError('TimeoutError', 400, 'client'))).toBe('fault');
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']) {
      expect(classifyStoreError(sdkError('Error', 400, 'client', code))).toBe('fault');
    }
    expect(classifyStoreError(new Error('socket hang up'))).toBe('fault');
    expect(classifyStoreError(undefined)).toBe('fault');
    expect(classifyStoreError('a string')).toBe('fault');
  });

  it('counts a 5xx and the service’s own internal errors as faults, and every other answer as an answer', () => {
    expect(classifyStoreError(sdkError('InternalServerError', 500, 'server'))).toBe('fault');
    expect(classifyStoreError(sdkError('ServiceUnavailable', 503, 'server'))).toBe('fault');
    expect(classifyStoreError(sdkError('SomethingNew', 500, 'server'))).toBe('fault');
    // Named as internal but carried with a 4xx (as emulators do): still no answer.
    expect(classifyStoreError(sdkError('InternalServerError', 400, 'client'))).toBe('fault');
    expect(classifyStoreError(sdkError('ServiceUnavailable', 400, 'client'))).toBe('fault');
    // An answer: the store said no (validation, a missing table, a 499).
    expect(classifyStoreError(sdkError('ValidationException', 400, 'client'))).toBe('other');
    expect(classifyStoreError(sdkError('ResourceNotFoundException', 400, 'client'))).toBe('other');
    expect(classifyStoreError(sdkError('Odd', 499, 'client'))).toBe('other');
    // A status without `$fault`, or `$fault` without a status: it reached the service.
    expect(classifyStoreError({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } })).toBe(
      'other',
    );
    expect(classifyStoreError({ name: 'ValidationException', $fault: 'client' })).toBe('other');
    expect(classifyStoreError({ name: 'ValidationException', $fault: 'client', $metadata: {} })).toBe(
      'other',
    );
    // A code that is not a network one does not make an answer a fault.
    expect(classifyStoreError(sdkError('ValidationException', 400, 'client', 'ValidationError'))).toBe(
      'other',
    );
  });
});

describe('describeError', () => {
  it('names the error and its message, or says what was thrown', () => {
    expect(describeError(sdkError('TimeoutError'))).toBe('TimeoutError: TimeoutError happened');
    expect(describeError('boom')).toBe('boom');
    expect(describeError(42)).toBe('42');
  });
});
