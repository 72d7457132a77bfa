import fc from 'fast-check';
import { it } from 'vitest';
import { createTestResources } from '../support/emulators';
import type { Family } from './harness/commands';
import { familyProperty, runFamily } from './harness/property';

it('explore', async () => {
  const res = await createTestResources('harness');
  const env = { dynamo: res.dynamo, tables: { limits: res.tables.limits, requests: res.tables.requests } };
  const family = (process.env.HARNESS_FAMILY ?? 'time') as Family;
  const t0 = Date.now();
  if (process.env.SURVEY) {
    const kinds = new Map<string, number[]>();
    for (let seed = 1; seed <= Number(process.env.SURVEY); seed++) {
      const d = await fc.check(familyProperty(family, env), { numRuns: 1, seed, endOnFailure: true });
      if (!d.failed) continue;
      const msg = String((d.errorInstance as Error).message)
        .split('\n')[0]!
        .replace(/h\d+-\d+-\d/g, 'U')
        .replace(/r\d+/g, 'rN')
        .replace(/\d+/g, 'N');
      kinds.set(msg, [...(kinds.get(msg) ?? []), seed]);
    }
    for (const [k, seeds] of kinds)
      console.log(`${seeds.length}x ${k}  seeds ${seeds.slice(0, 5).join(',')}`);
  } else {
    const report = await runFamily(family, env, {
      numRuns: Number(process.env.RUNS ?? 5),
      seed: process.env.HARNESS_SEED ? Number(process.env.HARNESS_SEED) : undefined,
      path: process.env.HARNESS_PATH,
      replayPath: process.env.HARNESS_REPLAY_PATH,
      timeLimitMs: 40_000,
    });
    console.log(report ?? 'held');
  }
  console.log(`family ${family} took ${Date.now() - t0} ms`);
}, 600_000);
