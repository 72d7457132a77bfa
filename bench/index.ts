import { limiterBench } from './limiter';
import type { BenchPart } from './report';

/** Every part of `npm run bench`, in the order they run. */
export const PARTS: readonly BenchPart[] = [limiterBench];
