import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/**
 * SPEC §9.4: the token's `team` claim, through the local gateway with real WebSocket clients. The
 * authorizer passes it in its context, the gateway hands that context to every route as API
 * Gateway does, and the Message function puts it on the request (its `DecideInput.claimTeam`,
 * test/integration/team-claim.test.ts) and on the reply job. What a team limit then does is in
 * test/e2e/teams.test.ts.
 */
describe("a token's team claim through the local gateway", () => {
  let stack: LocalStack;
  const contexts: Record<string, unknown>[] = [];
  const jobs: Record<string, unknown>[] = [];
  beforeAll(async () => {
    stack = await startTestStack(
      {},
      {
        wrapHandlers: {
          message: (handler) => async (event: never, context: never) => {
            const e = event as { requestContext: { authorizer?: Record<string, unknown> } };
            contexts.push({ ...e.requestContext.authorizer });
            return handler(event, context);
          },
          reply: (handler) => async (event: never, context: never) => {
            jobs.push({ ...(event as Record<string, unknown>) });
            return handler(event, context);
          },
        },
      },
    );
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('reaches the Message function in the authorizer context and the reply job, beside the tier', async () => {
    const token = await signDevToken({ userId: 'tess', tier: 'pro', team: 'eng' });
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request(
      { action: 'sendMessage', requestId: 't1', message: 'hello team' },
      'message_complete',
    );
    expect(contexts).toHaveLength(1);
    expect(contexts[0]).toMatchObject({ principalId: 'tess', userId: 'tess', tier: 'pro', team: 'eng' });
    expect(jobs.map((j) => [j.requestId, j.userId, j.claimTier, j.claimTeam, j.source])).toEqual([
      ['t1', 'tess', 'pro', 'eng', 'direct'],
    ]);
    client.close();
  });

  it('a token without a team carries none', async () => {
    contexts.length = 0;
    jobs.length = 0;
    const client = await TestClient.connect(stack.wsUrl, await signDevToken({ userId: 'solo' }));
    await client.request({ action: 'sendMessage', requestId: 's1', message: 'alone' }, 'message_complete');
    expect(contexts).toHaveLength(1);
    expect('team' in contexts[0]!).toBe(false);
    expect(jobs.map((j) => [j.requestId, 'claimTeam' in j])).toEqual([['s1', false]]);
    client.close();
  });

  it('refuses the handshake (403) for a malformed team claim, as for a forged token', async () => {
    for (const team of ['eng team', '', 'x'.repeat(65), 'eng/ops']) {
      expect(await TestClient.refusal(stack.wsUrl, await signDevToken({ userId: 'mallory', team }))).toBe(
        403,
      );
    }
    // The same user with a well-formed claim is let in.
    const client = await TestClient.connect(
      stack.wsUrl,
      await signDevToken({ userId: 'mallory', team: 'ops' }),
    );
    client.close();
  });
});
