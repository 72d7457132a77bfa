import { afterEach, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { burst } from '../support/many-users';
import { waitUntil } from '../support/ws-client';

/**
 * SPEC §2 v2 "Global limits" through the local stack: many users at once, real WebSocket clients;
 * the users' own limits are out of the way, so only the global ones bind. (One stack per file:
 * handlers read their configuration once per process; the hourly limit is in global-hourly.test.ts.)
 */
const OPEN = { messagesPerMinute: 6_000, burst: 100 };

describe('global limits, end to end', () => {
  let stack: LocalStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('never has more than 3 replies streaming across 8 users, and every queued request is answered once', async () => {
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({
        tiers: { free: OPEN },
        global: { requestsInFlight: 3, shards: 3 },
      }),
      ECHO_DELAY_MS: '40',
    });
    const { ids, all, first, clients } = await burst(stack.wsUrl, 8, 2, 3);
    const accepted = first.filter((f) => f.type === 'message_accepted');
    const queued = first.filter((f) => f.type === 'request_queued');
    expect(accepted.length).toBeLessThanOrEqual(3);
    expect(accepted.length + queued.length).toBe(ids.length);
    await waitUntil(
      () => ids.every((id) => all().some((f) => f.type === 'message_complete' && f.requestId === id)),
      90_000,
    ).catch((err) => {
      const missing = ids.filter(
        (id) => !all().some((f) => f.type === 'message_complete' && f.requestId === id),
      );
      console.error(
        'MISSING',
        missing
          .map(
            (id) =>
              `${id}:${all()
                .filter((f) => f.requestId === id)
                .map((f) => f.type)
                .join(',')}`,
          )
          .join(' '),
      );
      throw err;
    });
    for (const id of ids) {
      expect(all().filter((f) => f.type === 'message_complete' && f.requestId === id)).toHaveLength(1);
    }
    // In flight at any instant, from the stream timings (first chunk to last).
    const spans = ids.map((id) => {
      const chunks = all().filter((f) => f.type === 'chunk' && f.requestId === id);
      return {
        from: Math.min(...chunks.map((c) => c.timestamp)),
        to: Math.max(...chunks.map((c) => c.timestamp)),
      };
    });
    const most = Math.max(
      ...spans.map((s) => spans.filter((o) => o.from <= s.from && s.from <= o.to).length),
    );
    expect(most).toBeLessThanOrEqual(3);
    // Nothing stays counted: the settles gave every slot back.
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    expect((status.global as { name: string; used: number; limit: number }[])[0]).toMatchObject({
      name: 'global.requestsInFlight',
      used: 0,
      limit: 3,
    });
    for (const c of clients) c.close();
  }, 120_000);
});
