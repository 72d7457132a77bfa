/**
 * The sweep's composition root: the sweep service over the user-facing parts, the sweep index,
 * the request queue and the events it publishes. The only root that loads the EventBridge client.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DEFAULT_SWEEP_SETTINGS, SweepService } from '../../services/sweep-service';
import { EventBridgeEvents, LogEvents } from '../events';
import { logPort, metricsPort } from '../observability';
import { SweepIndex } from '../sweep-index';
import { requestHandler } from './common';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const sweepRuntime = once(() => {
  const base = userFacing('sweep');
  const { config, dynamo } = base;
  // Locally (emulator endpoints) events go to the stack's log; in AWS to the default bus.
  const events =
    config.dynamodbEndpoint || config.sqsEndpoint
      ? new LogEvents(logPort)
      : new EventBridgeEvents(new EventBridgeClient({ maxAttempts: 3, requestHandler: requestHandler() }));
  const sweep = new SweepService({
    ...base,
    index: new SweepIndex(dynamo, config.tables.limits!),
    queue: requestQueue(config),
    events,
    metrics: metricsPort,
    log: logPort,
    settings: DEFAULT_SWEEP_SETTINGS,
    prices: (id) => config.models.find((m) => m.id === id),
  });
  return { ...base, sweep };
});
