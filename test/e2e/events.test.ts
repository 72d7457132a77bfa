import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EventBridgeEvents } from '../../lambda/adapters/events';
import { advanceStackClock } from '../../lambda/core/clock';
import { EVENT_SOURCE, EVENT_TYPES } from '../../lambda/core/events';
import { FUNCTIONS } from '../../lambda/core/resources';
import { runAdminCli } from '../../local/admin/admin-cli';
import { runEventsCommand } from '../../local/admin/events-command';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws-clients';
import type { LocalEvent } from '../../local/events';
import { EVENTS_PATH } from '../../local/events';
import type { LocalStack } from '../../local/stack';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient, waitUntilStatusAnswers } from '../support/ws-client';

/** Midday on the stack's clock: a test's few seconds never cross a day by themselves. */
const START_MS = Date.parse('2026-03-10T12:00:00Z');
const DAY_MS = 86_400_000;
const DAY = Math.floor(START_MS / DAY_MS);

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

/** SPEC §9.5 "Events": the default bus, emulated by the local stack, and `admin events`. */
describe('operational events', () => {
  let stack: LocalStack;
  let dynamo: FaultProxy;
  const printed: string[] = [];
  beforeAll(async () => {
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack(
      {
        // A free user's day holds 100 tokens; the breaker opens after 1 s without an answer.
        LIMITS_CONFIG: JSON.stringify({ tiers: { free: { dailyTokens: 100 } } }),
        LIMITER_BREAKER_SILENCE_MS: '1000',
      },
      { dynamodbEndpoint: dynamo.endpoint, clockStartMs: START_MS, printEvent: (line) => printed.push(line) },
    );
  });
  afterAll(async () => {
    dynamo?.restore();
    await stack?.stop();
    await dynamo?.stop();
  });

  const events = async (): Promise<LocalEvent[]> => {
    const result = await admin('events', '--json', '--endpoint', stack.httpUrl);
    expect(result).toMatchObject({ code: 0, err: '' });
    return JSON.parse(result.out) as LocalEvent[];
  };
  const crossingsOf = async (userId: string) =>
    (await events())
      .filter((e) => e['detail-type'] === EVENT_TYPES.budgetThresholdCrossed)
      .map((e) => e.detail as Record<string, unknown>)
      .filter((d) => d.userId === userId)
      .map((d) => [d.limit, d.thresholdPercent, d.window]);

  it('publishes Budget Threshold Crossed at 80 % and at 100 % of the daily tokens, once per window', async () => {
    const { userId, token } = await newUser('budget');
    const client = await TestClient.connect(stack.wsUrl, token);
    const send = (requestId: string, maxTokens: number) =>
      client.request(
        { action: 'sendMessage', requestId, message: 'one two three four', maxTokens },
        'message_complete',
      );

    // 5 tokens in + 80 allowed out: 85 of 100 reserved, past 80 % (settled at what it used, 11).
    await send('a', 80);
    expect(await crossingsOf(userId)).toEqual([['dailyTokens', 80, DAY]]);
    // The rest of the day: the allowance is cut to what is left (84), which leaves nothing: 100 %.
    await send('b', 1000);
    expect(await crossingsOf(userId)).toEqual([
      ['dailyTokens', 80, DAY],
      ['dailyTokens', 100, DAY],
    ]);
    // Used up again in the same window: no event repeats.
    await send('c', 1000);
    expect(await crossingsOf(userId)).toHaveLength(2);
    expect(client.ofType('limit_warning')).toHaveLength(1);

    // The next day: one admission takes the whole new window, past both thresholds again.
    advanceStackClock(DAY_MS);
    await send('d', 1000);
    expect(await crossingsOf(userId)).toEqual([
      ['dailyTokens', 80, DAY],
      ['dailyTokens', 100, DAY],
      ['dailyTokens', 80, DAY + 1],
      ['dailyTokens', 100, DAY + 1],
    ]);
    const last = (await events()).at(-1)!;
    expect(last).toMatchObject({ source: EVENT_SOURCE, 'detail-type': 'Budget Threshold Crossed' });
    expect(last.detail).toMatchObject({
      scope: 'user',
      userId,
      requestId: 'd',
      limit: 'dailyTokens',
      thresholdPercent: 100,
      used: 100,
      remaining: 0,
      limitValue: 100,
      unit: 'tokens',
    });
    // Ids and numbers only: nothing the user wrote.
    expect(JSON.stringify(await events())).not.toContain('one two three four');
    // One line each in the stack's log (npm start prints them).
    expect(printed.filter((l) => l.includes('Budget Threshold Crossed') && l.includes(userId))).toHaveLength(
      4,
    );
    client.close();
  }, 60_000);

  it('publishes Limiter Breaker Opened when the store stops answering, and Closed when it answers again', async () => {
    const { token } = await newUser('breaker', 'pro');
    const client = await TestClient.connect(stack.wsUrl, token);
    const breakerEvents = async () =>
      (await events()).filter((e) => e['detail-type'].startsWith('Limiter Breaker'));
    expect(await breakerEvents()).toEqual([]);
    await client.request({ action: 'status' }, 'status');
    dynamo.cut();
    try {
      // Refused busy until the store has been silent for 1 s; then the breaker opens (fail open).
      for (let sent = 0; sent < 20 && client.ofType('message_complete').length === 0; sent++) {
        const id = `down${sent}`;
        client.send({ action: 'sendMessage', requestId: id, message: 'still there?' });
        const first = await client.next(
          (f) => f.requestId === id && ['error', 'message_accepted'].includes(f.type),
          { timeoutMs: 15_000 },
        );
        if (first.type === 'error') {
          const { retryAfter } = first.details as { retryAfter: number };
          await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
        } else await client.until(() => client.ofType('message_complete', id).length === 1, 5_000);
      }
      expect(client.ofType('message_complete')).toHaveLength(1);
    } finally {
      dynamo.restore();
    }
    await waitUntilStatusAnswers(client);
    const seen = await breakerEvents();
    expect(seen.map((e) => [e['detail-type'], (e.detail as { function: string }).function])).toEqual([
      ['Limiter Breaker Opened', FUNCTIONS.message.id],
      ['Limiter Breaker Closed', FUNCTIONS.message.id],
    ]);
    expect(seen[0]!.detail).toMatchObject({ state: 'open' });
    expect(seen[1]!.detail).toMatchObject({ state: 'closed' });
    expect(printed.filter((l) => l.includes('Limiter Breaker'))).toHaveLength(2);
    client.close();
  }, 60_000);

  it('admin events prints one line per event, and is refused against a deployed stack', async () => {
    const all = await events();
    const text = await admin('events', '--endpoint', stack.httpUrl);
    expect(text.code).toBe(0);
    expect(text.out.split('\n')).toHaveLength(all.length);
    expect(await admin('events', '--stack', 'Prod')).toMatchObject({ code: 2 });
  });

  it('admin events --follow prints each event put after it started, as it comes', async () => {
    const before = (await events()).length;
    // What the functions run in AWS, pointed at the local bus.
    const bus = new EventBridgeEvents(
      new EventBridgeClient({
        endpoint: `${stack.httpUrl}${EVENTS_PATH}`,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      }),
    );
    const lines: string[] = [];
    const stop = new AbortController();
    let polls = 0;
    const sleep = async () => {
      polls++;
      if (polls === 1)
        await bus.publish(EVENT_TYPES.stateRepaired, { kind: 'lost-wake-up', userId: 'follow-1' });
      if (polls === 2) stop.abort();
    };
    const code = await runEventsCommand(
      ['events', '--follow', '--json', '--endpoint', stack.httpUrl],
      { out: (s) => lines.push(s), err: (s) => lines.push(`ERR ${s}`) },
      { signal: stop.signal, sleep },
    );
    expect(code).toBe(0);
    expect(polls).toBe(2);
    expect(lines).toHaveLength(before + 1);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({
      id: before + 1,
      source: 'chat-limiter',
      'detail-type': 'State Repaired',
      detail: { kind: 'lost-wake-up', userId: 'follow-1' },
    });
  });
});
