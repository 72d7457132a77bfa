/**
 * The sweep's composition root: the sweep service over the user-facing parts, the sweep index,
 * the request queue and the events it publishes (runtime/events.ts, shared with every user-facing root).
 */
import { DEFAULT_SWEEP_SETTINGS, SweepService } from '../../services/sweep-service';
import { logPort, metricsPort } from '../observability';
import { SweepIndex } from '../sweep-index';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const sweepRuntime = once(() => {
  const base = userFacing('sweep');
  const { config, dynamo } = base;
  const sweep = new SweepService({
    ...base,
    index: new SweepIndex(dynamo, config.tables.limits!),
    queue: requestQueue(config),
    metrics: metricsPort,
    log: logPort,
    settings: DEFAULT_SWEEP_SETTINGS,
    prices: (id) => config.models.find((m) => m.id === id),
  });
  return { ...base, sweep };
});
