import { describe, expect, it } from 'vitest';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { runSimulateCli } from '../../local/simulate/cli';
import { simulate } from '../../local/simulate/engine';
import type { SimulationResult } from '../../local/simulate/result';
import { parseTraffic } from '../../local/simulate/traffic';

/** 2026-01-05 12:00:00 UTC: the top of a minute (a model quota's window starts here). */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

interface Line {
  readonly ms: number;
  readonly userId: string;
  readonly team?: string;
  readonly model?: string;
  readonly outputTokens?: number;
}

const jsonl = (lines: readonly Line[]) =>
  lines
    .map((l) =>
      JSON.stringify({
        at: new Date(T0 + l.ms).toISOString(),
        userId: l.userId,
        tier: 'free',
        ...(l.team ? { team: l.team } : {}),
        ...(l.model ? { model: l.model } : {}),
        inputTokens: 10,
        outputTokens: l.outputTokens ?? 20,
      }),
    )
    .join('\n');

function run(traffic: string, limits: unknown, settings = {}): SimulationResult {
  return simulate(parseTraffic(traffic), parseLimitsConfig(limits), settings);
}

const ECHO = {
  id: 'echo',
  kind: 'echo',
  inputUsdPerMillion: 0.2,
  outputUsdPerMillion: 0.6,
  maxOutputTokens: 4096,
};
const quotaOf = (requestsPerMinute: number) => ({
  tiers: {},
  models: [{ ...ECHO, accountQuota: { requestsPerMinute } }],
});

/** Team t of a, b and c, one request each 100 ms apart; replies of 100 output tokens take 2 s. */
const TEAM_OF_3 = jsonl(
  ['a', 'b', 'c'].map((userId, i) => ({ ms: i * 100, userId, team: 't', outputTokens: 100 })),
);
/** Twelve requests of twelve users on the echo model within one second, 80 ms apart. */
const TWELVE = jsonl(Array.from({ length: 12 }, (_, i) => ({ ms: i * 80, userId: `u${i + 1}` })));

describe('simulate: team limits and model quotas, on the shared shards', () => {
  it('a team of 3 with 1 request in flight: one runs, two wait in line and run in turn (exact waits)', () => {
    // a takes the team's slot at 0 s until its reply ends at 2 s. b (0.1 s) and c (0.2 s) are
    // refused by team.requestsInFlight (retry after 1 s): queued, looked at again at 1.1 s and
    // 1.2 s, still refused, parked on the team's capacity in that order. a's settle at 2 s wakes b
    // (waited 1.9 s; its reply ends at 4 s); c finds no slot and keeps its place; b's settle wakes
    // c at 4 s (waited 3.8 s). d has no team, e's team has no limits (no entry, no teamDefaults):
    // both run at once whatever team t holds.
    const traffic = `${TEAM_OF_3}\n${jsonl([
      { ms: 300, userId: 'd' },
      { ms: 400, userId: 'e', team: 'u' },
    ])}`;
    const result = run(traffic, { tiers: {}, teams: { t: { requestsInFlight: 1 } } });
    expect(result).toMatchObject({
      requests: 5,
      admitted: { total: 5, directly: 3, afterQueueing: 2 },
      queued: 2,
      refused: {},
      refusedTotal: 0,
      waitMs: { p50: 1_900, p99: 3_800 },
      mostAffected: [
        { userId: 'b', refused: 0, queued: 1 },
        { userId: 'c', refused: 0, queued: 1 },
      ],
    });
  });

  it('a team limit that may not be waited for refuses by team.requestsInFlight, named so', () => {
    // MAX_QUEUE_WAIT 0: b and c would wait at least the 1 s retry: refused, nothing queued.
    const result = run(
      TEAM_OF_3,
      { tiers: {}, teamDefaults: { requestsInFlight: 1 } },
      { maxQueueWaitSeconds: 0 },
    );
    expect(result.admitted).toEqual({ total: 1, directly: 1, afterQueueing: 0 });
    expect(result.refused).toEqual({ 'team.requestsInFlight': 2 });
    expect(result.queued).toBe(0);
  });

  it("a team's refusal gives the stack's share back: a user outside the team gets the slot it took", () => {
    // Global 2 in flight, team t 1. a (t) holds both a global and the team slot. b (t, 0.1 s)
    // takes the second global slot, then the team refuses it: the global share goes back whole, so
    // d (no team, 0.2 s) is admitted. b, queued, looks again at 1.1 s: both global slots are held
    // (a, d): refused by global.requestsInFlight, parked. a's settle at 2 s frees a global and the
    // team slot: b runs (waited 1.9 s).
    const traffic = jsonl([
      { ms: 0, userId: 'a', team: 't', outputTokens: 100 },
      { ms: 100, userId: 'b', team: 't', outputTokens: 100 },
      { ms: 200, userId: 'd', outputTokens: 100 },
    ]);
    const result = run(traffic, {
      tiers: {},
      global: { requestsInFlight: 2, shards: 1 },
      teams: { t: { requestsInFlight: 1 } },
    });
    expect(result.admitted).toEqual({ total: 3, directly: 2, afterQueueing: 1 });
    expect(result.queued).toBe(1);
    expect(result.waitMs).toEqual({ p50: 1_900, p99: 1_900 });
    expect(result.refusedTotal).toBe(0);
  });

  it('a model quota of 5 requests a minute, 12 requests in one second: 5 at once, the rest in the next minutes', () => {
    // Four shards hold 2, 1, 1, 1 of the 5 (each the emptiest first): requests 1–5 take them all.
    // Requests 6–12 (0.4 s … 0.88 s) are refused by global.model.echo.requestsPerMinute, retry at
    // the minute's end (60 s): queued. At 60 s the new minute lets u6–u10 in (waited 59.6, 59.52,
    // 59.44, 59.36, 59.28 s); u11 and u12 wait for the next minute: 120 s (waited 119.2 s, 119.12 s).
    const result = run(TWELVE, quotaOf(5));
    expect(result).toMatchObject({
      requests: 12,
      admitted: { total: 12, directly: 5, afterQueueing: 7 },
      queued: 7,
      refused: {},
      waitMs: { p50: 59_520, p99: 119_200 },
    });
  });

  it('a quota counts tokens as Bedrock does and gives the unused ones back at settle, to the same minute', () => {
    // tokensPerMinute 100, burndown 2, allowance 20 (defaultMaxOutputTokens): each request takes
    // 10 + 20 × 2 = 50 quota tokens at admission. Each reply uses 10 + 5 output: its settle (0.1 s
    // later) gives back 50 − (10 + 5 × 2) = 30, keeping 20. Requests 0.5 s apart: 0 s → 50 (20
    // after its settle), 0.5 s → 70 (40), 1 s → 90 (60); at 1.5 s 60 + 50 > 100: refused, queued,
    // as are 2 s and 2.5 s (retry at the minute's end). At 60 s u3 and u4 take 100; u5 waits for
    // 120 s. Waits 58.5, 58 and 117.5 s. (Without the refund only two would pass at once.)
    const traffic = jsonl(
      Array.from({ length: 6 }, (_, i) => ({ ms: i * 500, userId: `u${i}`, outputTokens: 5 })),
    );
    const result = run(traffic, {
      tiers: { free: { defaultMaxOutputTokens: 20 } },
      models: [{ ...ECHO, accountQuota: { tokensPerMinute: 100, outputTokenBurndown: 2 } }],
      global: { shards: 1 },
    });
    expect(result.admitted).toEqual({ total: 6, directly: 3, afterQueueing: 3 });
    expect(result.waitMs).toEqual({ p50: 58_500, p99: 117_500 });
  });

  it('three configurations side by side: refusals by global.model.<id>.… in their row, a team in its column', async () => {
    // Twelve requests of team t (TWELVE's times). MAX_QUEUE_WAIT 30 s: a quota's wait (until the
    // minute's end) is too long. quota5: 5 admitted, 7 refused by the quota; quota10 (3, 3, 2, 2
    // over four shards): 10 admitted, 2 refused. team (1 in flight, replies of 0.4 s): u1 at 0, u6
    // at 0.4 s and u11 at 0.8 s find the slot just freed; the other nine wait (1 s retry: short
    // enough) and all run.
    const traffic = jsonl(
      Array.from({ length: 12 }, (_, i) => ({ ms: i * 80, userId: `u${i + 1}`, team: 't' })),
    );
    const files: Record<string, string> = {
      't.jsonl': traffic,
      'quota5.json': JSON.stringify(quotaOf(5)),
      'quota10.json': JSON.stringify(quotaOf(10)),
      'team.json': JSON.stringify({ tiers: {}, teams: { t: { requestsInFlight: 1 } } }),
    };
    const cli = async (extra: string[]) => {
      let out = '';
      const argv = ['--traffic', 't.jsonl', '--limits', 'quota5.json', '--limits', 'quota10.json'];
      const code = await runSimulateCli(
        [...argv, '--limits', 'team.json', '--max-queue-wait', '30', ...extra],
        {
          out: (t) => {
            out += t;
          },
          err: () => undefined,
          readFile: (path) => files[path]!,
        },
      );
      expect(code).toBe(0);
      return out;
    };
    const lines = (await cli([])).split('\n');
    expect(lines[0]).toBe('                                       quota5.json  quota10.json  team.json');
    expect(lines).toContain('admitted                                         5            10         12');
    expect(lines).toContain('  global.model.echo.requestsPerMinute            7             2          0');
    const json = (await cli(['--json']))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as SimulationResult);
    expect(json.map((r) => [r.limits, r.admitted, r.queued, r.refused])).toEqual([
      [
        'quota5.json',
        { total: 5, directly: 5, afterQueueing: 0 },
        0,
        { 'global.model.echo.requestsPerMinute': 7 },
      ],
      [
        'quota10.json',
        { total: 10, directly: 10, afterQueueing: 0 },
        0,
        { 'global.model.echo.requestsPerMinute': 2 },
      ],
      ['team.json', { total: 12, directly: 3, afterQueueing: 9 }, 9, {}],
    ]);
  });
});
