import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { syntheticTraffic } from '../../bench/simulate';
import { runSimulateCli } from '../../local/simulate/cli';
import { trafficLine } from '../../local/simulate/traffic';

/**
 * The simulator's speed work must not move a single figure: 4,000 requests of the bench's seeded
 * hour (with a team and a quota'd model added to some lines, so the team shards and the model
 * quota are on the path) through three configurations give, byte for byte, the `--json` output the
 * simulator gave before that work (test/fixtures/simulate-4k.jsonl, written by the code of commit
 * "bench/simulate.ts: a seeded generator with a full period", before any speed change).
 */
const FIXTURE = new URL('../fixtures/simulate-4k.jsonl', import.meta.url);

function traffic(): string {
  return syntheticTraffic(4_000)
    .map((r, i) => {
      const user = Number(r.userId.slice('user-'.length));
      return trafficLine({
        ...r,
        ...(user % 7 === 3 ? { team: 'research' } : {}),
        ...(r.tier !== 'free' && i % 3 === 0 ? { model: 'large' } : {}),
      });
    })
    .join('\n');
}

const CURRENT = readFileSync(new URL('../../docs/examples/limits-current.json', import.meta.url), 'utf8');
/** The bench's strict configuration with global limits, on the example's models (one with a quota of
 * requests and tokens). */
const STRICT_GLOBAL = {
  tiers: {
    free: { models: ['echo'], messagesPerMinute: 5, burst: 0, dailyTokens: 20_000 },
    pro: { requestsInFlight: 2 },
  },
  // 16 shards (200 in flight) need a quota of 16 a minute at least; tokens counted with burndown 5.
  models: (JSON.parse(CURRENT) as { models: { accountQuota?: unknown }[] }).models.map((m) =>
    m.accountQuota
      ? { ...m, accountQuota: { requestsPerMinute: 40, tokensPerMinute: 60_000, outputTokenBurndown: 5 } }
      : m,
  ),
  global: { requestsInFlight: 200, hourlyMessages: 60_000 },
};

describe('simulate: the same traffic gives the same figures', () => {
  it('4,000 requests through three configurations: the --json output is byte-identical to the recorded one', async () => {
    let out = '';
    const files: Record<string, string> = {
      't.jsonl': traffic(),
      'current.json': CURRENT,
      'proposed.json': readFileSync(
        new URL('../../docs/examples/limits-proposed.json', import.meta.url),
        'utf8',
      ),
      'strict-global.json': JSON.stringify(STRICT_GLOBAL),
    };
    const argv = ['--traffic', 't.jsonl', '--json'];
    for (const file of ['current.json', 'proposed.json', 'strict-global.json']) argv.push('--limits', file);
    const code = await runSimulateCli(argv, {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        throw new Error(t);
      },
      readFile: (path) => files[path]!,
    });
    expect(code).toBe(0);
    expect(out).toBe(readFileSync(FIXTURE, 'utf8'));
  }, 60_000);
});
