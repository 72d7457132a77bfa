import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { App, type Stack } from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { CfnQueue } from 'aws-cdk-lib/aws-sqs';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FUNCTIONS,
  type FunctionKey,
  QUEUES,
  type QueueKey,
  resourceName,
} from '../../lambda/core/resources';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';
import { FunctionTimeoutError, INTEGRATION_TIMEOUT_MS } from '../../local/gateway';
import { invokeFunction } from '../../local/gateway/lambda-runner';
import { createLocalResources } from '../../local/resources';
import { localTimeouts } from '../../local/stack';
import { createTestResources } from '../support/emulators';

/** How a slow function spends its time (the tests themselves wait for events, never for time). */
const work = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('invokeFunction (the local Lambda runner)', () => {
  let server: Server;
  const received: string[] = [];
  // Keep-alive, as the SDK's clients: a reused socket must not let a refused request through.
  const agent = new Agent({ keepAlive: true });
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const port = (server.address() as AddressInfo).port;
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end('body');
    });

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it("gives the handler a context that counts down from the function's Timeout", async () => {
    const remaining = (await invokeFunction(
      {
        name: 'Clock',
        timeoutMs: 10_000,
        handler: async (_event: never, context: never) => (context as Context).getRemainingTimeInMillis(),
      },
      {},
    )) as number;
    expect(remaining).toBeGreaterThan(9_000);
    expect(remaining).toBeLessThanOrEqual(10_000);
  });

  it('returns what the handler returns in time and rethrows what it throws', async () => {
    await expect(
      invokeFunction({ name: 'Ok', timeoutMs: 1_000, handler: async () => 'done' }, {}),
    ).resolves.toBe('done');
    const broken = {
      name: 'Broken',
      timeoutMs: 1_000,
      handler: async () => {
        throw new TypeError('nope');
      },
    };
    await expect(invokeFunction(broken, {})).rejects.toThrow(TypeError);
  });

  it("abandons an invocation past its Timeout with Lambda's error, and ignores its late result", async () => {
    let returnedLate = false;
    const slow = {
      name: 'Slow',
      timeoutMs: 150,
      handler: async () => {
        await work(400);
        returnedLate = true;
        return 'too late';
      },
    };
    const error = await invokeFunction(slow, {}).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(returnedLate).toBe(false);
    expect(error).toBeInstanceOf(FunctionTimeoutError);
    expect((error as FunctionTimeoutError).errorType).toBe('Sandbox.Timedout');
    expect((error as Error).message).toMatch(
      /^RequestId: [0-9a-f-]{36} Error: Task timed out after 0\.15 seconds$/,
    );
  });

  it("refuses every HTTP request an abandoned invocation starts, and no one else's", async () => {
    const outcomes: Record<string, string> = {};
    const settle = (path: string) =>
      get(path).then(
        (status) => {
          outcomes[path] = String(status);
        },
        (err: Error) => {
          outcomes[path] = err.message;
        },
      );
    let chattyEnded!: () => void;
    const chattyDone = new Promise<void>((resolve) => {
      chattyEnded = resolve;
    });
    const chatty = {
      name: 'Chatty',
      timeoutMs: 150,
      handler: async () => {
        await settle('/chatty-before');
        await work(400);
        await settle('/chatty-after');
        chattyEnded();
      },
    };
    const patient = {
      name: 'Patient',
      timeoutMs: 5_000,
      handler: async () => {
        await work(400);
        await settle('/patient');
      },
    };
    const [chattyResult] = await Promise.allSettled([
      invokeFunction(chatty, {}),
      invokeFunction(patient, {}),
    ]);
    await chattyDone;
    expect(chattyResult.status).toBe('rejected');
    expect(outcomes['/chatty-before']).toBe('200');
    expect(outcomes['/chatty-after']).toMatch(/^Chatty timed out/);
    expect(outcomes['/patient']).toBe('200');
    expect(received).toContain('/chatty-before');
    expect(received).toContain('/patient');
    expect(received).not.toContain('/chatty-after');
  });
});

describe('localTimeouts (what the local stack enforces)', () => {
  it("is each function's Timeout from FUNCTIONS, and API Gateway's 29 s, unless told otherwise", () => {
    const timeouts = localTimeouts();
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      expect(timeouts.functionsMs[key]).toBe(FUNCTIONS[key].timeoutSeconds * 1000);
    }
    expect(timeouts.integrationMs).toBe(29_000);
    expect(INTEGRATION_TIMEOUT_MS).toBe(29_000);
  });

  it('scales every timeout for tests and takes single overrides', () => {
    const timeouts = localTimeouts({ timeoutScale: 0.01, functionTimeoutsMs: { processor: 250 } });
    expect(timeouts.integrationMs).toBe(290);
    expect(timeouts.functionsMs.message).toBe(FUNCTIONS.message.timeoutSeconds * 10);
    expect(timeouts.functionsMs.processor).toBe(250);
    expect(() => localTimeouts({ timeoutScale: 0 })).toThrow(/timeoutScale/);
  });
});

describe('parity with the synthesized stack', () => {
  let stack: Stack;
  beforeAll(() => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    stack = new ChatLimiterStack(app, 'Parity', { env: { account: '123456789012', region: 'eu-west-1' } });
  }, 60_000);

  /** A value of each L1 resource of `type`, keyed by the id of the construct that made it. */
  function byDefinitionId<T>(type: new (...args: never[]) => T, value: (resource: T) => unknown) {
    const found: Record<string, unknown> = {};
    for (const construct of stack.node.findAll()) {
      if (construct instanceof type) found[construct.node.scope!.node.id] = stack.resolve(value(construct));
    }
    return found;
  }

  it('enforces the Timeout the stack gives each function', () => {
    const deployed = byDefinitionId(CfnFunction, (fn) => fn.timeout);
    const local = localTimeouts();
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      expect(local.functionsMs[key]).toBe(Number(deployed[FUNCTIONS[key].id]) * 1000);
    }
  });

  it('creates the local queues with the visibility timeouts the stack gives them', async () => {
    const deployed = byDefinitionId(CfnQueue, (queue) => queue.visibilityTimeout);
    const res = await createTestResources('parity');
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      const { Attributes } = await res.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: res.queues[key].url,
          AttributeNames: ['VisibilityTimeout'],
        }),
      );
      expect(Number(Attributes?.VisibilityTimeout)).toBe(deployed[QUEUES[key].id]);
    }
  });

  it('brings a queue an older run left with other attributes in line with the stack', async () => {
    const res = await createTestResources('parity');
    const prefix = `old-${res.tables.limits.split('-')[1]}`;
    await res.sqs.send(
      new CreateQueueCommand({
        QueueName: resourceName(prefix, QUEUES.requests.name),
        Attributes: { FifoQueue: 'true', VisibilityTimeout: '120' },
      }),
    );
    const again = await createLocalResources(res.dynamo, res.sqs, prefix);
    const { Attributes } = await res.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: again.queues.requests.url, AttributeNames: ['All'] }),
    );
    const deployed = byDefinitionId(CfnQueue, (queue) => queue.visibilityTimeout);
    expect(Number(Attributes?.VisibilityTimeout)).toBe(deployed[QUEUES.requests.id]);
    expect(JSON.parse(Attributes?.RedrivePolicy ?? '{}').deadLetterTargetArn).toBe(again.queues.dlq.arn);
  });
});
