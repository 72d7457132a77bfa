import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TTL_ATTRIBUTE } from '../../lambda/core/resources';
import { runAdminCli } from '../../local/admin/admin-cli';
import { localDynamoClient } from '../../local/aws-clients';
import type { ClockAnswer } from '../../local/clock';
import type { LocalStack } from '../../local/stack';
import { ROOT, runCommand } from '../support/commands';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** Ten seconds before a new UTC day (and a new month). */
const START = '2026-01-31T23:59:50Z';
const START_MS = Date.parse(START);
const DAY_MS = 86_400_000;

async function admin(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAdminCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

type StatusLimit = { name: string; used: number; resetAt: number };
const limitOf = (status: Record<string, unknown>, name: string) =>
  (status.limits as StatusLimit[]).find((l) => l.name === name)!;

/** SPEC §9.1 "Local clock": the stack's clock starts at LOCAL_CLOCK and `admin clock` reads and moves it. */
describe('the local stack’s clock', () => {
  let stack: LocalStack;
  let testStartedMs: number;
  beforeAll(async () => {
    testStartedMs = Date.now();
    stack = await startTestStack({}, { clockStartMs: START_MS });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const clock = async (...args: string[]) => {
    const result = await admin('clock', ...args, '--endpoint', stack.httpUrl, '--json');
    expect(result).toMatchObject({ code: 0, err: '' });
    return JSON.parse(result.out) as ClockAnswer;
  };

  it('starts at LOCAL_CLOCK and runs at real speed; a daily window resets after clock --advance 1d', async () => {
    const before = await clock();
    const elapsedMs = Date.now() - testStartedMs;
    expect(before.nowMs).toBeGreaterThanOrEqual(START_MS);
    expect(before.nowMs).toBeLessThanOrEqual(START_MS + elapsedMs + 1000);
    expect(before.now.startsWith('2026-01-31T23:5')).toBe(true);

    const { token } = await newUser('clock');
    const client = await TestClient.connect(stack.wsUrl, token);
    client.send({ action: 'sendMessage', requestId: 'jan-31', message: 'the last words of January' });
    await client.next((f) => f.type === 'message_complete' && f.requestId === 'jan-31');
    const jan31 = await client.request({ action: 'status' }, 'status');
    const tokensJan31 = limitOf(jan31, 'dailyTokens');
    expect(tokensJan31.used).toBeGreaterThan(0);
    // The window the handlers chose is the stack's day, not the machine's.
    expect(tokensJan31.resetAt).toBe(START_MS + 10_000);

    const advanced = await clock('--advance', '1d');
    expect(advanced.nowMs - before.nowMs).toBeGreaterThanOrEqual(DAY_MS);
    expect(advanced.offsetMs - before.offsetMs).toBe(DAY_MS);
    expect(advanced.now.startsWith('2026-02-01T23:5')).toBe(true);

    const feb1 = await client.request({ action: 'status' }, 'status');
    const tokensFeb1 = limitOf(feb1, 'dailyTokens');
    expect(tokensFeb1.used).toBe(0);
    expect(tokensFeb1.resetAt).toBe(START_MS + 10_000 + DAY_MS);
    client.close();
  });

  it('expires items on the stack’s clock: an item with a 2-day TTL is gone after clock --advance 3d', async () => {
    const dynamo = localDynamoClient(stack.emulators.dynamodbEndpoint);
    const table = stack.resources.tables.requests;
    const key = { pk: { S: 'ttl-probe' }, sk: { S: 'x' } };
    const { nowMs } = await clock();
    const ttl = Math.floor(nowMs / 1000) + 2 * 86_400;
    await dynamo.send(
      new PutItemCommand({ TableName: table, Item: { ...key, [TTL_ATTRIBUTE]: { N: String(ttl) } } }),
    );
    const read = async () =>
      (await dynamo.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
    await stack.ttlReaper.sweep();
    expect(await read()).toBeDefined();
    await clock('--advance', '3d');
    await stack.ttlReaper.sweep();
    expect(await read()).toBeUndefined();
  });

  it('prints the clock for a person: ISO and the offset from the machine’s clock', async () => {
    const result = await admin('clock', '--endpoint', stack.httpUrl);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(
      /^2026-02-0\dT\d\d:\d\d:\d\d\.\d{3}Z \(stack clock; offset -?\d+ ms: .* this machine’s clock\)$/,
    );
  });

  it.each([
    [['--advance', '-3d'], /the clock only moves forward/],
    [['--advance', 'soon'], /a duration such as 90s, 15m, 2h or 3d/],
    [['--stack', 'prod'], /clock is local only/],
    [['--function', 'arn:aws:lambda:us-east-1:1:function:admin'], /clock is local only/],
    [['alice'], /clock takes no userId/],
  ])('refuses clock %j with exit 2, the clock unmoved', async (args, message) => {
    const before = await clock();
    const result = await admin('clock', ...args, '--endpoint', stack.httpUrl);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
    const after = await clock();
    expect(after.offsetMs).toBe(before.offsetMs);
  });
});

describe('npm start with a bad LOCAL_CLOCK', () => {
  it.concurrent.each(['yesterday', '2026-02-30T00:00:00Z', '2026-01-31', '2026-01-31T10:00:00'])(
    'stops with exit 2 naming the variable, before anything starts: %s',
    async (value) => {
      const env = {
        ...process.env,
        LOCAL_CLOCK: value,
        PORT: '0',
        CHAT_LIMITER_STATE_DIR: `${ROOT}/.no-state`,
      };
      const result = await runCommand('bin/local.ts', [], { env, timeoutMs: 25_000 });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`LOCAL_CLOCK must be an ISO-8601 instant with its zone`);
      expect(result.stderr).toContain(value);
      expect(result.stdout).not.toContain('ready:');
    },
  );
});
