import { describe, expect, it } from 'vitest';
import type { Belief } from '../../lambda/adapters/limiter/beliefs';
import { GlobalWaitEstimate } from '../../lambda/adapters/limiter/global-wait';
import type { GlobalWaiter } from '../../lambda/core/limiter/global/priority';
import { EMPTY_SNAPSHOT } from '../../lambda/core/limiter/item/state';

const LEASE_MS = 960_000;
const NOW = 10_000_000;

/** One shard (`global#0`) whose belief the test sets, and a line the test sets. */
function setup() {
  const world = { belief: undefined as Belief | undefined, line: [] as GlobalWaiter[] };
  const estimate = new GlobalWaitEstimate({
    limits: { requestsInFlight: 2, shards: 1 },
    belief: (key) => (key === 'global#0' ? world.belief : undefined),
    waiters: async () => world.line,
    leaseMs: LEASE_MS,
    urgentMs: 60_000,
  });
  /** The shard as seen by a call sent at `observedAtMs`, holding requests admitted at the given times. */
  const see = (observedAtMs: number, held: Record<string, number>) => {
    const inFlight = Object.fromEntries(Object.entries(held).map(([id, at]) => [id, at + LEASE_MS]));
    world.belief = { snap: { ...EMPTY_SNAPSHOT, exists: true, inFlight }, observedAtMs };
  };
  return { world, estimate, see };
}

const me = {
  userId: 'me',
  tier: 'free' as const,
  enqueuedAtEpochMs: NOW - 100,
  deadlineEpochMs: NOW + 600_000,
};
const waiter = (userId: string, enqueuedAtEpochMs: number, queued: number): GlobalWaiter => ({
  userId,
  tier: 'free',
  enqueuedAtEpochMs,
  deadlineEpochMs: NOW + 600_000,
  seenAtEpochMs: NOW,
  limit: 'requestsInFlight',
  queued,
});

describe('GlobalWaitEstimate', () => {
  it('says nothing binds while a slot is free and nobody else is in line', async () => {
    const { estimate, see } = setup();
    see(NOW - 10, { a: NOW - 500 });
    expect(await estimate.estimate(me, NOW)).toBeUndefined();
  });

  it('counts the requests of the waiters ahead, and reads each holder’s admission from its lease', async () => {
    const { world, estimate, see } = setup();
    see(NOW - 10, { a: NOW - 500, b: NOW - 300 });
    world.line = [waiter('x', NOW - 900, 3), waiter('y', NOW - 800, 2), waiter('z', NOW, 4)];
    expect(await estimate.estimate(me, NOW)).toEqual({
      name: 'global.requestsInFlight',
      limit: 2,
      usersAhead: 2,
      requestsAhead: 5,
      holdersAdmittedAtEpochMs: [NOW - 500, NOW - 300],
      holdMs: undefined,
      turnEveryMs: undefined,
    });
  });

  it('learns the hold from holders seen gone, and the turnover from the admissions seen, idle gaps left out', async () => {
    const { estimate, see } = setup();
    see(NOW - 4000, { a: NOW - 5000, b: NOW - 4900 });
    await estimate.estimate(me, NOW - 4000);
    // a gone 200 ms after it was last seen: it ended in between, held (−3,900) − (−5,000) = 1,100 ms.
    see(NOW - 3800, { b: NOW - 4900, c: NOW - 3850 });
    await estimate.estimate(me, NOW - 3800);
    // b and c gone, but the views are 3.7 s apart: no sample. d and e admitted since.
    see(NOW - 100, { d: NOW - 600, e: NOW - 200 });
    const wait = await estimate.estimate(me, NOW);
    expect(wait?.holdMs).toBe(1100);
    // Admission gaps 100, 1,050, 3,250, 400; 3,250 is over two holds and a second (3,200): idle.
    expect(wait?.turnEveryMs).toBe((100 + 1050 + 400) / 3);
    expect(wait?.holdersAdmittedAtEpochMs).toEqual([NOW - 600, NOW - 200]);
  });

  it("for a team: reads the team's shards and counts only the team's waiters ahead", async () => {
    const world = { belief: undefined as Belief | undefined, line: [] as GlobalWaiter[] };
    const estimate = new GlobalWaitEstimate({
      limits: { requestsInFlight: 2, shards: 1 },
      belief: (key) => (key === 'team#eng#0' ? world.belief : undefined),
      waiters: async () => world.line,
      leaseMs: LEASE_MS,
      urgentMs: 60_000,
      key: (k) => `team#eng#${k}`,
      team: 'eng',
    });
    const inFlight = { a: NOW - 500 + LEASE_MS, b: NOW - 300 + LEASE_MS };
    world.belief = { snap: { ...EMPTY_SNAPSHOT, exists: true, inFlight }, observedAtMs: NOW - 10 };
    world.line = [
      { ...waiter('x', NOW - 900, 3), scope: 'team:eng' },
      { ...waiter('s', NOW - 850, 7) }, // the stack's line: waits for the stack's slots, not the team's
      { ...waiter('o', NOW - 800, 5), scope: 'team:ops' },
      { ...waiter('m', NOW - 700, 9), scope: 'model:echo' },
      { ...waiter('z', NOW, 4), scope: 'team:eng' }, // behind me
    ];
    expect(await estimate.estimate(me, NOW)).toEqual({
      name: 'team.requestsInFlight',
      team: 'eng',
      limit: 2,
      usersAhead: 1,
      requestsAhead: 3,
      holdersAdmittedAtEpochMs: [NOW - 500, NOW - 300],
      holdMs: undefined,
      turnEveryMs: undefined,
    });
  });
});
