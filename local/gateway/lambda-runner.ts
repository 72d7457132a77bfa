import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent, type ClientRequest } from 'node:http';
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
  /** Lambda's retries of a failed asynchronous invocation. @default 2 (Lambda's default) */
  readonly asyncRetryAttempts?: number;
}

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
export class FunctionTimeoutError extends Error {
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
