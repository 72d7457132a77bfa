import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdminCli } from '../../local/admin/admin-cli';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** The admin CLI, through the local Lambda Invoke API, into the admin handler, seen by chat. */
describe('admin operations, end to end', () => {
  let stack: LocalStack;
  let endpoint: string;
  beforeAll(async () => {
    stack = await startTestStack();
    endpoint = stack.httpUrl;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function admin(
    ...args: string[]
  ): Promise<{ code: number; out: string; err: string; json: unknown }> {
    let out = '';
    let err = '';
    const code = await runAdminCli([...args, '--endpoint', endpoint, '--json'], {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        err += s;
      },
    });
    return { code, out, err, json: out ? JSON.parse(out) : undefined };
  }

  async function sendBurst(client: TestClient, n: number): Promise<void> {
    for (let i = 0; i < n; i++) client.send({ action: 'sendMessage', requestId: `b${i}`, message: 'hi' });
    await client.until(
      () =>
        client.frames.filter((f) => ['message_accepted', 'request_queued', 'error'].includes(f.type))
          .length >= n,
      15_000,
    );
  }

  it('usage reports an unknown user as such, consuming nothing', async () => {
    const result = await admin('usage', 'nobody-at-all');
    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ ok: true, result: { known: false, status: { tier: 'free' } } });
  });

  it('reset --scope messages lets a user at the limit chat again at once', async () => {
    const { userId, token } = await newUser('reset');
    const client = await TestClient.connect(stack.wsUrl, token);
    await sendBurst(client, 25);
    expect(await admin('reset', userId, '--scope', 'messages')).toMatchObject({ code: 0 });
    const accepted = await client.request(
      { action: 'sendMessage', requestId: 'after', message: 'again' },
      'message_accepted',
    );
    expect(accepted.requestId).toBe('after');
    client.close();
  });

  it("usage shows the tier in effect and where it comes from: the last token's claim, then the record", async () => {
    const { userId, token } = await newUser('claim', 'pro');
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request({ action: 'sendMessage', requestId: 'p1', message: 'hi' }, 'message_accepted');
    const usage = async () =>
      (
        (await admin('usage', userId)).json as {
          result: { tierSource: string; status: { tier: string; limits: { name: string; limit: number }[] } };
        }
      ).result;
    const seen = await usage();
    expect([seen.tierSource, seen.status.tier]).toEqual(['last token', 'pro']);
    expect(seen.status.limits.find((l) => l.name === 'messageRate')?.limit).toBe(80);
    expect((await admin('set-tier', userId, '--tier', 'enterprise')).code).toBe(0);
    const set = await usage();
    expect([set.tierSource, set.status.tier]).toEqual(['record', 'enterprise']);
    const nobody = (await admin('usage', 'never-seen-claim')).json as { result: { tierSource: string } };
    expect(nobody.result.tierSource).toBe('default');
    client.close();
  });

  it('set-tier moves the user to another tier for the next message', async () => {
    const { userId, token } = await newUser('tier');
    expect((await admin('set-tier', userId, '--tier', 'pro')).code).toBe(0);
    const client = await TestClient.connect(stack.wsUrl, token);
    const status = await client.request({ action: 'status' }, 'status');
    expect(status.tier).toBe('pro');
    expect(
      (status.limits as { name: string; limit: number }[]).find((l) => l.name === 'messageRate')?.limit,
    ).toBe(80);
    client.close();
  });

  it('set-override applies custom limits until cleared', async () => {
    const { userId, token } = await newUser('override');
    const set = await admin(
      'set-override',
      userId,
      '--messages-per-minute',
      '2',
      '--burst',
      '0',
      '--expires',
      '1h',
    );
    expect(set.code).toBe(0);
    const client = await TestClient.connect(stack.wsUrl, token);
    await sendBurst(client, 3);
    expect(client.ofType('message_accepted')).toHaveLength(2);
    expect((await admin('clear-override', userId)).code).toBe(0);
    const status = await client.request({ action: 'status' }, 'status');
    expect(
      (status.limits as { name: string; limit: number }[]).find((l) => l.name === 'messageRate')?.limit,
    ).toBe(25);
    client.close();
  });

  it('set-override takes every per-user limit, and reset --scope cost clears the cost spent', async () => {
    const { userId, token } = await newUser('budgets');
    const set = await admin(
      'set-override',
      userId,
      '--tokens-per-minute',
      '5000',
      '--monthly-tokens',
      '2000000',
      '--daily-cost',
      '0.5',
      '--monthly-cost',
      '5',
      '--concurrent',
      '3',
    );
    expect(set.code).toBe(0);
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request(
      { action: 'sendMessage', requestId: 'priced', message: 'hello' },
      'message_complete',
    );
    const limits = async () =>
      (await client.request({ action: 'status' }, 'status')).limits as {
        name: string;
        limit: number;
        used: number;
      }[];
    const before = await limits();
    expect(before.map((l) => [l.name, l.limit])).toEqual(
      expect.arrayContaining([
        ['tokensPerMinute', 5000],
        ['monthlyTokens', 2_000_000],
        ['dailyCostUsd', 0.5],
        ['monthlyCostUsd', 5],
        ['requestsInFlight', 3],
      ]),
    );
    expect(before.find((l) => l.name === 'dailyCostUsd')?.used).toBeGreaterThan(0);
    expect((await admin('reset', userId, '--scope', 'cost')).code).toBe(0);
    const after = await limits();
    expect(after.find((l) => l.name === 'dailyCostUsd')?.used).toBe(0);
    expect(after.find((l) => l.name === 'monthlyCostUsd')?.used).toBe(0);
    // Tokens were not the scope: still counted.
    expect(after.find((l) => l.name === 'monthlyTokens')?.used).toBeGreaterThan(0);
    // A shadow limit (set-override replaces the override): reported in status, never enforced.
    expect((await admin('set-override', userId, '--shadow', 'messageRate,dailyTokens')).code).toBe(0);
    const shadowed = (
      (await client.request({ action: 'status' }, 'status')).limits as { name: string; shadow: boolean }[]
    )
      .filter((l) => l.shadow)
      .map((l) => l.name);
    expect(shadowed).toEqual(['messageRate', 'dailyTokens']);
    client.close();
  });

  it("top lists today's heaviest users by tokens, cost or messages from the usage index, and prints a table", async () => {
    // Three users: 1, 3 and 2 messages of growing length; every reply settles before the query.
    const plan = [
      ['light', 1, 'hi'],
      ['heavy', 3, 'a much longer question with many more words in it than the others have'],
      ['middle', 2, 'a question of middling length'],
    ] as const;
    const ids: Record<string, string> = {};
    for (const [label, count, text] of plan) {
      const { userId, token } = await newUser(`top-${label}`);
      ids[label] = userId;
      const client = await TestClient.connect(stack.wsUrl, token);
      for (let i = 0; i < count; i++) {
        await client.request(
          { action: 'sendMessage', requestId: `t${i}`, message: text },
          'message_complete',
        );
      }
      client.close();
    }
    const byTokens = await admin('top', '--limit', '50');
    expect(byTokens.code).toBe(0);
    const users = (
      byTokens.json as {
        result: {
          by: string;
          users: { userId: string; tokens: number; messages: number; costUsd: number }[];
        };
      }
    ).result;
    expect(users.by).toBe('tokens');
    const mine = users.users.filter((u) => Object.values(ids).includes(u.userId));
    expect(mine.map((u) => u.userId)).toEqual([ids.heavy, ids.middle, ids.light]);
    expect(mine.map((u) => u.messages)).toEqual([3, 2, 1]);
    expect(mine.every((u) => u.costUsd > 0)).toBe(true);
    // Sorted by the index: descending tokens across every user of the day.
    const tokens = users.users.map((u) => u.tokens);
    expect(tokens).toEqual([...tokens].sort((a, b) => b - a));
    const byMessages = await admin('top', '--by', 'messages', '--limit', '1');
    const first = (byMessages.json as { result: { users: { messages: number }[] } }).result.users;
    expect(first).toHaveLength(1);
    expect(first[0]!.messages).toBeGreaterThanOrEqual(3);
    // Human output: a table, and the global limits (none in this stack).
    let out = '';
    expect(
      await runAdminCli(['top', '--endpoint', endpoint], { out: (t) => (out += t), err: () => undefined }),
    ).toBe(0);
    expect(out).toMatch(/top users by tokens, \d{4}-\d\d-\d\d \(UTC\)/);
    expect(out).toContain(ids.heavy!);
    expect(out).toContain('global limits: none configured');
    // Bad arguments say what is wrong.
    expect((await admin('top', '--by', 'vibes')).code).toBe(2);
    expect((await admin('top', 'alice')).code).toBe(2);
  });

  it('usage --history gives the last N UTC days, today last, and draws them as bars', async () => {
    const { userId, token } = await newUser('history');
    const client = await TestClient.connect(stack.wsUrl, token);
    for (const i of [1, 2]) {
      await client.request(
        { action: 'sendMessage', requestId: `h${i}`, message: 'one two three' },
        'message_complete',
      );
    }
    client.close();
    const result = await admin('usage', userId, '--history', '--days', '7');
    expect(result.code).toBe(0);
    const days = (
      result.json as { result: { history: { date: string; messages: number; tokens: number }[] } }
    ).result.history;
    expect(days).toHaveLength(7);
    expect(days.at(-1)).toMatchObject({ date: new Date().toISOString().slice(0, 10), messages: 2 });
    expect(days.at(-1)!.tokens).toBeGreaterThan(0);
    let out = '';
    expect(
      await runAdminCli(['usage', userId, '--history', '--days', '3', '--endpoint', endpoint], {
        out: (t) => (out += t),
        err: () => undefined,
      }),
    ).toBe(0);
    expect(out).toMatch(/usage per UTC day/);
    expect(out).toMatch(/█+ +\d+ tok +2 msg/);
    expect((await admin('usage', userId, '--days', '3')).code).toBe(2);
  });

  it('purge-queue cancels every queued request and tells the waiting client', async () => {
    const { userId, token } = await newUser('purge');
    const client = await TestClient.connect(stack.wsUrl, token);
    await sendBurst(client, 28);
    const queued = client.ofType('request_queued').map((f) => f.requestId);
    expect(queued.length).toBe(3);
    const result = await admin('purge-queue', userId);
    expect(result.code).toBe(0);
    const purged = (result.json as { result: { purged: string[] } }).result.purged;
    expect(purged.length).toBeGreaterThanOrEqual(2); // the head may have started meanwhile
    await client.until(
      () => purged.every((id) => client.ofType('request_cancelled', id).length === 1),
      5_000,
    );
    client.close();
  });

  it.each([
    [['set-tier', 'u1', '--tier', 'platinum'], /tier/],
    [['set-override', 'u1', '--messages-per-minute=-3'], /messagesPerMinute/],
    [['set-override', 'u1', '--daily-tokens', 'lots'], /dailyTokens/],
    [['set-override', 'u1'], /at least one limit/],
    [['reset', 'u1', '--scope', 'everything'], /scope/],
  ])('refuses bad input %j with a clear error and changes nothing', async (args, message) => {
    const result = await admin(...(args as string[]));
    expect(result.code).toBe(2);
    expect(result.out + result.err).toMatch(message);
  });

  it('refuses an unknown operation before invoking anything', async () => {
    const result = await admin('delete-everyone', 'u1');
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/unknown operation/);
  });
});
