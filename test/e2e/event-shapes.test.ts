import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/apigw/${name}.json`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;

/**
 * The handlers take API Gateway's documented event shapes (fixtures modelled on AWS's examples),
 * and the local gateway produces the same shapes.
 */
describe('API Gateway event shapes', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('authorizer: allows a valid token from the documented REQUEST event, denies a forged one', async () => {
    const { handler } = await import('../../lambda/handlers/authorizer');
    const event = fixture('authorizer');
    const token = await signDevToken({ userId: 'alice', tier: 'pro' });
    const allowed = await handler({ ...event, queryStringParameters: { token } } as never);
    expect(allowed).toMatchObject({
      principalId: 'alice',
      policyDocument: { Statement: [{ Effect: 'Allow', Resource: event.methodArn }] },
      context: { userId: 'alice', tier: 'pro' },
    });
    const forged = await signDevToken({ userId: 'alice', secret: 'nope' });
    const denied = await handler({ ...event, queryStringParameters: { token: forged } } as never);
    expect(denied.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    await expect(handler({ ...event, queryStringParameters: {} } as never)).rejects.toThrow('Unauthorized');
  });

  it('message and disconnect handlers accept the documented events', async () => {
    const message = await import('../../lambda/handlers/message');
    const disconnect = await import('../../lambda/handlers/disconnect');
    // The fixture's connection does not exist here: the reply meets GoneException, quietly.
    expect(await message.handler(fixture('message') as never)).toEqual({ statusCode: 200 });
    expect(await disconnect.handler(fixture('disconnect') as never)).toEqual({ statusCode: 200 });
  });

  it('the local gateway builds events with the documented keys', async () => {
    const documented = Object.keys(
      (fixture('message').requestContext as Record<string, unknown>) ?? {},
    ).sort();
    const { messageEvent } = await import('../../local/gateway/events');
    const local = messageEvent(
      { apiId: 'local', stage: 'local', domainName: 'localhost:3001' },
      {
        connectionId: 'GXLKAfX1IAMCJ3A=',
        connectedAt: 1,
        sourceIp: '127.0.0.1',
        authorizer: { principalId: 'a', userId: 'a' },
      },
      'ping',
      '{"action":"ping"}',
      2,
    );
    expect(Object.keys(local.requestContext).sort()).toEqual(documented);
    expect(Object.keys(local).sort()).toEqual(Object.keys(fixture('message')).sort());
  });
});
