import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceStackClock, stackClock } from '../../lambda/core/clock';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { burst } from '../support/many-users';
import { type ServerFrame, waitUntil } from '../support/ws-client';

/**
 * SPEC §9.4 "Model quotas" through the local stack: the echo model with an account quota of 5
 * requests a minute, the users' own limits out of the way. The stack's clock starts in a minute
 * (LOCAL_CLOCK) and is moved to 8 s before its end once the stack is up: the burst lands in that
 * minute, and the queued requests' wake-ups (SQS delays, which run on real time) come back when
 * the next one opens.
 */
const START_MS = Date.parse('2026-01-31T10:00:00Z');
const MINUTE_END_MS = Date.parse('2026-01-31T10:01:00Z');

describe('a model account quota, end to end', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack(
      {
        LIMITS_CONFIG: JSON.stringify({
          models: [
            {
              id: 'echo',
              kind: 'echo',
              inputUsdPerMillion: 0.2,
              outputUsdPerMillion: 0.6,
              maxOutputTokens: 100_000,
              accountQuota: { requestsPerMinute: 5 },
            },
          ],
          tiers: { free: { messagesPerMinute: 6_000, burst: 100 } },
        }),
      },
      { clockStartMs: START_MS },
    );
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('admits exactly 5 of a burst in the minute, queues the rest with their positions, and admits them when the next minute opens', async () => {
    advanceStackClock(MINUTE_END_MS - 8_000 - stackClock());
    const { ids, first, all, clients } = await burst(stack.wsUrl, 2, 1, 5);
    const accepted = first.filter((f) => f.type === 'message_accepted');
    const queued = first.filter((f) => f.type === 'request_queued');
    expect(accepted).toHaveLength(5);
    expect(queued).toHaveLength(5);
    // Queued, not failed: none refused, each told its place in its user's queue and why it waits.
    expect(first.filter((f) => f.type === 'error')).toEqual([]);
    for (const f of queued) {
      expect(f.position).toBeGreaterThanOrEqual(1);
      // Every queued request, the ones behind its user's first too, is told it waits at least
      // until the minute ends: nothing runs on the model before then.
      expect(f.estimatedWaitTime).toBeGreaterThanOrEqual(
        Math.floor((MINUTE_END_MS - Number(f.timestamp)) / 1000),
      );
      expect(String((f.details as { reason?: string } | undefined)?.reason)).toMatch(
        /^(The model echo's account quota of 5 requests a minute is in use for all users; room again at 10:01:00 UTC|Your \d earlier requests? waits? first: your requests run in the order you sent them)/,
      );
    }
    // Every request is answered once; the queued ones start when the next minute opens.
    const complete = (id: string) => all().filter((f) => f.type === 'message_complete' && f.requestId === id);
    await waitUntil(() => ids.every((id) => complete(id).length > 0), 90_000);
    for (const id of ids) expect(complete(id)).toHaveLength(1);
    const startedAt = (id: string) =>
      Math.min(
        ...all().flatMap((f: ServerFrame) => (f.type === 'chunk' && f.requestId === id ? [f.timestamp] : [])),
      );
    for (const f of accepted) expect(startedAt(String(f.requestId))).toBeLessThan(MINUTE_END_MS);
    for (const f of queued) expect(startedAt(String(f.requestId))).toBeGreaterThanOrEqual(MINUTE_END_MS);
    // The new minute holds the 5 that waited: its quota is used up again.
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    expect(status.global).toEqual([
      expect.objectContaining({
        name: 'global.model.echo.requestsPerMinute',
        used: 5,
        limit: 5,
        remaining: 0,
        unit: 'requests',
        resetAt: MINUTE_END_MS + 60_000,
      }),
    ]);
    for (const c of clients) c.close();
  }, 120_000);
});
