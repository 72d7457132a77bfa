import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS, ROUTES } from '../../lambda/core/resources';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/**
 * SPEC §1 v2: a reply of any length reaches its client; reply generation never depends on a route
 * invocation staying open. Every Timeout of the stack (and API Gateway's 29 s) is scaled down 20×
 * here, so a 3 s reply is, in proportion, a 60 s reply in AWS: twice the integration timeout.
 */
const SCALE = 0.05;

describe('replies longer than a route may run', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ ECHO_DELAY_MS: '100' }, { timeoutScale: SCALE });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('streams a reply past the integration timeout to message_complete, with no gateway error frame', async () => {
    const routeMs = Math.min(29_000, FUNCTIONS[ROUTES.sendMessage].timeoutSeconds * 1000) * SCALE;
    const { token } = await newUser('long');
    const client = await TestClient.connect(stack.wsUrl, token);
    const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
    const started = Date.now();
    const complete = await client.request(
      { action: 'sendMessage', requestId: 'long', message: words, maxTokens: 200 },
      'message_complete',
      20_000,
    );
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThan(2 * routeMs);
    expect(complete.text).toContain('w29');
    expect(client.ofType('chunk', 'long').length).toBeGreaterThan(20);
    expect(client.frames.filter((f) => String(f.message ?? '').includes('timed out'))).toHaveLength(0);
    expect(client.frames.filter((f) => f.type === 'error')).toHaveLength(0);
    // Settled: the reservation was reconciled to what the model produced.
    const status = await client.request({ action: 'status' }, 'status');
    const daily = (status.limits as { name: string; used: number }[]).find((l) => l.name === 'dailyTokens');
    expect(daily?.used).toBe((complete.usage as { totalTokens: number }).totalTokens);
    client.close();
  }, 30_000);

  it('replays a queued long reply too: the next one waits for the first to settle, none times out', async () => {
    const { token } = await newUser('longq');
    const client = await TestClient.connect(stack.wsUrl, token);
    const words = Array.from({ length: 15 }, (_, i) => `x${i}`).join(' ');
    for (let i = 0; i < 27; i++) client.send({ action: 'sendMessage', requestId: `q${i}`, message: words });
    await client.until(() => client.ofType('message_complete').length === 27, 25_000);
    expect(client.ofType('request_queued')).toHaveLength(2);
    expect(client.frames.filter((f) => String(f.message ?? '').includes('timed out'))).toHaveLength(0);
    client.close();
  }, 30_000);
});
