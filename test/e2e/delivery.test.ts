import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionRegistry } from '../../lambda/adapters/connections';
import { Notifier } from '../../lambda/adapters/notifier';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { messageComplete } from '../../lambda/core/protocol';
import { ReplyChannel } from '../../lambda/services/reply-channel';
import { LOCAL_CREDENTIALS, localDynamoClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** Replies through the real @connections API of the local gateway, with the real SDK client. */
describe('delivery over @connections', () => {
  let stack: LocalStack;
  let registry: ConnectionRegistry;
  let notifier: Notifier;
  beforeAll(async () => {
    stack = await startTestStack();
    registry = new ConnectionRegistry({
      client: localDynamoClient(stack.emulators.dynamodbEndpoint),
      tableName: stack.resources.tables.connections,
    });
    notifier = new Notifier({ endpoint: stack.managementEndpoint, credentials: LOCAL_CREDENTIALS, registry });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('removes a closed connection when @connections answers GoneException', async () => {
    const now = Date.now();
    await registry.register({
      connectionId: 'c2FtZS1vbGQ=',
      userId: 'gone-user',
      sourceIp: '127.0.0.1',
      connectedAtEpochMs: now,
      ttlSeconds: 600,
    });
    expect(await registry.get('c2FtZS1vbGQ=', now)).toBeDefined();
    expect(await notifier.send('c2FtZS1vbGQ=', { type: 'pong', timestamp: now })).toBe('gone');
    expect(await registry.get('c2FtZS1vbGQ=', now)).toBeUndefined();
  });

  it("falls back to the user's other live connection when the sender's is gone", async () => {
    const { userId, token } = await newUser('fallback');
    const live = await TestClient.connect(stack.wsUrl, token);
    await live.request({ action: 'ping' }, 'pong'); // registered by now
    const store = new ReplyStore(
      localDynamoClient(stack.emulators.dynamodbEndpoint),
      stack.resources.tables.requests,
    );
    const channel = new ReplyChannel(userId, 'Z29uZS1hbHJlYWR5', {
      sender: notifier,
      directory: registry,
      store,
      now: Date.now,
    });
    expect(
      await channel.deliverFinal(
        'r1',
        messageComplete('r1', 'hi', { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, Date.now()),
      ),
    ).toBe('delivered');
    expect((await live.next((f) => f.type === 'message_complete')).requestId).toBe('r1');
    live.close();
  });
});
