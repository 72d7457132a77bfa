import { bundlesBench } from './bundles';
import { capacityBench } from './capacity';
import { gatewayBench } from './gateway';
import { globalBench } from './global';
import { limiterBench } from './limiter';
import { loadBench } from './load';
import { queueBench } from './queue';
import type { BenchPart } from './report';
import { scaleBench } from './scale';

/** Every part of `npm run bench`, in the order they run. */
export const PARTS: readonly BenchPart[] = [
  limiterBench,
  globalBench,
  gatewayBench,
  queueBench,
  loadBench,
  bundlesBench,
  capacityBench,
  scaleBench,
];
