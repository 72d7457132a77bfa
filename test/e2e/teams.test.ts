import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient, waitUntil } from '../support/ws-client';

/**
 * SPEC §9.4 teams, end to end: a team of four users shares `limits.teams.eng.requestsInFlight: 2`
 * while their own limits are out of the way; hundreds of frames over several connections at once.
 * The reply function holds its first replies until every frame has had its first answer (a gate,
 * not a long reply: under a loaded machine the answers took 7 s, close to a 10 s reply), so the
 * two admitted hold the team's slots throughout and the counts are exact; then the replies are
 * short (the echo model repeats each message 5 times, 100 ms a chunk: ~2 s).
 */
const OPEN = { messagesPerMinute: 6_000, burst: 100 };
const TEAM = 'eng';
const USERS = 4;
const CONNECTIONS = 2;
const FRAMES = 50;
const MAX_QUEUED = 10;
const FIRST = ['message_accepted', 'request_queued', 'error'];

interface SharedLimitFrame {
  readonly name: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
}

describe('a team of four against a team limit of 2 in flight', () => {
  let stack: LocalStack;
  const jobs: Record<string, unknown>[] = [];
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    openGate = resolve;
  });
  beforeAll(async () => {
    stack = await startTestStack(
      {
        LIMITS_CONFIG: JSON.stringify({ tiers: { free: OPEN }, teams: { [TEAM]: { requestsInFlight: 2 } } }),
        ECHO_DELAY_MS: '100',
        ECHO_REPEAT: '5',
        MAX_QUEUED_PER_USER: String(MAX_QUEUED),
      },
      {
        wrapHandlers: {
          reply: (handler) => async (event: never, context: never) => {
            jobs.push({ ...(event as Record<string, unknown>) });
            await gate;
            return handler(event, context);
          },
        },
      },
    );
  });
  afterAll(async () => {
    openGate();
    await stack?.stop();
  });

  it('admits exactly 2 at once across the team, queues or refuses the rest, and status shows the team', async () => {
    const members = Array.from({ length: USERS }, (_, u) => `${TEAM}-member-${u}`);
    const clients: TestClient[][] = [];
    for (const userId of members) {
      const token = await signDevToken({ userId, team: TEAM });
      clients.push(
        await Promise.all(Array.from({ length: CONNECTIONS }, () => TestClient.connect(stack.wsUrl, token))),
      );
    }
    const everyone = clients.flat();
    const all = () => everyone.flatMap((c) => c.frames);
    const ids: string[] = [];
    for (let u = 0; u < USERS; u++) {
      for (let f = 0; f < FRAMES; f++) {
        const requestId = `u${u}-f${f}`;
        ids.push(requestId);
        clients[u]![f % CONNECTIONS]!.send({
          action: 'sendMessage',
          requestId,
          message: 'one two three four',
        });
      }
    }
    const first = new Map<string, ServerFrame>();
    await waitUntil(() => {
      for (const f of all()) {
        const id = String(f.requestId);
        if (FIRST.includes(f.type) && !first.has(id)) first.set(id, f);
      }
      return first.size >= ids.length;
    }, 60_000);
    const of = (type: string) => [...first.values()].filter((f) => f.type === type);

    // Two admitted across the whole team; each member queues its cap; the rest are refused.
    expect(of('message_accepted')).toHaveLength(2);
    expect(of('request_queued')).toHaveLength(USERS * MAX_QUEUED);
    for (let u = 0; u < USERS; u++) {
      const mine = of('request_queued')
        .filter((f) => String(f.requestId).startsWith(`u${u}-`))
        .sort((a, b) => Number(a.position) - Number(b.position));
      expect(mine.map((f) => f.position)).toEqual(Array.from({ length: MAX_QUEUED }, (_, i) => i + 1));
      // Each is told a wait that includes the team's (SPEC §9.5): more than nothing, and longer for
      // each place back (the member's requests run one at a time, each holding a team slot).
      const waits = mine.map((f) => Number(f.estimatedWaitTime));
      expect(waits[0]).toBeGreaterThan(0);
      for (let i = 1; i < waits.length; i++)
        expect(waits[i], `user ${u}: ${waits}`).toBeGreaterThan(waits[i - 1]!);
    }
    const refused = of('error');
    expect(refused).toHaveLength(USERS * FRAMES - 2 - USERS * MAX_QUEUED);
    expect(new Set(refused.map((f) => f.code))).toEqual(new Set(['QUEUE_FULL']));
    // Each member's first request to wait was held back by the team's limit, and its reason names the team.
    for (let u = 0; u < USERS; u++) {
      const head = of('request_queued').find(
        (f) => String(f.requestId).startsWith(`u${u}-`) && f.position === 1,
      );
      expect((head?.details as { reason?: string } | undefined)?.reason).toContain(TEAM);
    }

    // While the two stream, status shows the team beside the member's own limits: 2 of 2 in flight.
    const status = await clients[0]![0]!.request({ action: 'status' }, 'status');
    const team = status.team as { name: string; source: string; limits: SharedLimitFrame[] };
    expect(team.name).toBe(TEAM);
    expect(team.source).toBe('token');
    expect(team.limits.map(({ name, limit, used, remaining }) => ({ name, limit, used, remaining }))).toEqual(
      [{ name: 'team.requestsInFlight', limit: 2, used: 2, remaining: 0 }],
    );

    // Someone outside the team is not held back by it.
    const outsider = await TestClient.connect(stack.wsUrl, await signDevToken({ userId: 'outsider' }));
    const own = await outsider.request(
      { action: 'sendMessage', requestId: 'o1', message: 'not in the team' },
      'message_accepted',
    );
    expect(own).toMatchObject({ type: 'message_accepted', requestId: 'o1' });
    openGate();

    // The waiting requests are replayed as slots free, with the member's claim: never more than 2
    // of the team's replies stream at once (first chunk to last), over the first 6 to end.
    const ended = () =>
      ids.filter((id) => all().some((f) => f.type === 'message_complete' && f.requestId === id));
    await waitUntil(() => ended().length >= 6, 90_000);
    const spans = ended().map((id) => {
      const chunks = all().filter((f) => f.type === 'chunk' && f.requestId === id);
      return {
        from: Math.min(...chunks.map((c) => c.timestamp)),
        to: Math.max(...chunks.map((c) => c.timestamp)),
      };
    });
    const most = Math.max(
      ...spans.map((s) => spans.filter((o) => o.from <= s.from && s.from <= o.to).length),
    );
    expect(most).toBe(2);
    // Besides the two admitted at once, each that ended was a waiting request, started once.
    const admitted = new Set(of('message_accepted').map((f) => String(f.requestId)));
    for (const id of ended().filter((x) => !admitted.has(x))) {
      expect(all().filter((f) => f.type === 'queue_processing_started' && f.requestId === id)).toHaveLength(
        1,
      );
    }
    // A replayed request keeps its token's claim: the waiting request stored it (the item's codec).
    const teamJobs = jobs.filter((j) => ids.includes(String(j.requestId)));
    expect(teamJobs.filter((j) => j.source === 'queue').length).toBeGreaterThanOrEqual(4); // of the 6 ended
    expect(new Set(teamJobs.map((j) => j.claimTeam))).toEqual(new Set([TEAM]));
    outsider.close();
    for (const c of everyone) c.close();
  }, 180_000);
});
