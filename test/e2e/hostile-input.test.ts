import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { hostileCorpus } from '../support/hostile-corpus';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

const usage = (status: Record<string, unknown>) =>
  (status.limits as { name: string; used: number }[]).map((l) => `${l.name}=${l.used}`).join(',');

describe('hostile input', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers each of 1,000+ malformed or adversarial frames with a protocol error and changes nothing', async () => {
    // A bystander with a queued request: nothing the attacker sends may touch it.
    const victim = await newUser('victim');
    const bystander = await TestClient.connect(stack.wsUrl, victim.token);
    for (let i = 0; i < 26; i++)
      bystander.send({ action: 'sendMessage', requestId: `v${i}`, message: 'mine' });
    await bystander.until(() => bystander.ofType('request_queued').length === 1, 15_000);
    const victimQueued = bystander.ofType('request_queued').map((f) => f.requestId as string);

    const attacker = await newUser('attacker');
    const client = await TestClient.connect(stack.wsUrl, attacker.token);
    const before = await client.request({ action: 'status' }, 'status');
    const corpus = hostileCorpus(20261124, victimQueued);
    expect(corpus.length).toBeGreaterThanOrEqual(1000);

    // In bursts of 50, like a client hammering within the stage's throttle (100 rps, burst 200).
    // A burst is answered before the next is sent, so its 50 replies are those of its 50 frames
    // (in any order): each burst's codes must be exactly the codes its frames must get.
    const start = client.frames.length;
    for (let i = 0; i < corpus.length; i += 50) {
      const burst = corpus.slice(i, i + 50);
      const before = client.frames.length;
      for (const { frame } of burst) client.send(frame);
      await client.until(() => client.frames.length - before >= burst.length, 10_000);
      const replies = client.frames.slice(before);
      expect(replies.filter((f) => f.type !== 'error')).toEqual([]);
      const got = replies.map((f) => String(f.code)).sort();
      expect(got, `frames ${i}..${i + burst.length - 1}`).toEqual(burst.map((f) => f.expected).sort());
    }
    expect(client.frames.length - start).toBe(corpus.length);
    // Every code the protocol has for a bad frame was exercised.
    expect(new Set(corpus.map((f) => f.expected))).toEqual(
      new Set(['INVALID_REQUEST', 'UNKNOWN_ACTION', 'MESSAGE_TOO_LARGE', 'NOT_FOUND']),
    );
    expect(client.closeCode).toBeUndefined();

    const after = await client.request({ action: 'status' }, 'status');
    expect(usage(after)).toBe(usage(before));
    expect(after.queue).toEqual({ queued: 0, requests: [] });
    expect(Object.prototype).not.toHaveProperty('isAdmin');
    expect(Object.prototype).not.toHaveProperty('polluted');

    // The bystander's queued request still runs, exactly once.
    await bystander.until(() => bystander.ofType('message_complete').length === 26, 20_000);
    expect(bystander.ofType('request_cancelled')).toEqual([]);
    client.close();
    bystander.close();
  }, 60_000);

  it('closes the connection on frames API Gateway would refuse: binary (1003) and over 32 KB (1009)', async () => {
    const { token } = await newUser('frames');
    const binary = await TestClient.connect(stack.wsUrl, token);
    binary.socket.send(Buffer.from([1, 2, 3]));
    await binary.until(() => binary.closeCode !== undefined, 5_000);
    expect(binary.closeCode).toBe(1003);

    const big = await TestClient.connect(stack.wsUrl, token);
    big.send(JSON.stringify({ action: 'sendMessage', message: 'z'.repeat(40 * 1024) }));
    await big.until(() => big.closeCode !== undefined, 5_000);
    expect(big.closeCode).toBe(1009);
  });

  it('refuses forged, expired, alg:none and wrong-algorithm tokens at the handshake', async () => {
    const forged = await signDevToken({ userId: 'mallory', secret: 'guessed-secret' });
    const expired = await signDevToken({ userId: 'mallory', expiresInSeconds: -1 });
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'mallory', exp: 9_999_999_999 })}.`;
    const noSub = await signDevToken({ userId: '' });
    for (const token of [forged, expired, none, noSub, 'garbage', '...', 'a.b.c']) {
      expect(await TestClient.refusal(stack.wsUrl, token)).toBe(403);
    }
    expect(await TestClient.refusal(stack.wsUrl, '')).toBe(401);
  });
});
