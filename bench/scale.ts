import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchPart, BenchRow } from './report';
import { renderScaleBlock, replaceScaleBlock, type Scenario } from './scale-doc';
import { measuredInputs, PRICES, readScaleSources, stackInputs, typicalWorkload } from './scale-inputs';
import { scaleModel } from './scale-model';

/** The model's workloads: 100,000 users at 5,000 chat requests a second, and ten times that. */
export const SCALES = [1, 10] as const;

/** Both scenarios from the given bench results: what docs/scale.md's tables are made of. */
export function scaleScenarios(sources = readScaleSources()) {
  const measured = measuredInputs(sources);
  const scenarios: Scenario[] = SCALES.map((scale) => {
    const workload = typicalWorkload(scale);
    return {
      label: `${workload.requestsPerSecond.toLocaleString('en-US')} req/s`,
      model: scaleModel(measured, stackInputs(workload.users), workload, PRICES),
    };
  });
  const ranAt = Object.fromEntries(Object.entries(sources).map(([part, r]) => [part, r.ranAt]));
  return { measured, scenarios, block: renderScaleBlock(measured, ranAt, scenarios, PRICES) };
}

export const scaleBench: BenchPart = {
  name: 'scale',
  description:
    'the scale model (docs/scale.md) from bench/results/capacity.json and gateway.json: units, quotas, USD per million',
  async run() {
    const { scenarios, block } = scaleScenarios();
    const file = join(process.cwd(), 'docs', 'scale.md');
    writeFileSync(file, replaceScaleBlock(readFileSync(file, 'utf8'), block));
    const rows: BenchRow[] = [];
    for (const { label, model } of scenarios) {
      const first = model.breaksFirst[0]!;
      rows.push(
        {
          metric: `USD per million chat requests, limiting layer, chat-limiter, ${label}`,
          value: model.usdPerMillion.ours,
          unit: 'USD',
        },
        {
          metric: `USD per million chat requests, limiting layer, Redis (cache.r7g.large pairs), ${label}`,
          value: model.usdPerMillion.redisNodes,
          unit: 'USD',
        },
        {
          metric: `USD per million chat requests, limiting layer, Redis (ElastiCache Serverless), ${label}`,
          value: model.usdPerMillion.redisServerless,
          unit: 'USD',
        },
        {
          metric: `USD per million chat requests, the reply stream (either design), ${label}`,
          value: model.usdPerMillion.stream,
          unit: 'USD',
        },
        {
          metric: `what breaks first, ${label}`,
          value: first.ratio,
          unit: '× its limit',
          note: `${first.what}: ${first.demand.toFixed(0)} of ${first.limit} ${first.unit}; moved by ${first.setting}`,
        },
      );
      for (const item of model.items) {
        rows.push({
          metric: `WU/s, ${item.kind}, ${label}`,
          value: item.wuPerSecond,
          unit: 'WU/s',
          note: `hottest partition ${item.hottestPartitionWu.toFixed(1)} WU/s of 1,000; ${item.ruPerSecond.toFixed(1)} RU/s`,
        });
      }
    }
    console.log('\nwrote docs/scale.md (between the scale markers)');
    return { rows, details: { scenarios: scenarios.map((s) => ({ label: s.label, ...s.model })) } };
  },
};
