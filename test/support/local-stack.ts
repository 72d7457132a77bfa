import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { ENV } from '../../lambda/core/resources';
import { signDevToken } from '../../local/dev-tokens';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack';

/**
 * Starts the whole local stack (gateway, handlers, poller) on the run's shared emulators, with a
 * fresh resource prefix, a random port and no echo delay. One per test file: handlers read their
 * configuration once per process, as in Lambda. AWS's timeouts are enforced with AWS's values (the
 * 29 s integration timeout, each function's Timeout); a test about them shrinks them with
 * `{ timeoutScale }` or `{ functionTimeoutsMs }` in `options` (docs/local.md).
 *
 * Time: `{ clockStartMs }` starts the stack's clock at an instant (`LOCAL_CLOCK`), and
 * `advanceStackClock(ms)` (lambda/core/clock.ts) or `POST /local-stack/clock` moves it. The TTL
 * reaper has no timer here (its scans would count as calls through a counting proxy, and a test
 * never waits for a timer): a test of TTL calls `stack.ttlReaper.sweep()` after moving the clock.
 * The run's shared fauxqs lives in vitest's main process, on the machine's clock: a test of FIFO
 * deduplication intervals on the stack's clock starts its own emulators (sqs-fifo-timed.test.ts).
 */
export async function startTestStack(
  environment: Record<string, string> = {},
  options: Partial<LocalStackOptions> = {},
): Promise<LocalStack> {
  return startLocalStack({
    port: 0,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    sqsEndpoint: inject('sqsEndpoint'),
    prefix: `e2e-${randomUUID().slice(0, 8)}`,
    serveWebPage: true,
    ttlSweepIntervalMs: 0,
    // The sweep's minute timer off: a test runs it at the instant it chooses (`stack.runSweep`),
    // and tests that count store calls per decision do not count a sweep that happened to fire.
    runSweep: false,
    ...options,
    environment: {
      [ENV.echoDelayMs]: '0',
      // Every test connects from 127.0.0.1; tests of the per-IP limit set their own.
      [ENV.connectLimitPerMinute]: '10000',
      POWERTOOLS_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      ...environment,
    },
  });
}

/** A fresh user id and a token for it. */
export async function newUser(
  label = 'user',
  tier?: 'free' | 'pro' | 'enterprise',
): Promise<{ userId: string; token: string }> {
  const userId = `${label}-${randomUUID().slice(0, 8)}`;
  return { userId, token: await signDevToken({ userId, tier }) };
}
