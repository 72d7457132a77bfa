import {
  type DynamoDBClient,
  ProvisionedThroughputExceededException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';

/**
 * Faults the harness injects at the ports: the DynamoDB client's `send`, the SQS client behind the
 * request queue, the reply hand-off (Lambda `Invoke` with `Event`) and the connection sender
 * (`@connections`). A fault picks the n-th call of its port within one invocation of a function.
 */
export type Port = 'dynamo' | 'sqs' | 'handoff' | 'sender';

export type FaultKind =
  /** The call lands, then its answer is lost: the caller sees a timeout. */
  | 'lost-answer'
  /**
   * The call lands and its answer is lost, and every later call of the port is throttled for
   * `durationMs`: the caller's retries run out while its first write stands.
   */
  | 'lost-answer-then-throttled'
  /** The call times out before it reaches the service: nothing lands. */
  | 'timeout'
  /** DynamoDB: `ThrottlingException` / `ProvisionedThroughputExceededException`; else a 5xx. */
  | 'throttle'
  /** Every call of the port fails (timeout, nothing lands) for this long, from this call on. */
  | 'outage'
  /** Async event (hand-off) or SQS send delivered twice. */
  | 'duplicate'
  /** Hand-off answered OK (202), the event never runs. */
  | 'drop'
  /** Sender: the connection is gone (410). */
  | 'gone'
  /**
   * The call waits until another invocation has run (`SendPair`), then times out without landing:
   * a fixed interleaving of two concurrent Message functions.
   */
  | 'held-then-timeout'
  /** The call waits until another invocation has run, then goes through (a slow post, say). */
  | 'held';

export interface FaultSpec {
  readonly port: Port;
  /** The n-th call (0-based) of that port in the invocation. */
  readonly nth: number;
  readonly kind: FaultKind;
  /** `outage`: how long it lasts on the harness clock. */
  readonly durationMs?: number;
}

export const describeFault = (f: FaultSpec | undefined) =>
  f ? `${f.kind}@${f.port}#${f.nth}${f.durationMs ? `/${f.durationMs}ms` : ''}` : 'none';

/** The Lambda ran out of time or was killed: nothing after this call happens. */
export class Crash extends Error {
  constructor() {
    super('the function instance crashed');
    this.name = 'Crash';
  }
}

export function timeoutError(): Error {
  // What the SDK throws when `AbortSignal.timeout` fires: no $metadata, name TimeoutError.
  const err = new Error('The operation was aborted due to timeout');
  err.name = 'TimeoutError';
  return err;
}

/** What the fault layer decided for one call. */
export type CallPlan =
  | { readonly kind: 'forward' }
  | { readonly kind: 'fail'; readonly error: Error }
  | { readonly kind: 'forward-then-fail'; readonly error: Error }
  | { readonly kind: 'special'; readonly fault: FaultKind };

/**
 * One invocation of a function (one Lambda event): counts its calls per port, applies its fault,
 * and, when it crashes after `crashAfter` calls, fails that call and every later one (a dead
 * process does nothing more).
 */
export class Invocation {
  private readonly calls: Record<Port, number> = { dynamo: 0, sqs: 0, handoff: 0, sender: 0 };
  private total = 0;
  dead = false;
  private outageUntilMs?: number;

  constructor(
    readonly fault: FaultSpec | undefined,
    readonly crashAfter: number | undefined,
    private readonly now: () => number,
  ) {}

  static quiet(now: () => number): Invocation {
    return new Invocation(undefined, undefined, now);
  }

  plan(port: Port): CallPlan {
    if (this.dead) return { kind: 'fail', error: new Crash() };
    if (this.crashAfter !== undefined && this.total >= this.crashAfter) {
      this.dead = true;
      return { kind: 'fail', error: new Crash() };
    }
    this.total++;
    const n = this.calls[port]++;
    const f = this.fault;
    if (f?.port !== port) return { kind: 'forward' };
    if (f.kind === 'lost-answer-then-throttled') {
      if (n === f.nth) {
        this.outageUntilMs = this.now() + (f.durationMs ?? 5000);
        return { kind: 'forward-then-fail', error: timeoutError() };
      }
      if (n > f.nth && this.outageUntilMs !== undefined && this.now() < this.outageUntilMs) {
        return { kind: 'fail', error: throttleError(port, n) };
      }
      return { kind: 'forward' };
    }
    if (f.kind === 'outage') {
      if (n === f.nth) this.outageUntilMs = this.now() + (f.durationMs ?? 5000);
      if (this.outageUntilMs !== undefined && this.now() < this.outageUntilMs) {
        return { kind: 'fail', error: timeoutError() };
      }
      return { kind: 'forward' };
    }
    if (n !== f.nth) return { kind: 'forward' };
    switch (f.kind) {
      case 'lost-answer':
        return { kind: 'forward-then-fail', error: timeoutError() };
      case 'timeout':
        return { kind: 'fail', error: timeoutError() };
      case 'throttle':
        return { kind: 'fail', error: throttleError(port, n) };
      default:
        return { kind: 'special', fault: f.kind };
    }
  }
}

function throttleError(port: Port, n: number): Error {
  if (port === 'dynamo') {
    const $metadata = { httpStatusCode: 400 };
    return n % 2 === 0
      ? new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata })
      : new ProvisionedThroughputExceededException({ message: 'Throughput exceeded', $metadata });
  }
  return Object.assign(new Error('Rate exceeded'), {
    name: port === 'sender' ? 'LimitExceededException' : 'ThrottlingException',
    $fault: 'client',
    $metadata: { httpStatusCode: 429 },
  });
}

/** Runs a call through the plan: forwards it, fails it, or forwards it and loses the answer. */
export async function through<T>(plan: CallPlan, forward: () => Promise<T>): Promise<T> {
  if (plan.kind === 'fail') throw plan.error;
  if (plan.kind === 'forward-then-fail') {
    await forward().catch(() => undefined);
    throw plan.error;
  }
  return forward();
}

/**
 * A DynamoDB client whose `send` goes through the fault layer of whichever invocation is running
 * on its function instance (`current()`); everything else is the real client.
 */
export function faultyDynamo(real: DynamoDBClient, current: () => Invocation): DynamoDBClient {
  const send = ((command: unknown, options?: unknown) => {
    const plan = current().plan('dynamo');
    const forward = () => (real.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
    if (plan.kind === 'special') return forward();
    return through(plan, forward);
  }) as DynamoDBClient['send'];
  return Object.assign(Object.create(real) as DynamoDBClient, { send });
}
