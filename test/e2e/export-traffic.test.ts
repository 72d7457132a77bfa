import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/core/resources';
import { runAdminCli } from '../../local/admin/admin-cli';
import { signDevToken } from '../../local/dev-tokens';
import { REQUESTS_PATH } from '../../local/request-log';
import { runSimulateCli } from '../../local/simulate/cli';
import { parseTraffic } from '../../local/simulate/traffic';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** Words no log line may hold: the messages' contents. */
const SECRET = 'zebra-quartz-secret';

async function admin(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  let err = '';
  const code = await runAdminCli(args, {
    out: (s) => {
      out.push(s);
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out: out.join('\n'), err };
}

/** SPEC §9.4 "What if": `admin export-traffic` writes the traffic of the stack's own log. */
describe('export-traffic from the local stack', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({
      // The request lines are INFO: the stack must print them to have them in its log.
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // One message a minute for free users and no queue: a second one at once is refused.
      LIMITS_CONFIG: JSON.stringify({ tiers: { free: { messagesPerMinute: 1, burst: 0 } } }),
      [ENV.maxQueuedPerUser]: '0',
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('exports each settled request with its tier, team and tokens, no contents, and the simulator reads it', async () => {
    const alice = await newUser('alice');
    // Bob's token claims a team: his lines carry it.
    const bobId = (await newUser('bob')).userId;
    const bob = {
      userId: bobId,
      token: await signDevToken({ userId: bobId, tier: 'pro', team: 'research' }),
    };
    const a = await TestClient.connect(stack.wsUrl, alice.token);
    const b = await TestClient.connect(stack.wsUrl, bob.token);
    const complete = async (client: TestClient, requestId: string, maxTokens: number) => {
      const frame = (await client.request(
        { action: 'sendMessage', requestId, message: `${SECRET} ${requestId} one two three`, maxTokens },
        'message_complete',
      )) as unknown as { usage: { inputTokens: number; outputTokens: number } };
      return { inputTokens: frame.usage.inputTokens, outputTokens: frame.usage.outputTokens };
    };
    const a1 = await complete(a, 'a1', 40);
    // Refused (1 a minute, no queue): received, never settled.
    await a.request({ action: 'sendMessage', requestId: 'a2', message: `${SECRET} again` }, 'error');
    const b1 = await complete(b, 'b1', 30);
    const b2 = await complete(b, 'b2', 50);
    a.close();
    b.close();

    const raw = await (await fetch(`${stack.httpUrl}${REQUESTS_PATH}`)).text();
    expect(raw).not.toContain(SECRET);

    const exported = await admin('export-traffic', '--since', '1h', '--endpoint', stack.httpUrl);
    expect(exported.code).toBe(0);
    expect(exported.out).not.toContain(SECRET);
    expect(exported.err).toBe(
      'export-traffic: 3 settled requests; 1 received but never settled (refused, expired or running) are not in it',
    );
    const traffic = parseTraffic(exported.out);
    expect(
      traffic.map(({ userId, tier, team, inputTokens, outputTokens }) => ({
        userId,
        tier,
        team,
        inputTokens,
        outputTokens,
      })),
    ).toEqual([
      { userId: alice.userId, tier: 'free', team: undefined, ...a1 },
      { userId: bob.userId, tier: 'pro', team: 'research', ...b1 },
      { userId: bob.userId, tier: 'pro', team: 'research', ...b2 },
    ]);
    expect(traffic.every((r) => Math.abs(r.atMs - Date.now()) < 60_000)).toBe(true);

    // The file is the simulator's input as it stands.
    let out = '';
    const code = await runSimulateCli(['--traffic', 't.jsonl', '--limits', 'l.json', '--json'], {
      out: (t) => {
        out += t;
      },
      err: () => undefined,
      readFile: (path) => (path === 't.jsonl' ? exported.out : '{"tiers":{}}'),
    });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ requests: 3, admitted: { total: 3 } });
  });

  it('--stack (Logs Insights: test/unit/export-traffic-stack.test.ts) and --endpoint together, or a bad --since, is exit 2', async () => {
    const both = await admin('export-traffic', '--stack', 'ChatLimiter', '--endpoint', stack.httpUrl);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--stack \(a deployed stack\) and --endpoint \(a local one\): choose one/);
    const bad = await admin('export-traffic', '--since', 'yesterday', '--endpoint', stack.httpUrl);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--since: a duration like 30m, 12h or 1d, got "yesterday"/);
  });
});
