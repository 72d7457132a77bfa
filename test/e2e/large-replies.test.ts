import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../../lambda/core/protocol';
import { localDynamoClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient } from '../support/ws-client';

/**
 * SPEC §3 v2: every server message fits API Gateway's limits (32 KB frames, 128 KB messages),
 * however large the reply. The echo model repeats each message 32 times here (`ECHO_REPEAT`), and
 * the messages are emoji (4 bytes each in UTF-8), so replies of 200 KB and 1 MB are made on purpose.
 */
const REPEAT = 32;
const EMOJI = '\u{1F600}';

describe('large replies', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ ECHO_REPEAT: String(REPEAT) });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const expectedReply = (prompt: string) => `Echo: ${Array.from({ length: REPEAT }, () => prompt).join(' ')}`;
  const bytes = (f: ServerFrame) => Buffer.byteLength(JSON.stringify(f));
  const textOf = (frames: ServerFrame[], requestId: string) =>
    frames
      .filter((f) => f.type === 'chunk' && f.requestId === requestId)
      .map((f) => String(f.text))
      .join('');

  for (const [label, perMessage] of [
    ['200 KB', 1_600],
    ['1 MB', 7_999],
  ] as const) {
    it(`streams a ${label} reply in frames of at most 32 KB and a message_complete within 128 KB`, async () => {
      const { token } = await newUser('large', 'enterprise');
      const client = await TestClient.connect(stack.wsUrl, token);
      const prompt = EMOJI.repeat(perMessage);
      const complete = await client.request(
        { action: 'sendMessage', requestId: 'big', message: prompt, maxTokens: 70_000 },
        'message_complete',
        30_000,
      );
      const expected = expectedReply(prompt);
      expect(Buffer.byteLength(expected)).toBeGreaterThan(perMessage === 7_999 ? 1_000_000 : 200_000);
      expect(textOf(client.frames, 'big')).toBe(expected);
      for (const f of client.ofType('chunk', 'big')) expect(bytes(f)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
      expect(bytes(complete)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(complete).toMatchObject({ textOmitted: true });
      expect(complete.text).toBeUndefined();
      expect((complete.usage as { outputTokens: number }).outputTokens).toBe(
        Math.ceil([...expected].length / 4),
      );
      client.close();
    }, 60_000);
  }

  it('keeps a 1 MB reply whose sender left, and re-delivers it on resume in the same sizes', async () => {
    const { userId, token } = await newUser('gone', 'enterprise');
    const first = await TestClient.connect(stack.wsUrl, token);
    const prompt = EMOJI.repeat(7_999);
    await first.request(
      { action: 'sendMessage', requestId: 'kept', message: prompt, maxTokens: 70_000 },
      'message_accepted',
    );
    first.close();
    // The reply runner finishes with nobody connected and keeps the reply, in parts (bounded wait).
    const store = new ReplyStore(
      localDynamoClient(stack.emulators.dynamodbEndpoint),
      stack.resources.tables.requests,
    );
    const deadline = Date.now() + 20_000;
    while ((await store.listReplies(userId, Date.now())).length === 0) {
      if (Date.now() > deadline) throw new Error('the reply was never kept');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const second = await TestClient.connect(stack.wsUrl, token);
    const complete = await second.request({ action: 'resume' }, 'message_complete', 30_000);
    expect(complete).toMatchObject({ requestId: 'kept', textOmitted: true });
    expect(textOf(second.frames, 'kept')).toBe(expectedReply(prompt));
    for (const f of second.frames) expect(bytes(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    for (const f of second.ofType('chunk')) expect(bytes(f)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    // Delivered once: a second resume has nothing left.
    const from = second.frames.length;
    second.send({ action: 'ping' });
    second.send({ action: 'resume' });
    await second.next((f) => f.type === 'pong', { from });
    await stack.processorIdle();
    expect(second.frames.slice(from).filter((f) => f.type === 'message_complete')).toHaveLength(0);
    const gone = Date.now() + 5_000;
    while ((await store.listReplies(userId, Date.now())).length > 0) {
      if (Date.now() > gone) throw new Error('the kept reply was not dropped after resume');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    second.close();
  }, 60_000);
});
