import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel, RetryableModelError } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import type { ReplyJob } from '../../lambda/core/reply-job';
import type { ModelPort, OutgoingMessage } from '../../lambda/services/ports';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

/** The reply runner on a direct request, on the emulators; the sent frames are recorded. */
describe('ReplyRunner (direct requests)', () => {
  let res: TestResources;
  let limiter: DynamoLimiter;
  let sent: OutgoingMessage[];
  let slept: number[];

  beforeEach(async () => {
    res = await createTestResources('runner');
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
    });
    sent = [];
    slept = [];
  });

  const runner = (model: ModelPort) =>
    new ReplyRunner({
      limiter,
      store: new ReplyStore(res.dynamo, res.tables.requests),
      queue: { defer: async () => undefined, moveToDeadLetterQueue: async () => undefined },
      sender: {
        send: async (_id, message) => {
          sent.push(message);
          return 'sent';
        },
      },
      directory: { listByUser: async () => [] },
      model,
      metrics: { count: () => undefined, milliseconds: () => undefined },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      settings: DEFAULT_RUNNER_SETTINGS,
      now: () => T0,
      sleep: async (ms) => {
        slept.push(ms);
      },
    });

  /** A request admitted as the Message function admits it; `leaseMs`: its in-flight lease. */
  async function admitted(userId: string, prompt: string, leaseMs?: number): Promise<ReplyJob> {
    const requestId = `r-${randomUUID().slice(0, 8)}`;
    const admitting =
      leaseMs === undefined
        ? limiter
        : new DynamoLimiter({
            client: res.dynamo,
            tableName: res.tables.limits,
            tiers: parseTierLimits(''),
            inFlightLeaseMs: leaseMs,
          });
    const decision = (await admitting.decide(
      { userId, requestId, estimatedInputTokens: 3, maxTokens: 200 },
      T0,
    )) as AllowedDecision;
    return {
      v: 1,
      userId,
      requestId,
      connectionId: 'c1',
      prompt,
      reservation: decision.reservation,
      source: 'direct',
      inFlightUntilEpochMs: decision.inFlightUntilEpochMs,
    };
  }

  const used = async (userId: string) =>
    (await limiter.status(userId, undefined, T0)).limits.find((l) => l.name === 'dailyTokens')?.used;

  it('retries a throttled model with a backoff on the same reservation, and settles once', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admitted(user, 'hello there');
    let calls = 0;
    const flaky: ModelPort = {
      stream(input) {
        calls++;
        if (calls <= 2) throw new RetryableModelError('ThrottlingException: slow down');
        return new EchoModel({ delayMs: 0 }).stream(input);
      },
    };
    await runner(flaky).run(job, () => 600_000);
    expect(calls).toBe(3);
    expect(slept).toEqual([1000, 2000]);
    const complete = sent.find((m) => m.type === 'message_complete');
    expect(complete).toMatchObject({ requestId: job.requestId, text: 'Echo: hello there' });
    expect(await used(user)).toBe((complete!.usage as { totalTokens: number }).totalTokens);
  });

  it('charges what the model produced when it stops mid-reply, and says so', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admitted(user, 'ignored');
    const breaking: ModelPort = {
      async *stream() {
        yield { type: 'chunk', text: 'twelve chars' };
        throw new Error('stream broke');
      },
    };
    await runner(breaking).run(job, () => 600_000);
    const error = sent.find((m) => m.type === 'error');
    expect(error).toMatchObject({ code: 'INTERNAL_ERROR', requestId: job.requestId });
    // 12 characters: 3 output tokens, plus the input the model read.
    expect(await used(user)).toBe(job.reservation.inputTokens + 3);
  });

  it('stops the model before the function times out, and still settles what was produced', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admitted(user, 'one two three four five six');
    const slow = new EchoModel({ delayMs: 30 });
    // 40 ms left before the stop margin: a few words get out, then the model is stopped.
    await runner(slow).run(job, () => DEFAULT_RUNNER_SETTINGS.stopBeforeTimeoutMs + 40);
    expect(sent.filter((m) => m.type === 'chunk').length).toBeGreaterThan(0);
    expect(sent.find((m) => m.type === 'message_complete')).toBeUndefined();
    expect(sent.find((m) => m.type === 'error')).toMatchObject({ requestId: job.requestId });
    const charged = await used(user);
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThan(job.reservation.reservedTokens);
  });

  it('stops the model before its in-flight lease lapses, and does not start one that lapsed', async () => {
    const user = `u-${randomUUID()}`;
    // Plenty of function time, but the slot is only surely its own for 40 ms past the margin.
    const job = await admitted(
      user,
      'one two three four five six',
      DEFAULT_RUNNER_SETTINGS.stopBeforeTimeoutMs + 40,
    );
    const slow = new EchoModel({ delayMs: 30 });
    await runner(slow).run(job, () => 600_000);
    expect(sent.filter((m) => m.type === 'chunk').length).toBeGreaterThan(0);
    expect(sent.find((m) => m.type === 'message_complete')).toBeUndefined();
    const slot = async () =>
      (await limiter.status(user, undefined, T0)).limits.find((l) => l.name === 'requestsInFlight');
    // Settled: charged what was produced, and its slot given back.
    expect(await used(user)).toBeLessThan(job.reservation.reservedTokens);
    expect((await limiter.view(user, undefined, T0)).snap.inFlight).toEqual({});
    expect(await slot()).toBeUndefined(); // no limit configured: counted, not reported

    sent = [];
    const late = await admitted(user, 'too late', 1000);
    await runner(slow).run(late, () => 600_000);
    expect(sent.some((m) => m.type === 'chunk')).toBe(false);
    expect(sent.find((m) => m.type === 'error')).toMatchObject({
      requestId: late.requestId,
      code: 'INTERNAL_ERROR',
    });
    expect((await limiter.view(user, undefined, T0)).snap.reservations[late.requestId]).toBeUndefined();
  });
});
