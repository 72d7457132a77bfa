import { fileURLToPath } from 'node:url';
import { resetStackClock, stackClock, startStackClockAt } from '../lambda/core/clock';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../lambda/core/metrics';
import { SWEEP_INTERVAL_SECONDS } from '../lambda/core/queue/sweep';
import {
  ENV,
  FUNCTIONS,
  type FunctionDefinition,
  type FunctionKey,
  ROUTES,
  type RouteKey,
  TABLES,
  type TableKey,
} from '../lambda/core/resources';
import { LOCAL_REGION, localDynamoClient, localSqsClient } from './aws-clients';
import { CLOCK_PATH, clockRoute } from './clock';
import { DEV_JWT_SECRET } from './dev-tokens';
import { type Emulators, startEmulators } from './emulators';
import { errorMessage, warnAtMostEveryMinute } from './error-message';
import { EVENTS_PATH, LocalEventBus } from './events';
import {
  type GatewayHandlers,
  INTEGRATION_TIMEOUT_MS,
  type LambdaHandler,
  type LocalFunction,
  loadHandler,
  startGateway,
} from './gateway';
import { invokeFunction } from './gateway/lambda-runner';
import { startRequestLog } from './request-log';
import { createLocalResources, type LocalResources, resourceEnvironment } from './resources';
import { type SqsPoller, startSqsPoller } from './sqs-poller';
import { startTtlReaper, type TtlReaper } from './ttl-reaper';

export interface LocalStackOptions {
  /** Gateway port; 0 picks a free one. @default 3001 */
  readonly port?: number;
  /** External emulators instead of the embedded ones. */
  readonly dynamodbEndpoint?: string;
  readonly sqsEndpoint?: string;
  /** The embedded DynamoDB's tables on disk here (`DATA_DIR`); queues stay in memory. @default in memory */
  readonly dataDir?: string;
  /** Prefix of table and queue names (tests use one per file). @default '' */
  readonly prefix?: string;
  /** Extra environment for the handlers (limits, model, queue settings...). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Serve the chat page. @default true */
  readonly serveWebPage?: boolean;
  /** Run the SQS-to-Lambda poller for the processor. @default true */
  readonly runProcessor?: boolean;
  /** Run the sweep every minute, as its EventBridge schedule does in AWS. @default true */
  readonly runSweep?: boolean;
  /**
   * Multiplies every function's Timeout and the gateway's integration timeout, so a test can see
   * them fire without waiting for them (0.01 turns 29 s into 290 ms). Queue visibility timeouts
   * stay the stack's. @default 1
   */
  readonly timeoutScale?: number;
  /**
   * Wraps single functions' handlers (a test counts a function's invocations, or makes one fail),
   * given the handler loaded from its entry point. @default none
   */
  readonly wrapHandlers?: Partial<Record<FunctionKey, (handler: LambdaHandler) => LambdaHandler>>;
  /** Waits before Lambda's retries of a failed `Event` invocation. @default [60_000, 120_000], as Lambda */
  readonly asyncRetryDelaysMs?: readonly number[];
  /** Timeouts in ms of single functions, instead of their scaled `FUNCTIONS[key].timeoutSeconds`. */
  readonly functionTimeoutsMs?: Partial<Record<FunctionKey, number>>;
  /**
   * Where the stack's clock starts (`LOCAL_CLOCK`), epoch ms; it runs at real speed from there and
   * `POST /local-stack/clock` moves it forward. The clock is the process's: one stack per process.
   * @default the machine's clock
   */
  readonly clockStartMs?: number;
  /** Time between the TTL reaper's sweeps; 0: only `ttlReaper.sweep()` sweeps. @default 2_000 */
  readonly ttlSweepIntervalMs?: number;
  /** Where function errors go (`npm start`: its terminal), one line each, never an event. @default none */
  readonly log?: (line: string) => void;
  /** Where each event's line goes (local/events.ts). @default console.log */
  readonly printEvent?: (line: string) => void;
}

/** The timeouts the local stack enforces: AWS's, unless a test scales or overrides them. */
export interface LocalTimeouts {
  readonly functionsMs: Readonly<Record<FunctionKey, number>>;
  readonly integrationMs: number;
}

export function localTimeouts(
  options: Pick<LocalStackOptions, 'timeoutScale' | 'functionTimeoutsMs'> = {},
): LocalTimeouts {
  const scale = options.timeoutScale ?? 1;
  if (!(scale > 0)) throw new Error(`timeoutScale must be positive, got ${scale}`);
  const functionsMs = Object.fromEntries(
    (Object.keys(FUNCTIONS) as FunctionKey[]).map((key) => [
      key,
      options.functionTimeoutsMs?.[key] ?? FUNCTIONS[key].timeoutSeconds * 1000 * scale,
    ]),
  ) as Record<FunctionKey, number>;
  return { functionsMs, integrationMs: INTEGRATION_TIMEOUT_MS * scale };
}

export interface LocalStack {
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly managementEndpoint: string;
  readonly emulators: Emulators;
  readonly resources: LocalResources;
  /** DynamoDB TTL on the stack's clock (local/ttl-reaper.ts). */
  readonly ttlReaper: TtlReaper;
  /** Resolves when the processor has nothing in flight. */
  processorIdle(): Promise<void>;
  /**
   * Runs the self-healing sweep once, as its schedule would at `atEpochMs` (default: now); the
   * stack also runs it every minute by itself. Resolves with its report.
   */
  runSweep(atEpochMs?: number): Promise<unknown>;
  stop(): Promise<void>;
}

const WEB_DIR = fileURLToPath(new URL('./web', import.meta.url));

/**
 * The local stack: emulators, tables and queues from the one definition, the handlers loaded by
 * their Lambda entry points with the environment the CDK stack would give them, the WebSocket
 * gateway in front, and the SQS poller feeding the processor.
 *
 * Handlers read their configuration once, at first import, as in Lambda: run one local stack per
 * process.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const emulators = await startEmulators({
    dynamodbEndpoint: options.dynamodbEndpoint,
    sqsEndpoint: options.sqsEndpoint,
    dataDir: options.dataDir,
  });
  const stops: (() => Promise<void>)[] = [() => emulators.stop()];
  if (options.clockStartMs !== undefined) startStackClockAt(options.clockStartMs);
  // Whatever moved the clock (LOCAL_CLOCK, /local-stack/clock) ends with the stack.
  stops.push(async () => resetStackClock());
  try {
    const dynamo = localDynamoClient(emulators.dynamodbEndpoint);
    const sqs = localSqsClient(emulators.sqsEndpoint);
    const resources = await createLocalResources(dynamo, sqs, options.prefix ?? '');
    const timeouts = localTimeouts(options);

    // The default event bus, emulated: one line each on stdout (npm start), kept for `admin events`.
    const events = new LocalEventBus({ clock: stackClock, print: options.printEvent ?? console.log });
    const requestLog = startRequestLog(options.dataDir); // the functions' request lines (export-traffic)
    stops.push(async () => requestLog.stop());
    // The gateway must listen before the handlers load: they read its @connections URL.
    const gateway = await startGateway({
      port: options.port ?? 3001,
      staticDir: options.serveWebPage === false ? undefined : WEB_DIR,
      integrationTimeoutMs: timeouts.integrationMs,
      clock: stackClock,
      localRoutes: { [CLOCK_PATH]: clockRoute, ...events.routes, ...requestLog.routes },
      asyncRetryDelaysMs: options.asyncRetryDelaysMs,
      asyncClock: stackClock,
      log: options.log,
    });
    stops.unshift(() => gateway.stop());

    const ttlReaper = startTtlReaper({
      dynamo,
      tables: (Object.keys(TABLES) as TableKey[]).map((key) => ({
        name: resources.tables[key],
        definition: TABLES[key],
      })),
      clock: stackClock,
      intervalMs: options.ttlSweepIntervalMs,
      onError: warnAtMostEveryMinute('ttl reaper: a sweep failed (expired items stay until one succeeds)'),
    });
    stops.unshift(() => ttlReaper.stop());

    Object.assign(process.env, {
      [ENV.jwtSecret]: process.env[ENV.jwtSecret] ?? DEV_JWT_SECRET,
      ...options.environment,
      ...resourceEnvironment(resources),
      [ENV.dynamodbEndpoint]: emulators.dynamodbEndpoint,
      [ENV.sqsEndpoint]: emulators.sqsEndpoint,
      [ENV.wsManagementEndpoint]: gateway.managementEndpoint,
      [ENV.lambdaEndpoint]: gateway.httpUrl,
      [ENV.eventsEndpoint]: `${gateway.httpUrl}${EVENTS_PATH}`,
      [ENV.replyFunctionName]: FUNCTIONS.reply.id,
      AWS_REGION: process.env.AWS_REGION ?? LOCAL_REGION,
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    });

    const handlers = await loadFunctions(options, timeouts);
    gateway.attach(gatewayHandlers(handlers));

    let poller: SqsPoller | undefined;
    const isQuiet = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return (poller?.busy() ?? false) === false && !gateway.asyncBusy();
    };
    if (options.runProcessor !== false) {
      poller = startSqsPoller({
        sqs,
        queueUrl: resources.queues.requests.url,
        queueArn: resources.queues.requests.arn,
        handler: handlers.processor.handler,
        functionName: handlers.processor.name,
        functionTimeoutMs: handlers.processor.timeoutMs,
        clock: stackClock,
        onError: (err) => options.log?.(`processor: ${errorMessage(err)}`),
      });
      const running = poller;
      stops.unshift(() => running.stop());
    }

    // The sweep's schedule (lib/constructs/sweep.ts in AWS): the same handler, every minute.
    const sweep = (atEpochMs = Date.now()) =>
      invokeFunction(handlers.sweep, {
        source: 'aws.events',
        'detail-type': 'Scheduled Event',
        time: new Date(atEpochMs).toISOString(),
      });
    if (options.runSweep !== false) {
      const every = SWEEP_INTERVAL_SECONDS * 1000;
      const failed = (err: unknown) => options.log?.(`sweep failed: ${errorMessage(err)}`);
      const timer = setInterval(() => void sweep().catch(failed), every);
      timer.unref();
      stops.unshift(async () => clearInterval(timer));
    }

    return {
      wsUrl: gateway.wsUrl,
      httpUrl: gateway.httpUrl,
      managementEndpoint: gateway.managementEndpoint,
      emulators,
      resources,
      ttlReaper,
      // Quiet: no batch in the processor and no reply runner working or waiting to retry.
      processorIdle: async () => {
        do {
          await (poller?.idle() ?? Promise.resolve());
          await gateway.asyncIdle();
        } while (!(await isQuiet()));
      },
      runSweep: (atEpochMs) => sweep(atEpochMs),
      stop: async () => {
        for (const stop of stops) await stop();
      },
    };
  } catch (err) {
    for (const stop of stops) await stop().catch(() => undefined);
    throw err;
  }
}

/**
 * Every function loaded by its Lambda entry point, each under its own Timeout as in Lambda
 * (local/gateway/lambda-runner.ts), with asynchronous invocations as the CDK stack configures
 * them (FUNCTIONS[key].asyncInvoke), the on-failure destination being the loaded function.
 */
async function loadFunctions(
  options: LocalStackOptions,
  timeouts: LocalTimeouts,
): Promise<Record<FunctionKey, LocalFunction>> {
  const handlers = {} as Record<FunctionKey, LocalFunction>;
  for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
    const def: FunctionDefinition = FUNCTIONS[key];
    const loaded = await loadHandler(def);
    handlers[key] = {
      name: def.id,
      handler: options.wrapHandlers?.[key]?.(loaded) ?? loaded,
      timeoutMs: timeouts.functionsMs[key],
    };
  }
  for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
    const asyncInvoke = (FUNCTIONS[key] as FunctionDefinition).asyncInvoke;
    if (!asyncInvoke) continue;
    const { onFailure, ...settings } = asyncInvoke;
    handlers[key] = {
      ...handlers[key],
      asyncInvoke: { ...settings, onFailure: onFailure ? handlers[onFailure] : undefined },
    };
  }
  return handlers;
}

/** The functions behind the gateway: the authorizer, each route's, and those the Invoke API answers. */
function gatewayHandlers(handlers: Record<FunctionKey, LocalFunction>): GatewayHandlers {
  const routes = Object.fromEntries(
    (Object.keys(ROUTES) as RouteKey[]).map((route) => [route, handlers[ROUTES[route]]]),
  ) as Record<RouteKey, LocalFunction>;
  return {
    authorizer: handlers.authorizer,
    routes,
    functions: {
      [FUNCTIONS.admin.id]: handlers.admin,
      [FUNCTIONS.reply.id]: handlers.reply,
      [FUNCTIONS.replyFailure.id]: handlers.replyFailure,
    },
  };
}
