import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../lambda/core/resources';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws-clients';
import {
  createAsyncInvoker,
  type LambdaHandler,
  type LocalFunction,
} from '../../local/gateway/lambda-runner';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

type Record = {
  version: string;
  requestContext: { condition: string; approximateInvokeCount: number; functionArn: string };
  requestPayload: unknown;
  responseContext?: { functionError: string };
  responsePayload?: { errorType: string; errorMessage: string };
};

/** A function that records what it was invoked with and answers as `answer` says. */
function recording(name: string, answer: (event: unknown) => Promise<unknown>, timeoutMs = 1000) {
  const events: unknown[] = [];
  const fn: LocalFunction = {
    name,
    timeoutMs,
    handler: (async (event: unknown) => {
      events.push(event);
      return answer(event);
    }) as LambdaHandler,
  };
  return { fn, events };
}

/**
 * The local Invoke API's `Event` invocations, as Lambda runs them (docs/local.md): retries after
 * a failure or a timeout, the maximum event age, and the on-failure destination's record.
 */
describe('asynchronous invocations (local Lambda)', () => {
  it('retries a failing event, then sends the destination one record shaped like Lambda’s', async () => {
    const destination = recording('Destination', async () => undefined);
    const failing = recording('Failing', async () => {
      throw new TypeError('boom');
    });
    const fn = {
      ...failing.fn,
      asyncInvoke: { maxEventAgeSeconds: 300, retryAttempts: 1, onFailure: destination.fn },
    };
    const invoker = createAsyncInvoker({ retryDelaysMs: [5, 10] });
    invoker.invoke(fn, { job: 1 });
    await invoker.idle();
    expect(failing.events).toEqual([{ job: 1 }, { job: 1 }]);
    expect(destination.events).toHaveLength(1);
    const record = destination.events[0] as Record;
    expect(record).toMatchObject({
      version: '1.0',
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 2 },
      requestPayload: { job: 1 },
      responseContext: { functionError: 'Unhandled' },
      responsePayload: { errorType: 'TypeError', errorMessage: 'boom' },
    });
    expect(record.requestContext.functionArn).toMatch(
      /^arn:aws:lambda:[^:]+:\d{12}:function:Failing:\$LATEST$/,
    );
  });

  it('does not start an event older than its maximum age: the destination is told EventAgeExceeded', async () => {
    let clock = 1_000_000;
    const destination = recording('Destination', async () => undefined);
    // The first attempt fails after 301 s (on the injected clock): its retry would start too old.
    const slow = recording('Slow', async () => {
      clock += 301_000;
      throw new Error('late failure');
    });
    const fn = {
      ...slow.fn,
      asyncInvoke: { maxEventAgeSeconds: 300, retryAttempts: 2, onFailure: destination.fn },
    };
    const invoker = createAsyncInvoker({ retryDelaysMs: [5, 10], now: () => clock });
    invoker.invoke(fn, { job: 2 });
    await invoker.idle();
    expect(slow.events).toHaveLength(1);
    expect(destination.events).toHaveLength(1);
    expect(destination.events[0]).toMatchObject({
      requestContext: { condition: 'EventAgeExceeded', approximateInvokeCount: 1 },
      requestPayload: { job: 2 },
    });
  });

  it('counts a timed-out attempt as failed and retries it, Lambda’s default being two retries', async () => {
    const hanging = recording('Hanging', () => new Promise(() => undefined), 20);
    const invoker = createAsyncInvoker({ retryDelaysMs: [5, 10] });
    invoker.invoke(hanging.fn, {});
    await invoker.idle();
    expect(hanging.events).toHaveLength(3);
  });

  it('succeeds without a record: the destination is for failures only', async () => {
    const destination = recording('Destination', async () => undefined);
    let calls = 0;
    const flaky = recording('Flaky', async () => {
      if (++calls === 1) throw new Error('once');
    });
    const fn = {
      ...flaky.fn,
      asyncInvoke: { maxEventAgeSeconds: 300, retryAttempts: 1, onFailure: destination.fn },
    };
    const invoker = createAsyncInvoker({ retryDelaysMs: [5] });
    invoker.invoke(fn, {});
    await invoker.idle();
    expect(flaky.events).toHaveLength(2);
    expect(destination.events).toEqual([]);
  });
});

/**
 * Through the local stack, with the settings `FUNCTIONS.reply.asyncInvoke` declares for AWS: a
 * reply runner that throws every time is retried once, then its job goes to the real
 * `replyFailure` function, which refunds the request and tells the user.
 */
describe('a reply job the runner never completes (local stack)', () => {
  let stack: LocalStack;
  let runnerCalls = 0;
  let destinationCalls = 0;
  beforeAll(async () => {
    stack = await startTestStack(
      {},
      {
        asyncRetryDelaysMs: [20, 40],
        wrapHandlers: {
          reply: () =>
            (async () => {
              runnerCalls++;
              throw new Error('the runner crashed');
            }) as LambdaHandler,
          replyFailure: (real) =>
            (async (event: never, context: never) => {
              destinationCalls++;
              return real(event, context);
            }) as LambdaHandler,
        },
      },
    );
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs the destination once after the retries, which refunds the request and tells the user once', async () => {
    const { token } = await newUser('dropped');
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request(
      { action: 'sendMessage', requestId: 'r1', message: 'hello there' },
      'message_accepted',
    );
    const failed = await client.next((f) => f.type === 'request_failed' && f.requestId === 'r1');
    expect(failed.reason ?? failed.message).toMatch(/nothing was charged/);
    await stack.processorIdle();
    expect(runnerCalls).toBe(1 + FUNCTIONS.reply.asyncInvoke.retryAttempts);
    expect(destinationCalls).toBe(1);
    expect(client.ofType('request_failed', 'r1')).toHaveLength(1);
    const status = await client.request({ action: 'status' }, 'status');
    const daily = (status.limits as { name: string; used: number }[]).find((l) => l.name === 'dailyTokens');
    expect(daily?.used).toBe(0);
    client.close();
  }, 30_000);

  it('refuses what is not a reply job’s invocation record, and changes nothing', async () => {
    const lambda = new LambdaClient({
      endpoint: stack.httpUrl,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const answer = async (payload: unknown) => {
      const { Payload } = await lambda.send(
        new InvokeCommand({
          FunctionName: FUNCTIONS.replyFailure.id,
          Payload: new TextEncoder().encode(JSON.stringify(payload)),
        }),
      );
      return JSON.parse(new TextDecoder().decode(Payload));
    };
    const before = destinationCalls;
    expect(await answer({ hello: 'world' })).toBe('refused');
    expect(
      await answer({
        requestContext: { condition: 'RetriesExhausted' },
        requestPayload: { v: 1, userId: 'x' },
      }),
    ).toBe('refused');
    expect(destinationCalls - before).toBe(2);
  });
});
