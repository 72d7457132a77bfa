import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { estimateTokens } from '../../lambda/core/tokens';
import { localDynamoClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/**
 * Conversations (SPEC §9.3, issue 24 item 5) through the local stack with real WebSocket clients.
 * Every message here is 7 characters ("turn 01"): 2 input tokens (four characters a token, rounded
 * up); the echo reply "Echo: turn 01" is 13 characters: 4 output tokens. One turn (the message and
 * its reply) is therefore 6 tokens of the next message's input.
 */
const OWN = 2;
const TURN = 6;

/**
 * The pro tier's input cap: the prompt and 3 turns (2 + 3 × 6 = 20), never a 4th. Enterprise
 * answers one request at a time, so a second message waits in the queue.
 */
const LIMITS = { tiers: { pro: { maxInputTokens: 20 }, enterprise: { requestsInFlight: 1 } } };

interface Usage {
  inputTokens: number;
  outputTokens: number;
}

const message = (i: number) => `turn ${String(i).padStart(2, '0')}`;

async function send(client: TestClient, requestId: string, text: string, conversationId?: string) {
  const complete = await client.request(
    { action: 'sendMessage', requestId, message: text, ...(conversationId ? { conversationId } : {}) },
    'message_complete',
  );
  expect(complete.requestId).toBe(requestId);
  return complete.usage as Usage;
}

describe('conversations', () => {
  let stack: LocalStack;
  let dynamo: DynamoProxy;

  /** The turn items of one conversation's key, in their order. */
  async function turnsOf(pk: string): Promise<Record<string, unknown>[]> {
    const { Items = [] } = await localDynamoClient(stack.emulators.dynamodbEndpoint).send(
      new QueryCommand({
        TableName: stack.resources.tables.requests,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: pk } },
      }),
    );
    return Items.map((item) => unmarshall(item));
  }
  beforeAll(async () => {
    dynamo = await startDynamoProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack(
      {
        LIMITS_CONFIG: JSON.stringify(LIMITS),
        CONVERSATION_TTL_SECONDS: '3600',
        // 20 ms between chunks: a 30-word reply holds the enterprise user's one slot for ~600 ms.
        ECHO_DELAY_MS: '20',
      },
      { dynamodbEndpoint: dynamo.endpoint },
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await dynamo?.stop();
  });

  it('costs a Query before the decision, a Query of the turns in the runner and a PutItem of its own turn', async () => {
    const { token } = await newUser('calls');
    const client = await TestClient.connect(stack.wsUrl, token);
    dynamo.reset();
    await send(client, 'n1', message(1));
    // Without a conversation: the decision, the claim and the settle, nothing else.
    expect(dynamo.calls()).toEqual({ UpdateItem: 3 });
    dynamo.reset();
    await send(client, 'k1', message(1), 'counted');
    // An empty conversation: its Query finds no turn, so the runner reads none; its turn is written.
    expect(dynamo.calls()).toEqual({ UpdateItem: 3, Query: 1, PutItem: 1 });
    dynamo.reset();
    await send(client, 'k2', message(2), 'counted');
    expect(dynamo.calls()).toEqual({ UpdateItem: 3, Query: 2, PutItem: 1 });
    client.close();
  });

  it("the second message's input is exactly the first turn and its own; without a conversation, its own", async () => {
    const { token } = await newUser('conv');
    const client = await TestClient.connect(stack.wsUrl, token);
    const alone = await send(client, 'a0', message(1));
    expect(alone).toMatchObject({ inputTokens: OWN, outputTokens: 4 });
    const first = await send(client, 'c1', message(1), 'talk');
    expect(first.inputTokens).toBe(OWN);
    const second = await send(client, 'c2', message(2), 'talk');
    expect(second.inputTokens).toBe(first.inputTokens + first.outputTokens + OWN);
    expect(second.inputTokens).toBe(8);
    // The same message outside the conversation carries nothing of it.
    expect((await send(client, 'a1', message(2))).inputTokens).toBe(OWN);
    // Another conversation of the same user starts empty.
    expect((await send(client, 'o1', message(2), 'other')).inputTokens).toBe(OWN);
    client.close();
  });

  it("another user's conversationId finds nothing of theirs", async () => {
    const alice = await newUser('alice');
    const mallory = await newUser('mallory');
    const a = await TestClient.connect(stack.wsUrl, alice.token);
    const m = await TestClient.connect(stack.wsUrl, mallory.token);
    await send(a, 'x1', message(1), 'shared-id');
    expect((await send(a, 'x2', message(2), 'shared-id')).inputTokens).toBe(OWN + TURN);
    expect((await send(m, 'y1', message(3), 'shared-id')).inputTokens).toBe(OWN);
    a.close();
    m.close();
  });

  it('21 earlier turns: only the last 20 are sent (CONVERSATION_TURNS default 20)', async () => {
    const { token } = await newUser('long');
    const client = await TestClient.connect(stack.wsUrl, token);
    const inputs: number[] = [];
    for (let i = 1; i <= 22; i++) inputs.push((await send(client, `l${i}`, message(i), 'long')).inputTokens);
    // Message k carries min(k - 1, 20) turns.
    expect(inputs).toEqual(Array.from({ length: 22 }, (_, k) => OWN + TURN * Math.min(k, 20)));
    expect(inputs[21]).toBe(122);
    client.close();
  });

  it("within the tier's input cap: pro's maxInputTokens 20 keeps the 3 newest turns", async () => {
    const { token } = await newUser('capped', 'pro');
    const client = await TestClient.connect(stack.wsUrl, token);
    const inputs: number[] = [];
    for (let i = 1; i <= 6; i++) inputs.push((await send(client, `p${i}`, message(i), 'capped')).inputTokens);
    expect(inputs).toEqual([2, 8, 14, 20, 20, 20]);
    client.close();
  });

  it('a queued message carries the turns its admission counted', async () => {
    const { token } = await newUser('queued', 'enterprise');
    const client = await TestClient.connect(stack.wsUrl, token);
    await send(client, 'q1', message(1), 'waits');
    // A long reply outside the conversation holds the one slot; the next message waits for it.
    await client.request(
      { action: 'sendMessage', requestId: 'long', message: Array(30).fill('word').join(' ') },
      'message_accepted',
    );
    const queued = await client.request(
      { action: 'sendMessage', requestId: 'q2', message: message(2), conversationId: 'waits' },
      'request_queued',
    );
    expect(queued.requestId).toBe('q2');
    const complete = await client.next((f) => f.type === 'message_complete' && f.requestId === 'q2');
    expect((complete.usage as Usage).inputTokens).toBe(OWN + TURN);
    client.close();
  });

  it('a stopped reply enters the conversation as produced: the next input counts exactly its text', async () => {
    const { userId, token } = await newUser('stopped');
    const client = await TestClient.connect(stack.wsUrl, token);
    // 60 words at 20 ms a chunk: streams for over a second; it is stopped after three chunks.
    const long = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
    client.send({ action: 'sendMessage', requestId: 's1', message: long, conversationId: 'cut' });
    await client.until(() => client.ofType('chunk', 's1').length >= 3);
    client.send({ action: 'cancel', requestId: 's1' });
    const stopped = await client.next((f) => f.type === 'message_complete' && f.requestId === 's1');
    const produced = client.frames
      .slice(0, client.frames.indexOf(stopped))
      .filter((f) => f.type === 'chunk' && f.requestId === 's1')
      .map((c) => String(c.text))
      .join('');
    expect(stopped).toMatchObject({ stopped: true, text: produced });
    expect(produced.startsWith('Echo: w0 w1')).toBe(true);
    expect(produced.length).toBeLessThan(`Echo: ${long}`.length);
    expect((stopped.usage as Usage).outputTokens).toBe(estimateTokens(produced));

    const next = await send(client, 's2', message(2), 'cut');
    expect(next.inputTokens).toBe(estimateTokens(long) + estimateTokens(produced) + OWN);
    // Not the whole reply the model would have given.
    expect(next.inputTokens).toBeLessThan(estimateTokens(long) + estimateTokens(`Echo: ${long}`) + OWN);

    const items = await turnsOf(`conv#${userId}#cut`);
    expect(items.map((item) => [item.user, item.assistant])).toEqual([
      [long, produced],
      [message(2), `Echo: ${message(2)}`],
    ]);
    client.close();
  });

  it('each turn is one item under the user’s own key, with its TTL (CONVERSATION_TTL_SECONDS)', async () => {
    const { userId, token } = await newUser('ttl');
    const client = await TestClient.connect(stack.wsUrl, token);
    await send(client, 't1', message(1), 'kept');
    await send(client, 't2', message(2), 'kept');
    const dynamo = localDynamoClient(stack.emulators.dynamodbEndpoint);
    const { Items = [] } = await dynamo.send(
      new QueryCommand({
        TableName: stack.resources.tables.requests,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `conv#${userId}#kept` } },
      }),
    );
    const items = Items.map((item) => unmarshall(item));
    expect(items.map((item) => [item.user, item.assistant])).toEqual([
      ['turn 01', 'Echo: turn 01'],
      ['turn 02', 'Echo: turn 02'],
    ]);
    for (const item of items) {
      const [, at, requestId] = String(item.sk).split('#');
      expect(['t1', 't2']).toContain(requestId);
      // Written when the reply ended, an hour's TTL from then: the reply ends within seconds.
      const written = Number(item.ttlEpochSeconds) - 3600;
      expect(written).toBeGreaterThanOrEqual(Math.floor(Number(at) / 1000));
      expect(written).toBeLessThanOrEqual(Math.floor(Number(at) / 1000) + 5);
    }
    client.close();
  });
});
