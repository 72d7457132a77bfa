/**
 * The parts shared by every function that talks to users (message, processor, reply runner, reply
 * failure, sweep, admin): configuration, the limiter, the request records, the connection registry,
 * the `@connections` client and the events port (the breaker's events, the budgets'). Each of those functions' roots adds what only it uses.
 */
import { type ChatConfig, parseFunctionConfig } from '../../config';
import { stackClock } from '../../core/clock';
import { describeError } from '../../core/errors';
import { breakerEvent } from '../../core/events';
import { FUNCTIONS, type FunctionKey } from '../../core/resources';
import type { ConnectionDirectory, ConnectionSender, EventsPort } from '../../services/ports';
import { ConnectionRegistry } from '../connections';
import { DynamoLimiter } from '../dynamo-limiter';
import { Notifier } from '../notifier';
import { logPort } from '../observability';
import { ReplyStore } from '../reply-store';
import { dynamoClient, emulatorCredentials } from './common';
import { eventsPort } from './events';

/** Every handler's "now": the machine's clock in AWS, the stack's clock locally (core/clock.ts). */
export const now = stackClock;

export function userFacing(fn: FunctionKey) {
  const config = parseFunctionConfig(fn);
  const dynamo = dynamoClient(config);
  const events = eventsPort(config);
  const limiter = limiterFor(config, events, FUNCTIONS[fn].id);
  const store = new ReplyStore(dynamo, config.tables.requests!);
  const connections = new ConnectionRegistry({ client: dynamo, tableName: config.tables.connections! });
  const notifier = new Notifier({
    endpoint: config.wsManagementEndpoint!,
    credentials: emulatorCredentials(config),
    registry: connections,
  });
  const sender: ConnectionSender = notifier;
  const directory: ConnectionDirectory = connections;
  return { config, dynamo, limiter, store, connections, sender, directory, notifier, events, now };
}

/**
 * The limiter's own client makes one attempt per call: the limiter retries what is transient on a
 * user's item itself (bounded, jittered), and its breaker must see every fault as it happens.
 */
function limiterFor(config: ChatConfig, events: EventsPort, functionName: string): DynamoLimiter {
  return new DynamoLimiter({
    client: dynamoClient(config, 1),
    tableName: config.tables.limits!,
    tiers: config.tiers,
    historyTableName: config.tables.requests,
    maxQueuedPerUser: config.maxQueuedPerUser,
    onHistoryError: (cause) =>
      logPort.warn('usage history: a closed day was not written; the next day that closes writes it', {
        cause,
      }),
    models: config.models,
    global: config.global,
    teams: config.teams,
    teamDefaults: config.teamDefaults,
    onGlobalError: (operation, cause) =>
      logPort.error('global limits: giving back to a shard failed; it stays counted until its window ends', {
        operation,
        cause,
      }),
    failPolicy: config.failPolicy,
    timeoutMs: config.limiterTimeoutMs,
    breakerSilenceMs: config.breakerSilenceMs,
    // Windows, leases and the send time of each read are instants on the stack's clock.
    clock: now,
    onFailOpen: (cause) => {
      // The caller counts LimiterFailOpen; the cause is logged here, where it is known.
      logPort.warn('limiter failed open: the store is unavailable', { cause, failPolicy: 'open' });
    },
    onBreakerChange: (state, detail) => {
      if (state === 'open')
        logPort.warn('limiter breaker opened: the store stopped answering', { ...detail });
      else logPort.info('limiter breaker closed: the store answers again');
      // `Limiter Breaker Opened` / `Closed` from the instance that saw it (SPEC §9.5). Not awaited:
      // the breaker tells synchronously, mid-call; a publish that fails is logged.
      const { detailType, detail: fields } = breakerEvent(state, functionName, now(), detail.cause);
      events
        .publish(detailType, fields)
        .catch((err) => logPort.error(`could not publish ${detailType}`, { error: describeError(err) }));
    },
  });
}
