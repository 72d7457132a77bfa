import { afterEach, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient, waitUntil } from '../support/ws-client';

/**
 * SPEC §2 v2 "Global limits" through the local stack: many users at once, real WebSocket clients;
 * the users' own limits are out of the way, so only the global ones bind.
 */
const OPEN = { messagesPerMinute: 6_000, burst: 100 };

describe('global limits, end to end', () => {
  let stack: LocalStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  /** `users` users, `connections` each, `frames` frames each, all sent at once. */
  async function burst(users: number, connections: number, frames: number) {
    const clients: TestClient[] = [];
    const ids: string[] = [];
    for (let u = 0; u < users; u++) {
      const { token } = await newUser(`g${u}`);
      const mine = await Promise.all(
        Array.from({ length: connections }, () => TestClient.connect(stack!.wsUrl, token)),
      );
      clients.push(...mine);
      for (let f = 0; f < frames; f++) ids.push(`u${u}-f${f}`);
    }
    for (const [i, id] of ids.entries()) {
      const user = Math.floor(i / frames);
      clients[user * connections + (i % connections)]!.send({
        action: 'sendMessage',
        requestId: id,
        message: `one two three four ${id}`,
      });
    }
    const all = () => clients.flatMap((c) => c.frames);
    const first = new Map<string, ServerFrame>();
    await waitUntil(() => {
      for (const f of all()) {
        const id = String(f.requestId);
        if (['message_accepted', 'request_queued', 'error'].includes(f.type) && !first.has(id))
          first.set(id, f);
      }
      return first.size >= ids.length;
    }, 60_000);
    return { clients, ids, all, first: [...first.values()] };
  }

  it('never has more than 3 replies streaming across 8 users, and every queued request is answered once', async () => {
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({
        tiers: { free: OPEN },
        global: { requestsInFlight: 3, shards: 3 },
      }),
      ECHO_DELAY_MS: '40',
    });
    const { ids, all, first, clients } = await burst(8, 2, 3);
    const accepted = first.filter((f) => f.type === 'message_accepted');
    const queued = first.filter((f) => f.type === 'request_queued');
    expect(accepted.length).toBeLessThanOrEqual(3);
    expect(accepted.length + queued.length).toBe(ids.length);
    await waitUntil(
      () => ids.every((id) => all().some((f) => f.type === 'message_complete' && f.requestId === id)),
      90_000,
    ).catch((err) => {
      const missing = ids.filter((id) => !all().some((f) => f.type === 'message_complete' && f.requestId === id));
      console.error('MISSING', missing.map((id) => `${id}:${all().filter((f) => f.requestId === id).map((f) => f.type).join(',')}`).join(' '));
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

  it('admits exactly the hourly global limit across 5 users × 10 frames, and refuses the rest by it', async () => {
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({ tiers: { free: OPEN }, global: { hourlyMessages: 7, shards: 2 } }),
    });
    const { first, clients } = await burst(5, 2, 10);
    expect(first.filter((f) => f.type === 'message_accepted')).toHaveLength(7);
    const refused = first.filter((f) => f.type === 'error');
    expect(refused).toHaveLength(43);
    // The next hour is further off than MAX_QUEUE_WAIT: refused, not queued, and told why.
    for (const f of refused) {
      expect(f).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit: 'global.hourlyMessages' } });
    }
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    expect(status.global).toEqual([
      expect.objectContaining({
        name: 'global.hourlyMessages',
        used: 7,
        limit: 7,
        remaining: 0,
        unit: 'messages',
      }),
    ]);
    for (const c of clients) c.close();
  }, 60_000);
});
