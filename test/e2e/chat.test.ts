import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamoClient } from '../../local/aws-clients';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

describe('chat over the local gateway', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('admits a message and streams the reply: accepted, chunks in order, complete with usage', async () => {
    const { token } = await newUser('alice');
    const client = await TestClient.connect(stack.wsUrl, token);
    client.send({ action: 'sendMessage', requestId: 'first', message: 'hello there world' });
    const complete = await client.next((f) => f.type === 'message_complete');
    expect(client.ofType('message_accepted', 'first')).toHaveLength(1);
    const chunks = client.ofType('chunk', 'first');
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
    expect(chunks.map((c) => c.text).join('')).toBe(complete.text);
    const usage = complete.usage as { inputTokens: number; outputTokens: number; totalTokens: number };
    expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
    expect(usage.outputTokens).toBeGreaterThan(0);
    client.close();
  });

  it('answers ping with pong and status with the limits of the tier', async () => {
    const { userId, token } = await newUser('bob', 'pro');
    const client = await TestClient.connect(stack.wsUrl, token);
    expect((await client.request({ action: 'ping' }, 'pong')).timestamp).toEqual(expect.any(Number));
    const status = await client.request({ action: 'status' }, 'status');
    expect(status).toMatchObject({ userId, tier: 'pro', queue: { queued: 0, requests: [] } });
    const names = (status.limits as { name: string }[]).map((l) => l.name);
    expect(names).toEqual(expect.arrayContaining(['messageRate', 'dailyTokens']));
    client.close();
  });

  it('ignores a userId in the body: identity comes only from the token', async () => {
    const { userId, token } = await newUser('dave');
    const client = await TestClient.connect(stack.wsUrl, token);
    const status = await client.request({ action: 'status', userId: 'mallory' }, 'status');
    expect(status.userId).toBe(userId);
    client.send({ action: 'sendMessage', userId: 'mallory', requestId: 'x1', message: 'hi' });
    await client.next((f) => f.type === 'message_complete');
    const dynamo = localDynamoClient(stack.emulators.dynamodbEndpoint);
    const mallory = await dynamo.send(
      new GetItemCommand({ TableName: stack.resources.tables.limits, Key: { pk: { S: 'user#mallory' } } }),
    );
    expect(mallory.Item).toBeUndefined();
    client.close();
  });

  it.each<[string, string, string]>([
    ['malformed JSON', '{"action": "sendMessage", ', 'INVALID_REQUEST'],
    ['a JSON array', '[1,2,3]', 'INVALID_REQUEST'],
    ['no action', '{"message":"hi"}', 'UNKNOWN_ACTION'],
    ['an unknown action', '{"action":"deleteEverything"}', 'UNKNOWN_ACTION'],
    ['a message of the wrong type', '{"action":"sendMessage","message":42}', 'INVALID_REQUEST'],
    ['an empty message', '{"action":"sendMessage","message":""}', 'INVALID_REQUEST'],
    [
      'an oversize message',
      JSON.stringify({ action: 'sendMessage', message: 'x'.repeat(8001) }),
      'MESSAGE_TOO_LARGE',
    ],
    [
      'a bad requestId',
      '{"action":"sendMessage","message":"hi","requestId":"no spaces allowed"}',
      'INVALID_REQUEST',
    ],
    ['a negative maxTokens', '{"action":"sendMessage","message":"hi","maxTokens":-5}', 'INVALID_REQUEST'],
    ['a fractional maxTokens', '{"action":"sendMessage","message":"hi","maxTokens":1.5}', 'INVALID_REQUEST'],
    ['cancel without requestId', '{"action":"cancel"}', 'INVALID_REQUEST'],
    ['cancel of an unknown request', '{"action":"cancel","requestId":"nope"}', 'NOT_FOUND'],
  ])(
    'answers %s with an error, keeps the connection open and changes nothing',
    async (_name, frame, code) => {
      const { token } = await newUser('eve');
      const client = await TestClient.connect(stack.wsUrl, token);
      const before = await client.request({ action: 'status' }, 'status');
      const error = await client.request(frame, 'error');
      expect(error.code).toBe(code);
      expect(typeof error.message).toBe('string');
      const after = await client.request({ action: 'status' }, 'status');
      const usage = (status: typeof before) =>
        (status.limits as { name: string; used: number }[]).map((l) => [l.name, l.used]);
      expect(usage(after)).toEqual(usage(before));
      expect(client.closeCode).toBeUndefined();
      client.close();
    },
  );

  it('refuses the handshake without a token (401), with a forged or expired token (403)', async () => {
    expect(await TestClient.refusal(stack.wsUrl)).toBe(401);
    const forged = await signDevToken({ userId: 'mallory', secret: 'not-the-secret' });
    expect(await TestClient.refusal(stack.wsUrl, forged)).toBe(403);
    const expired = await signDevToken({ userId: 'mallory', expiresInSeconds: -60 });
    expect(await TestClient.refusal(stack.wsUrl, expired)).toBe(403);
    expect(await TestClient.refusal(stack.wsUrl, 'not.a.jwt')).toBe(403);
  });
});
