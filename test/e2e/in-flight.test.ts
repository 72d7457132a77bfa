import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient, waitUntil } from '../support/ws-client';

/**
 * SPEC §2 v2 "requests in flight", through the local stack: at most 2 of a user's replies are
 * being answered at once, however many frames arrive over however many connections; a request
 * over it waits in the queue and starts as soon as a reply ends (its settle hands the parked
 * wake-up back), not when a lease or a timer runs out. Only the in-flight limit binds here.
 */
const LIMITS = { tiers: { free: { requestsInFlight: 2, messagesPerMinute: 10_000, burst: 1_000 } } };
const FIRST = ['message_accepted', 'request_queued', 'error'];

describe('requests in flight', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    // Each echoed word takes 60 ms: a reply streams for about half a second.
    stack = await startTestStack({ LIMITS_CONFIG: JSON.stringify(LIMITS), ECHO_DELAY_MS: '60' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('never streams more than 2 replies at once under 300 frames over 5 connections, and replays as slots free', async () => {
    const { token } = await newUser('inflight');
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => TestClient.connect(stack.wsUrl, token)),
    );
    const ids = Array.from({ length: 300 }, (_, i) => `f${i}`);
    for (const [i, id] of ids.entries()) {
      clients[i % 5]!.send({ action: 'sendMessage', requestId: id, message: `one two three four five ${i}` });
    }
    const all = () => clients.flatMap((c) => c.frames);
    const firstOf = new Map<string, ServerFrame>();
    await waitUntil(() => {
      for (const f of all()) {
        if (FIRST.includes(f.type) && !firstOf.has(String(f.requestId))) firstOf.set(String(f.requestId), f);
      }
      return firstOf.size >= ids.length;
    }, 60_000);
    const first = [...firstOf.values()];
    const accepted = first.filter((f) => f.type === 'message_accepted');
    const queued = first.filter((f) => f.type === 'request_queued');
    const full = first.filter((f) => f.type === 'error' && f.code === 'QUEUE_FULL');
    expect(accepted).toHaveLength(2);
    expect(queued.map((f) => f.position).sort((a, b) => Number(a) - Number(b))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(full).toHaveLength(288);

    // Every admitted request is answered, each once.
    const answered = [...accepted, ...queued].map((f) => String(f.requestId));
    await waitUntil(
      () => answered.every((id) => all().some((f) => f.type === 'message_complete' && f.requestId === id)),
      60_000,
    );
    for (const id of answered) {
      expect(all().filter((f) => f.type === 'message_complete' && f.requestId === id)).toHaveLength(1);
    }

    // In flight at any instant, from the stream timings: a reply streams from its first chunk to
    // its last, inside the time it holds its slot.
    const spans = answered.map((id) => {
      const chunks = all().filter((f) => f.type === 'chunk' && f.requestId === id);
      return {
        id,
        from: Math.min(...chunks.map((c) => c.timestamp)),
        to: Math.max(...chunks.map((c) => c.timestamp)),
      };
    });
    const most = Math.max(
      ...spans.map((s) => spans.filter((o) => o.from <= s.from && s.from <= o.to).length),
    );
    expect(most).toBeLessThanOrEqual(2);

    // The first queued request starts when the first reply ends, not after a lease (16 minutes)
    // or a retry timer: the settle that freed the slot handed its wake-up back.
    const firstDone = Math.min(
      ...all()
        .filter((f) => f.type === 'message_complete')
        .map((f) => f.timestamp),
    );
    const firstStart = Math.min(
      ...all()
        .filter((f) => f.type === 'queue_processing_started')
        .map((f) => f.timestamp),
    );
    expect(firstStart - firstDone).toBeLessThan(2_000);

    // Nothing is left in flight or waiting.
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    const inFlight = (status.limits as { name: string; used: number; unit: string }[]).find(
      (l) => l.name === 'requestsInFlight',
    );
    expect(inFlight).toMatchObject({ used: 0, limit: 2, unit: 'requests' });
    for (const c of clients) c.close();
  }, 90_000);
});
