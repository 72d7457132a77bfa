import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateTokens } from '../../lambda/core/tokens';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient } from '../support/ws-client';

/**
 * SPEC §9.3 "Stop a reply", through the local stack with real WebSocket clients: `cancel` of a
 * request being answered stops it within a second, charges what it produced, frees its in-flight
 * slot and ends it with `message_complete` `stopped: true`; no chunk follows. One slot per user,
 * so a request sent after the stop is admitted only if the stop's settle freed it.
 */
const LIMITS = { tiers: { free: { requestsInFlight: 1, messagesPerMinute: 10_000, burst: 1_000 } } };
/** 40 words: echoed one word every 100 ms, a reply streams for about 4 s. */
const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

describe('stopping a reply', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ LIMITS_CONFIG: JSON.stringify(LIMITS), ECHO_DELAY_MS: '100' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Sends `cancel` once three chunks of `requestId` arrived; resolves with the stopped reply. */
  async function stopAfterThreeChunks(
    streaming: TestClient,
    canceller: TestClient,
    requestId: string,
  ): Promise<{ complete: ServerFrame; completeAt: number }> {
    await streaming.until(() => streaming.ofType('chunk', requestId).length >= 3);
    canceller.send({ action: 'cancel', requestId });
    // SPEC §9.3: the model stops within 1 s of the cancel.
    const complete = await streaming.next((f) => f.type === 'message_complete' && f.requestId === requestId, {
      timeoutMs: 1000,
    });
    return { complete, completeAt: streaming.frames.indexOf(complete) };
  }

  it('stops a direct reply from another connection: stopped, charged what the chunks carried, slot free at once', async () => {
    const { token } = await newUser('stopper');
    const { token: otherToken } = await newUser('mallory');
    const client = await TestClient.connect(stack.wsUrl, token);
    const second = await TestClient.connect(stack.wsUrl, token);
    const mallory = await TestClient.connect(stack.wsUrl, otherToken);

    client.send({ action: 'sendMessage', requestId: 'long', message: LONG });
    await client.until(() => client.ofType('chunk', 'long').length >= 1);
    // Another user's cancel of the same id: not found, and the reply goes on.
    const refused = await mallory.request({ action: 'cancel', requestId: 'long' }, 'error');
    expect(refused).toMatchObject({ code: 'NOT_FOUND', requestId: 'long' });

    const { complete, completeAt } = await stopAfterThreeChunks(client, second, 'long');
    const chunks = client.frames
      .slice(0, completeAt)
      .filter((f) => f.type === 'chunk' && f.requestId === 'long');
    const produced = chunks.map((c) => String(c.text)).join('');
    expect(complete.stopped).toBe(true);
    expect(complete.text).toBe(produced);
    expect(produced.startsWith('Echo: word0 word1 word2')).toBe(true);
    expect(produced.length).toBeLessThan(`Echo: ${LONG}`.length);
    const usage = complete.usage as Usage;
    expect(usage).toMatchObject({
      inputTokens: estimateTokens(LONG),
      outputTokens: estimateTokens(produced),
      totalTokens: estimateTokens(LONG) + estimateTokens(produced),
    });
    // The settle charged exactly that, and gave the slot back.
    const status = await client.request({ action: 'status' }, 'status');
    const limits = status.limits as { name: string; used: number }[];
    expect(limits.find((l) => l.name === 'dailyTokens')?.used).toBe(usage.totalTokens);
    expect(limits.find((l) => l.name === 'requestsInFlight')?.used).toBe(0);

    // The next request takes the one slot at once.
    const from = client.frames.length;
    client.send({ action: 'sendMessage', requestId: 'next', message: 'hi' });
    const first = await client.next((f) => f.requestId === 'next', { from });
    expect(first.type).toBe('message_accepted');
    await client.next((f) => f.type === 'message_complete' && f.requestId === 'next', { from });
    // Nothing of the stopped reply came after its message_complete, on any connection.
    expect(client.frames.slice(completeAt + 1).filter((f) => f.requestId === 'long')).toEqual([]);
    expect(client.ofType('message_complete', 'long')).toHaveLength(1);
    expect(second.frames.filter((f) => f.requestId === 'long')).toEqual([]);
    // A second cancel of the ended reply: not found.
    const again = await second.request({ action: 'cancel', requestId: 'long' }, 'error');
    expect(again).toMatchObject({ code: 'NOT_FOUND', requestId: 'long' });
    for (const c of [client, second, mallory]) c.close();
  });

  it('stops a reply replayed from the queue, and the next queued request starts', async () => {
    const { token } = await newUser('queued-stop');
    const client = await TestClient.connect(stack.wsUrl, token);
    client.send({ action: 'sendMessage', requestId: 'a', message: LONG });
    await client.next((f) => f.type === 'message_accepted' && f.requestId === 'a');
    client.send({ action: 'sendMessage', requestId: 'b', message: LONG });
    client.send({ action: 'sendMessage', requestId: 'c', message: 'short one' });
    await client.until(() => client.ofType('request_queued').length === 2);

    const stoppedA = await stopAfterThreeChunks(client, client, 'a');
    expect(stoppedA.complete.stopped).toBe(true);
    // The slot A held goes to B, the head of the queue, which is then stopped in turn.
    await client.next((f) => f.type === 'queue_processing_started' && f.requestId === 'b');
    const { complete, completeAt } = await stopAfterThreeChunks(client, client, 'b');
    const produced = client.frames
      .slice(0, completeAt)
      .filter((f) => f.type === 'chunk' && f.requestId === 'b')
      .map((c) => String(c.text))
      .join('');
    expect(complete).toMatchObject({ stopped: true, text: produced });
    expect((complete.usage as Usage).outputTokens).toBe(estimateTokens(produced));
    // C runs to its end, not stopped.
    const c = await client.next((f) => f.type === 'message_complete' && f.requestId === 'c');
    expect(c.stopped).toBeUndefined();
    expect(c.text).toBe('Echo: short one');
    expect(client.frames.slice(completeAt + 1).filter((f) => f.requestId === 'b')).toEqual([]);
    client.close();
  });
});
