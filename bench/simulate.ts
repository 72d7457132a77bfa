import { loadavg } from 'node:os';
import { parseLimitsConfig } from '../lambda/core/limiter/policy';
import { TIERS } from '../lambda/core/limiter/tiers';
import { simulate } from '../local/simulate/engine';
import type { TrafficRequest } from '../local/simulate/traffic';
import { type BenchPart, type BenchRow, round } from './report';

const REQUESTS = 100_000;
const USERS = 2_000;
const HOUR_MS = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

/**
 * mulberry32: a small seeded generator of numbers in [0, 1) with a period of 2^32. (The bench first
 * used `seed * 1103515245 + 12345 mod 2^31` in floating point: the product passes 2^53, loses its
 * low bits, and the sequence cycled after 10,466 draws — about 3,800 requests — so the "hour" was
 * the same few minutes of traffic stacked 26 times on the same users.)
 */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A deterministic hour of traffic: 2,000 users (most free, some pro and enterprise), each sending
 * at a steady pace, a tenth of them in bursts of 20 within a second — the shape that makes limits
 * matter. Seeded, so every run replays the same requests.
 */
export function syntheticTraffic(count = REQUESTS): TrafficRequest[] {
  const random = mulberry32(42);
  const requests: TrafficRequest[] = [];
  while (requests.length < count) {
    const user = Math.floor(random() * USERS);
    const tier = TIERS[user % 10 === 0 ? 2 : user % 4 === 0 ? 1 : 0]!;
    const at = T0 + Math.floor(random() * HOUR_MS);
    const burst = user % 10 === 1 ? 20 : 1;
    for (let i = 0; i < burst && requests.length < count; i++) {
      requests.push({
        line: requests.length + 1,
        atMs: at + i * 50,
        userId: `user-${user}`,
        tier,
        inputTokens: 200 + Math.floor(random() * 800),
        outputTokens: 50 + Math.floor(random() * 600),
      });
    }
  }
  return requests.sort((a, b) => a.atMs - b.atMs);
}

const CONFIGS = {
  defaults: { tiers: {} },
  'strict + global': {
    tiers: { free: { messagesPerMinute: 5, burst: 0, dailyTokens: 20_000 }, pro: { requestsInFlight: 2 } },
    global: { requestsInFlight: 200, hourlyMessages: 60_000 },
  },
} as const;

/** `npm run bench -- simulate`: how long the what-if simulator takes for 100,000 requests. */
export const simulateBench: BenchPart = {
  name: 'simulate',
  description: `npm run simulate on ${REQUESTS.toLocaleString('en-US')} requests of ${USERS.toLocaleString('en-US')} users, per configuration`,
  async run() {
    const traffic = syntheticTraffic();
    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = { requests: REQUESTS, users: USERS };
    for (const [name, limits] of Object.entries(CONFIGS)) {
      const config = parseLimitsConfig(limits);
      const started = performance.now();
      const cpu = process.cpuUsage();
      const result = simulate(traffic, config);
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const cpuSeconds = (used.user + used.system) / 1e6;
      rows.push({
        metric: `${name}: wall time`,
        value: round(seconds),
        unit: 's',
        note: `admitted ${result.admitted.total}, queued ${result.queued}, refused ${result.refusedTotal}`,
      });
      // On a shared machine the wall time counts other processes' turns too; the CPU time is ours.
      rows.push({
        metric: `${name}: CPU time`,
        value: round(cpuSeconds),
        unit: 's',
        note: `load average ${round(loadavg()[0]!)}`,
      });
      details[name] = result;
    }
    return { rows, details };
  },
};
