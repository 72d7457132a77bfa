import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/**
 * Issue 23 item 1: a function that fails in `npm start` says so in its terminal (the stack's
 * `log`), naming the route and the error, never the message the person sent.
 */
describe('a failing handler in the local stack', () => {
  let stack: LocalStack;
  const lines: string[] = [];
  beforeAll(async () => {
    stack = await startTestStack(
      {},
      {
        log: (line) => lines.push(line),
        wrapHandlers: {
          message: () => async () => {
            throw new Error('table Limits does not answer');
          },
          connect: (handler) => async (event: never, context: never) => {
            const e = event as { queryStringParameters?: Record<string, string> };
            if (e.queryStringParameters?.fail === '1') throw new Error('connections table is gone');
            return handler(event, context);
          },
        },
      },
    );
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('prints the route and the error, not the content, and the client gets API Gateway’s frame', async () => {
    const { token } = await newUser('fails');
    const client = await TestClient.connect(stack.wsUrl, token);
    client.send({ action: 'sendMessage', requestId: 'r1', message: 'my secret plan' });
    await client.next((f) => (f as { message?: string }).message === 'Internal server error');
    expect(lines).toEqual(['route sendMessage failed: table Limits does not answer']);
    client.close();
  });

  it('prints a failed $connect, and not a token the authorizer denies', async () => {
    lines.length = 0;
    const { token } = await newUser('connect');
    expect(await TestClient.refusal(`${stack.wsUrl}?fail=1&token=${token}`)).toBe(500);
    expect(await TestClient.refusal(stack.wsUrl, 'not-a-jwt')).toBe(403);
    expect(lines).toEqual(['route $connect failed: connections table is gone']);
  });
});
