import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { TestClient, untilTime } from '../support/ws-client';

/**
 * Issue 20, finding 19: API Gateway authorizes a WebSocket only at `$connect`, so a connection
 * outlived its token by up to 2 hours. The authorizer passes the token's `exp` on; the Message
 * function refuses a frame after it with `TOKEN_EXPIRED` and closes the connection
 * (`DELETE @connections/{id}`), through the local gateway with real WebSocket clients.
 */
describe('a connection whose token expires', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is refused with TOKEN_EXPIRED and closed after exp, while a valid token keeps chatting', async () => {
    const nowMs = Date.now();
    const expiring = await signDevToken({ userId: 'expiring-user', expiresInSeconds: 2, nowMs });
    const expiresAtMs = (Math.floor(nowMs / 1000) + 2) * 1000;
    const valid = await signDevToken({ userId: 'valid-user' });
    const short = await TestClient.connect(stack.wsUrl, expiring);
    const long = await TestClient.connect(stack.wsUrl, valid);

    // Before exp the connection chats like any other.
    expect((await short.request({ action: 'ping' }, 'pong')).type).toBe('pong');

    // The wall clock is the stack's: wait until exp (bounded by untilTime's 10 s), not a guess.
    await untilTime(expiresAtMs);
    const from = short.frames.length;
    short.send({ action: 'sendMessage', requestId: 'after-exp', message: 'still there?' });
    const refused = await short.next((f) => f.type === 'error', { from });
    expect(refused).toMatchObject({ type: 'error', code: 'TOKEN_EXPIRED' });
    await short.until(() => short.closeCode !== undefined);
    expect(short.closeCode).toBe(1000);
    // Nothing else happened for that frame: no acceptance, no reply.
    expect(short.frames.slice(from).map((f) => f.type)).toEqual(['error']);

    // The other connection, with a valid token, is untouched.
    const reply = await long.request(
      { action: 'sendMessage', requestId: 'still-fine', message: 'hello' },
      'message_complete',
    );
    expect(reply).toMatchObject({ requestId: 'still-fine' });
    long.close();
  }, 30_000);
});
