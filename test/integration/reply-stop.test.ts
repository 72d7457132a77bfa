import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel, RetryableModelError } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import type { ReplyJob } from '../../lambda/core/reply-job';
import { estimateTokens } from '../../lambda/core/tokens';
import type { ModelInput, ModelPort, OutgoingMessage } from '../../lambda/services/ports';
import {
  DEFAULT_RUNNER_SETTINGS,
  ReplyRunner,
  type ReplyRunnerDeps,
} from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

/**
 * The reply runner's side of a stop (SPEC §9.3), on the emulators, through timelines a stop can
 * take: the mark left while the model streams, while it is silent and ignores its signal, during
 * a retry's backoff, after the reply ended, twice, and while reading the mark fails. The runner
 * looks for the mark every 10 ms here (500 ms in the stack).
 */
describe('ReplyRunner: a stop while the reply is answered', () => {
  let res: TestResources;
  let limiter: DynamoLimiter;
  let store: ReplyStore;
  let sent: OutgoingMessage[];

  beforeEach(async () => {
    res = await createTestResources('stop');
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
    });
    store = new ReplyStore(res.dynamo, res.tables.requests);
    sent = [];
  });

  const deps = (model: ModelPort, stores: ReplyStore = store): ReplyRunnerDeps => ({
    limiter,
    store: stores,
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
    settings: { ...DEFAULT_RUNNER_SETTINGS, stopPollMs: 10 },
    now: () => T0,
    sleep: async () => undefined,
  });
  const runner = (model: ModelPort, stores?: ReplyStore) => new ReplyRunner(deps(model, stores));

  async function admitted(prompt: string): Promise<ReplyJob> {
    const userId = `u-${randomUUID().slice(0, 8)}`;
    const requestId = `r-${randomUUID().slice(0, 8)}`;
    const decision = (await limiter.decide(
      { userId, requestId, estimatedInputTokens: estimateTokens(prompt), maxTokens: 200 },
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

  /** Yields its pieces, leaves the stop mark after `stopAfter` of them, then waits for its signal. */
  function stoppedAfter(job: ReplyJob, pieces: string[], stopAfter: number, honoursSignal = true): ModelPort {
    return {
      async *stream(input: ModelInput) {
        for (const [i, text] of pieces.entries()) {
          if (i === stopAfter) {
            await store.requestStop(job.userId, job.requestId, T0);
            await new Promise<void>((resolve) => {
              if (honoursSignal) input.signal?.addEventListener('abort', () => resolve(), { once: true });
            });
            input.signal?.throwIfAborted();
          }
          yield { type: 'chunk' as const, text };
        }
        yield { type: 'done' as const, usage: { inputTokens: 1, outputTokens: 99 } };
      },
    };
  }

  const completes = () => sent.filter((m) => m.type === 'message_complete');
  const charged = async (job: ReplyJob) =>
    (await limiter.status(job.userId, undefined, T0)).limits.find((l) => l.name === 'dailyTokens')?.used;

  it('ends the reply stopped with what was produced, charged for it, the slot given back', async () => {
    const job = await admitted('tell me a long story');
    await runner(stoppedAfter(job, ['Once ', 'upon ', 'a ', 'time'], 3)).run(job, () => 600_000);
    const output = estimateTokens('Once upon a ');
    expect(completes()).toEqual([
      expect.objectContaining({
        requestId: job.requestId,
        stopped: true,
        text: 'Once upon a ',
        usage: expect.objectContaining({
          inputTokens: job.reservation.inputTokens,
          outputTokens: output,
          totalTokens: job.reservation.inputTokens + output,
        }),
      }),
    ]);
    expect(
      sent
        .filter((m) => m.type === 'chunk')
        .map((m) => (m as { text: string }).text)
        .join(''),
    ).toBe('Once upon a ');
    expect(await charged(job)).toBe(job.reservation.inputTokens + output);
    const snap = (await limiter.view(job.userId, undefined, T0)).snap;
    expect(snap.inFlight).toEqual({});
    expect(snap.reservations[job.requestId]).toBeUndefined();
  });

  it('leaves a model that ignores its signal behind: nothing it yields later is streamed', async () => {
    const job = await admitted('go on');
    await runner(stoppedAfter(job, ['one ', 'two ', 'three'], 2, false)).run(job, () => 600_000);
    expect(completes()).toEqual([expect.objectContaining({ stopped: true, text: 'one two ' })]);
    expect(sent.at(-1)?.type).toBe('message_complete');
  });

  it('stops during a retry: no second attempt, nothing produced, nothing charged', async () => {
    const job = await admitted('hello');
    let calls = 0;
    const throttled: ModelPort = {
      stream() {
        calls++;
        throw new RetryableModelError('ThrottlingException: slow down');
      },
    };
    const stopsInBackoff = new ReplyRunner({
      ...deps(throttled),
      // The backoff is long; the stop, left in it, ends it early.
      sleep: async () => {
        await store.requestStop(job.userId, job.requestId, T0);
        await new Promise<void>((resolve) => setTimeout(resolve, 60_000).unref());
      },
    });
    await stopsInBackoff.run(job, () => 600_000);
    expect(calls).toBe(1);
    expect(completes()).toEqual([
      expect.objectContaining({
        stopped: true,
        text: '',
        usage: expect.objectContaining({ inputTokens: 0, outputTokens: 0, totalTokens: 0 }),
      }),
    ]);
    expect(await charged(job)).toBe(0);
  });

  it('a stop that comes after the reply ended changes nothing: one message_complete, not stopped', async () => {
    const job = await admitted('short');
    await runner(new EchoModel({ delayMs: 0 })).run(job, () => 600_000);
    await store.requestStop(job.userId, job.requestId, T0);
    await store.requestStop(job.userId, job.requestId, T0); // a duplicate cancel writes the same mark
    expect(completes()).toEqual([expect.objectContaining({ text: 'Echo: short' })]);
    expect(completes()[0]).not.toHaveProperty('stopped');
    expect(await store.isStopRequested(job.userId, job.requestId)).toBe(true);
    expect(await store.isStopRequested(job.userId, 'another')).toBe(false);
  });

  it('keeps streaming when reading the mark fails, and stops once it reads it', async () => {
    const job = await admitted('flaky store');
    let failures = 3;
    const flaky = Object.assign(Object.create(store) as ReplyStore, {
      isStopRequested: async (userId: string, requestId: string) => {
        if (failures-- > 0) throw new Error('ProvisionedThroughputExceededException');
        return store.isStopRequested(userId, requestId);
      },
    });
    await runner(stoppedAfter(job, ['a ', 'b ', 'c'], 2), flaky).run(job, () => 600_000);
    expect(failures).toBeLessThan(0);
    expect(completes()).toEqual([expect.objectContaining({ stopped: true, text: 'a b ' })]);
  });
});
