import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent, type ClientRequest } from 'node:http';
import { LocalError } from '../errors';
import { lambdaContext } from './events';

/** A Lambda handler as the runtime calls it. */
export type LambdaHandler = (event: never, context: never) => Promise<unknown>;

/** Lambda's default Timeout, for a function given as a bare handler. */
export const DEFAULT_FUNCTION_TIMEOUT_MS = 3_000;

/** A function as the local Lambda runner runs it. */
export interface LocalFunction {
  /** The function's name, as its context shows it (`FUNCTIONS[key].id` in the local stack). */
  readonly name: string;
  readonly handler: LambdaHandler;
  /** The function's Timeout: past it the invocation is abandoned and its result ignored. */
  readonly timeoutMs: number;
  /** How its asynchronous (`Event`) invocations are handled. @default Lambda's (see {@link LAMBDA_ASYNC_DEFAULTS}) */
  readonly asyncInvoke?: LocalAsyncInvoke;
}

/** A function's asynchronous invocation settings, as `FUNCTIONS[key].asyncInvoke` declares them. */
export interface LocalAsyncInvoke {
  readonly maxEventAgeSeconds: number;
  readonly retryAttempts: number;
  /** Invoked (asynchronously) with the invocation record of an event given up on. */
  readonly onFailure?: LocalFunction;
}

/** Lambda's defaults without an EventInvokeConfig: two retries, events kept six hours. */
export const LAMBDA_ASYNC_DEFAULTS: LocalAsyncInvoke = Object.freeze({
  maxEventAgeSeconds: 6 * 3600,
  retryAttempts: 2,
});

/**
 * Lambda waits about a minute before the first retry of a failed asynchronous invocation and two
 * before the second (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
 */
export const ASYNC_RETRY_DELAYS_MS: readonly number[] = [60_000, 120_000];

/** A function or a bare handler, which runs with Lambda's default Timeout (3 s). */
export type FunctionSource = LambdaHandler | LocalFunction;

export function toLocalFunction(source: FunctionSource, name: string): LocalFunction {
  return typeof source === 'function'
    ? { name, handler: source, timeoutMs: DEFAULT_FUNCTION_TIMEOUT_MS }
    : source;
}

/**
 * What Lambda reports for an invocation that ran past its Timeout: error type `Sandbox.Timedout`
 * and the message `RequestId: <id> Error: Task timed out after 3.00 seconds` (docs/local.md).
 */
export class FunctionTimeoutError extends LocalError {
  readonly errorType = 'Sandbox.Timedout';

  constructor(
    readonly functionName: string,
    readonly timeoutMs: number,
    readonly awsRequestId: string,
  ) {
    super(`RequestId: ${awsRequestId} Error: Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    this.name = 'FunctionTimeoutError';
  }
}

interface Invocation {
  readonly functionName: string;
  abandoned: boolean;
}

const invocations = new AsyncLocalStorage<Invocation>();

/**
 * Runs one invocation as Lambda does: the handler gets a context whose remaining time counts down
 * from the function's Timeout, and once that has passed the invocation is abandoned — the returned
 * promise rejects with {@link FunctionTimeoutError} and whatever the handler returns later is
 * ignored. Lambda stops a timed-out function; one process cannot stop a promise, so instead every
 * HTTP request the abandoned invocation starts afterwards (DynamoDB, SQS, `@connections`) fails
 * before it leaves the process.
 */
export async function invokeFunction(fn: LocalFunction, event: unknown): Promise<unknown> {
  refuseRequestsOfAbandonedInvocations();
  const context = lambdaContext(fn.name, fn.timeoutMs);
  const invocation: Invocation = { functionName: fn.name, abandoned: false };
  const run = invocations.run(invocation, async () => fn.handler(event as never, context as never));
  // An abandoned invocation that fails later fails unobserved, as in Lambda.
  run.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      invocation.abandoned = true;
      reject(new FunctionTimeoutError(fn.name, fn.timeoutMs, context.awsRequestId));
    }, fn.timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([run, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

let refusing = false;

/**
 * Every HTTP request of Node.js goes through `Agent.prototype.addRequest`, called synchronously in
 * the caller's async context, so the invocation that starts it is known there. A request of an
 * abandoned invocation is failed the way the Agent fails a request whose socket it could not
 * create (`req.onSocket(socket, err)`), before anything is sent. Installed once, on first use.
 */
function refuseRequestsOfAbandonedInvocations(): void {
  if (refusing) return;
  refusing = true;
  const agent = Agent.prototype as unknown as {
    addRequest(this: Agent, request: ClientRequest, options: unknown): void;
  };
  const addRequest = agent.addRequest;
  agent.addRequest = function (this: Agent, request: ClientRequest, options: unknown): void {
    const invocation = invocations.getStore();
    if (!invocation?.abandoned) {
      addRequest.call(this, request, options);
      return;
    }
    const refused = new Error(
      `${invocation.functionName} timed out: Lambda would have stopped it, so this request is refused`,
    );
    (request as unknown as { onSocket(socket: null, err: Error): void }).onSocket(null, refused);
  };
}

export interface AsyncInvokerOptions {
  /** Waits before each retry. @default {@link ASYNC_RETRY_DELAYS_MS} (a test may scale them) */
  readonly retryDelaysMs?: readonly number[];
  /** The clock event ages are measured on. @default Date.now */
  readonly now?: () => number;
  readonly log?: (message: string) => void;
}

/** Lambda's asynchronous event queue, locally: see {@link createAsyncInvoker}. */
export interface AsyncInvoker {
  /** Queues an event for the function and returns at once (the Invoke API's 202). */
  invoke(fn: LocalFunction, event: unknown): void;
  /** Resolves when no event is running or waiting for a retry. */
  idle(): Promise<void>;
  busy(): boolean;
}

/**
 * Asynchronous invocations as Lambda runs them
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html): an event
 * whose invocation fails or times out is retried after 1 and then 2 minutes, up to the function's
 * `retryAttempts`; an event older than its `maxEventAgeSeconds` is not started; an event given up
 * on is sent to the `onFailure` function (itself invoked asynchronously, with Lambda's defaults)
 * as an invocation record shaped like Lambda's
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
 * Not emulated: throttling (no concurrency limit here) and the duplicate deliveries Lambda may make.
 */
export function createAsyncInvoker(options: AsyncInvokerOptions = {}): AsyncInvoker {
  const delays = options.retryDelaysMs ?? ASYNC_RETRY_DELAYS_MS;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => undefined);
  const runs = new Set<Promise<void>>();

  async function run(fn: LocalFunction, event: unknown): Promise<void> {
    const settings = fn.asyncInvoke ?? LAMBDA_ASYNC_DEFAULTS;
    const queuedAt = now();
    let invokeCount = 0;
    let lastError: Error | undefined;
    let condition: 'EventAgeExceeded' | 'RetriesExhausted' = 'RetriesExhausted';
    for (let attempt = 0; attempt <= settings.retryAttempts; attempt++) {
      if (attempt > 0) await sleep(delays[Math.min(attempt, delays.length) - 1] ?? 0);
      if (now() - queuedAt > settings.maxEventAgeSeconds * 1000) {
        condition = 'EventAgeExceeded';
        break;
      }
      invokeCount++;
      try {
        await invokeFunction(fn, event);
        return;
      } catch (err) {
        lastError = err as Error;
        log(`async invocation of ${fn.name} failed (attempt ${attempt + 1}): ${lastError.message}`);
      }
    }
    log(`async event of ${fn.name} dropped: ${condition}`);
    if (settings.onFailure)
      invoke(settings.onFailure, invocationRecord(fn, event, condition, invokeCount, lastError));
  }

  function invoke(fn: LocalFunction, event: unknown): void {
    const running = run(fn, event);
    runs.add(running);
    void running.finally(() => runs.delete(running));
  }

  return {
    invoke,
    idle: async () => {
      while (runs.size > 0) await Promise.allSettled([...runs]);
    },
    busy: () => runs.size > 0,
  };
}

/** The invocation record Lambda sends to an on-failure destination. */
export function invocationRecord(
  fn: LocalFunction,
  event: unknown,
  condition: 'EventAgeExceeded' | 'RetriesExhausted',
  invokeCount: number,
  error: Error | undefined,
) {
  const context = lambdaContext(fn.name, fn.timeoutMs);
  return {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: context.awsRequestId,
      functionArn: `${context.invokedFunctionArn}:$LATEST`,
      condition,
      approximateInvokeCount: invokeCount,
    },
    requestPayload: event,
    // Only an event that ran has a response: the last attempt's error, as Lambda reports it.
    ...(error
      ? {
          responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
          responsePayload:
            error instanceof FunctionTimeoutError
              ? { errorType: error.errorType, errorMessage: error.message }
              : {
                  errorType: error.name,
                  errorMessage: error.message,
                  trace: (error.stack ?? '').split('\n'),
                },
        }
      : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
