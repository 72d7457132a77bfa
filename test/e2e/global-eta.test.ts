import { afterEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lambda/adapters/observability';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { burst } from '../support/many-users';
import { type ServerFrame, waitUntil } from '../support/ws-client';

/**
 * SPEC §9.5 "ETAs hold when a global or team limit binds", through the local stack: with
 * `global.requestsInFlight` 2 and a burst from several users, the users' own limits out of the way
 * (but for one reply at a time each), every queued request is told a wait that holds, and why.
 *
 * The tolerance, for a notice sent once the line has formed (every look in line and every move
 * sends one): told − measured ≤ 3 s + 50 % of the measured wait, and measured − told ≤ that + 5 s.
 * The 3 s: the ETA is rounded up to whole seconds (1 s), and a turn's length varies by one
 * hand-over (a freed slot's wake-up received and decided, ~0.5 s here) for each of the two turns a
 * notice may fall between. The 50 %: the turnover is the mean gap between the admissions the
 * instance saw — one reply (~0.6 s) plus a hand-over — over the latest 20, while the burst's own
 * gaps vary by a hand-over. The 5 s, late only: a waiter whose wake-up lost the race for a freed
 * slot (woken while it was already looking, or refused because another was first) looks again
 * at its recheck, 5 s on (wait.ts), while the model counts every turn as taken at once.
 * The `request_queued` of the burst's first instant is not held to it: nobody has looked yet, so
 * the line it sees is empty (docs/queue.md says so); the first look, within a second, is.
 */
const OPEN = { messagesPerMinute: 6_000, burst: 100 };
/** A waiter that lost the race for a freed slot looks again this much later (wait.ts GLOBAL_RECHECK_MS). */
const RECHECK_S = 5;
const GLOBAL_REASON = /^Global limit global\.requestsInFlight: \d of 2 in use across all users; /;

describe('ETAs when a global limit binds, end to end', () => {
  let stack: LocalStack | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await stack?.stop();
    stack = undefined;
  });

  it('tells every queued request a wait within 3 s + 50 % of the one measured (5 s more if late), and why, with no wake-up warning', async () => {
    const warnings: string[] = [];
    vi.spyOn(logger, 'warn').mockImplementation((...args: unknown[]) => {
      warnings.push(String(args[0]));
    });
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({ tiers: { free: OPEN }, global: { requestsInFlight: 2 } }),
      ECHO_DELAY_MS: '100',
    });
    const complete = (all: () => ServerFrame[], ids: readonly string[]) =>
      waitUntil(
        () => ids.every((id) => all().some((f) => f.type === 'message_complete' && f.requestId === id)),
        90_000,
      );
    // A warm-up: the stack learns how fast its slots turn over, as a running stack has.
    const warm = await burst(stack.wsUrl, 2, 1, 2);
    await complete(warm.all, warm.ids);

    const t = await burst(stack.wsUrl, 6, 1, 3);
    // The last user's queue is the longest to wait: its status, asked while it waits.
    const last = t.clients[t.clients.length - 1]!;
    const midStatus = (await last.request({ action: 'status' }, 'status')) as unknown as {
      queue: { requests: { estimatedWaitTime?: number }[]; reason?: string };
      global?: unknown;
    };
    await complete(t.all, t.ids);

    const frames = t.all();
    const startOf = (id: string) =>
      frames.find((f) => f.type === 'queue_processing_started' && f.requestId === id)?.timestamp;
    const queuedIds = t.ids.filter((id) => startOf(id) !== undefined);
    expect(queuedIds.length).toBeGreaterThanOrEqual(16);
    const firstInstant = Math.max(
      ...frames.filter((f) => f.type === 'request_queued').map((f) => f.timestamp),
    );
    const misses: string[] = [];
    let held = 0;
    const devs: number[][] = [];
    for (const id of queuedIds) {
      const started = startOf(id)!;
      const queued = frames.find((f) => f.type === 'request_queued' && f.requestId === id)!;
      // The reason, from the first notice on: the global limit, not "behind your earlier requests".
      expect(queued.message, id).toMatch(GLOBAL_REASON);
      for (const n of frames.filter((f) => f.type === 'queue_position' && f.requestId === id)) {
        const othersWaiting = new Set(
          queuedIds
            .filter((other) => other.split('-')[0] !== id.split('-')[0] && startOf(other)! > n.timestamp)
            .map((other) => other.split('-')[0]),
        );
        // While three other users still wait, the global limit binds: the reason is on the notice.
        if (othersWaiting.size >= 3) expect(n.reason, `${id} at ${n.timestamp}`).toMatch(GLOBAL_REASON);
        if (n.timestamp <= firstInstant || n.reason === undefined) continue;
        const measuredS = (started - n.timestamp) / 1000;
        const toldS = Number(n.estimatedWaitTime);
        held++;
        devs.push([toldS, Number(measuredS.toFixed(1))]);
        const slack = 3 + 0.5 * measuredS;
        if (toldS - measuredS > slack || measuredS - toldS > slack + RECHECK_S)
          misses.push(`${id}: told ${toldS} s, waited ${measuredS.toFixed(1)} s`);
      }
    }
    if (process.env.ETA_REPORT) console.log('ETA', held, JSON.stringify(devs));
    expect(held).toBeGreaterThanOrEqual(30);
    expect(misses).toEqual([]);

    // While the burst's line stands, `status` gives each waiting request its wait and the reason.
    expect(midStatus.queue.requests.length).toBeGreaterThanOrEqual(1);
    for (const r of midStatus.queue.requests) expect(r.estimatedWaitTime).toBeGreaterThanOrEqual(1);
    expect(midStatus.queue.reason).toMatch(GLOBAL_REASON);
    expect(midStatus.global).toEqual([
      expect.objectContaining({ name: 'global.requestsInFlight', limit: 2 }),
    ]);
    // `status` carries the global limit beside the user's own, like them: used, limit, reset.
    const status = await t.clients[0]!.request({ action: 'status' }, 'status');
    expect(status.global).toEqual([
      expect.objectContaining({ name: 'global.requestsInFlight', used: 0, limit: 2, remaining: 2 }),
    ]);
    expect(typeof (status.global as { resetAt: unknown }[])[0]!.resetAt).toBe('number');
    // Normal use logs no failed wake-up (issue 23 item 9).
    expect(warnings.filter((w) => w.includes('wake-up'))).toEqual([]);
    for (const c of [...warm.clients, ...t.clients]) c.close();
  }, 180_000);
});
