/**
 * The composition root of the functions: configuration parsed once, SDK clients and adapters
 * created once per cold start and reused by every invocation, as Lambda best practice has it.
 * Each function builds only what its FUNCTIONS entry gives it access to.
 */
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type ChatConfig, parseFunctionConfig } from '../config';
import { stackClock } from '../core/clock';
import type { FunctionKey } from '../core/resources';
import { AdminService } from '../services/admin-service';
import { ChatService } from '../services/chat-service';
import type { ConnectionDirectory, ConnectionSender } from '../services/ports';
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../services/replay-service';
import { ReplyFailureService } from '../services/reply-failure';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../services/reply-runner';
import { DEFAULT_SWEEP_SETTINGS, SweepService } from '../services/sweep-service';
import { ConnectionRegistry } from './connections';
import { DynamoLimiter } from './dynamo-limiter';
import { EventBridgeEvents, LogEvents } from './events';
import { StoreHealthProbe } from './health-probe';
import { createChatModel, createModelCatalog } from './models';
import { Notifier } from './notifier';
import { logPort, metricsPort } from './observability';
import { LambdaReplyHandoff } from './reply-handoff';
import { ReplyStore } from './reply-store';
import { RequestQueue } from './request-queue';
import { SweepIndex } from './sweep-index';

/** Every handler's "now": the machine's clock in AWS, the stack's clock locally (core/clock.ts). */
const now = stackClock;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= build();
    return value;
  };
}

/** No call may hang an invocation: a dead connection fails within seconds and is retried. */
const requestHandler = () =>
  new NodeHttpHandler({
    connectionTimeout: 1000,
    requestTimeout: 5000,
    // One request at a time per Lambda instance in AWS; locally every invocation shares a process.
    httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
  });

function dynamoClient(config: ChatConfig): DynamoDBClient {
  // Locally the endpoint points at the emulator; in AWS it is unset and the SDK finds DynamoDB.
  return new DynamoDBClient({
    credentials: emulatorCredentials(config),
    endpoint: config.dynamodbEndpoint,
    maxAttempts: 3,
    requestHandler: requestHandler(),
  });
}

/**
 * Locally (emulator endpoints set) the SDK still signs requests, so it gets placeholder keys here
 * rather than through the process environment, where they would also shadow real credentials the
 * Bedrock client needs. In AWS: undefined, the function's role.
 */
function emulatorCredentials(config: ChatConfig) {
  return config.dynamodbEndpoint || config.sqsEndpoint
    ? { accessKeyId: 'local', secretAccessKey: 'local' }
    : undefined;
}

function sqsClient(config: ChatConfig): SQSClient {
  return new SQSClient({
    endpoint: config.sqsEndpoint,
    credentials: emulatorCredentials(config),
    maxAttempts: 3,
    requestHandler: requestHandler(),
  });
}

/**
 * The limiter's own client makes one attempt per call: the limiter retries what is transient on a
 * user's item itself (bounded, jittered), and its breaker must see every fault as it happens.
 */
function limiterFor(config: ChatConfig): DynamoLimiter {
  const client = new DynamoDBClient({
    credentials: emulatorCredentials(config),
    endpoint: config.dynamodbEndpoint,
    maxAttempts: 1,
    requestHandler: requestHandler(),
  });
  return new DynamoLimiter({
    client,
    tableName: config.tables.limits!,
    tiers: config.tiers,
    models: config.models,
    global: config.global,
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
    },
  });
}

function connectionsFor(config: ChatConfig, client: DynamoDBClient): ConnectionRegistry {
  return new ConnectionRegistry({ client, tableName: config.tables.connections! });
}

/** The parts shared by every function that talks to users: limiter, records, connections. */
function userFacing(fn: FunctionKey) {
  const config = parseFunctionConfig(fn);
  const dynamo = dynamoClient(config);
  const limiter = limiterFor(config);
  const store = new ReplyStore(dynamo, config.tables.requests!);
  const connections = connectionsFor(config, dynamo);
  const notifier = new Notifier({
    endpoint: config.wsManagementEndpoint!,
    credentials: emulatorCredentials(config),
    registry: connections,
  });
  const sender: ConnectionSender = notifier;
  const directory: ConnectionDirectory = connections;
  return { config, dynamo, limiter, store, connections, sender, directory, notifier };
}

/** Hands admitted requests to the reply runner (locally through the gateway's Invoke API). */
function handoffFor(config: ChatConfig): LambdaReplyHandoff {
  const client = new LambdaClient({
    endpoint: config.lambdaEndpoint,
    credentials: config.lambdaEndpoint ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
    maxAttempts: 2,
    requestHandler: requestHandler(),
  });
  return new LambdaReplyHandoff(client, config.replyFunctionName!);
}

export const chatRuntime = once(() => {
  const base = userFacing('message');
  const { config } = base;
  const queue = new RequestQueue(sqsClient(config), config.requestQueueUrl!);
  const chat = new ChatService({
    ...base,
    queue,
    handoff: handoffFor(config),
    metrics: metricsPort,
    log: logPort,
    settings: {
      maxQueuedPerUser: config.maxQueuedPerUser,
      maxQueueWaitSeconds: config.maxQueueWaitSeconds,
      modelMaxOutputTokens: config.modelMaxOutputTokens,
    },
    now,
  });
  return { ...base, chat, now };
});

export const processorRuntime = once(() => {
  const base = userFacing('processor');
  const { config } = base;
  const queue = new RequestQueue(sqsClient(config), config.requestQueueUrl!, config.deadLetterQueueUrl);
  const replay = new ReplayService({
    ...base,
    queue,
    handoff: handoffFor(config),
    metrics: metricsPort,
    log: logPort,
    settings: { ...DEFAULT_REPLAY_SETTINGS, modelMaxOutputTokens: config.modelMaxOutputTokens },
    now,
    sleep,
  });
  return { ...base, replay, queue, now };
});

export const replyRuntime = once(() => {
  const base = userFacing('reply');
  const { config } = base;
  const queue = new RequestQueue(sqsClient(config), config.requestQueueUrl!, config.deadLetterQueueUrl);
  const runner = new ReplyRunner({
    ...base,
    queue,
    model: createChatModel(config.model),
    catalog: createModelCatalog(
      config.models,
      config.model.kind === 'echo' ? config.model : { echoDelayMs: 20, echoRepeat: 1 },
    ),
    metrics: metricsPort,
    log: logPort,
    settings: DEFAULT_RUNNER_SETTINGS,
    now,
    sleep,
  });
  return { ...base, runner, now };
});

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
    queue: new RequestQueue(sqsClient(config), config.requestQueueUrl!),
    events,
    metrics: metricsPort,
    log: logPort,
    settings: DEFAULT_SWEEP_SETTINGS,
    now,
    prices: (id) => config.models.find((m) => m.id === id),
  });
  return { ...base, sweep, now };
});

export const adminRuntime = once(() => {
  const base = userFacing('admin');
  const { config, limiter } = base;
  // One attempt per probe: `health` says at once that a resource does not answer.
  const probeClients = {
    maxAttempts: 1,
    credentials: emulatorCredentials(config),
    requestHandler: requestHandler(),
  };
  const health = new StoreHealthProbe({
    dynamo: new DynamoDBClient({ ...probeClients, endpoint: config.dynamodbEndpoint }),
    sqs: new SQSClient({ ...probeClients, endpoint: config.sqsEndpoint }),
    tableNames: config.tables,
    queueUrls: { requests: config.requestQueueUrl, dlq: config.deadLetterQueueUrl },
    // The admin function's own limiter: its breaker hears only this instance's calls.
    breakerState: () => limiter.breaker.state,
  });
  const admin = new AdminService({
    ...base,
    health,
    log: logPort,
    now,
    maxQueuedPerUser: config.maxQueuedPerUser,
  });
  return { ...base, admin, now };
});

export const replyFailureRuntime = once(() => {
  const base = userFacing('replyFailure');
  const { config } = base;
  const queue = new RequestQueue(sqsClient(config), config.requestQueueUrl!);
  const failures = new ReplyFailureService({ ...base, queue, metrics: metricsPort, log: logPort, now });
  return { ...base, failures, now };
});
