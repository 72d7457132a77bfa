import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { onEveryEmulator } from '../support/dynamodb-local';
import {
  Advance,
  type HarnessStep,
  Process,
  RunEvent,
  Send,
  SendPair,
  SendWhileProcessing,
} from './harness/commands';
import { type HarnessEnv, runScenario } from './harness/property';

/**
 * The harness's shrunk counterexamples, written out as fixed command sequences: each one replays a
 * finding of issue 20 through the real services on dynalite (and on DynamoDB Local where java is on PATH) and checks the same invariants as the
 * randomized runs. Each is named with its finding; it failed before that finding's fix (issue 20) and
 * must pass now.
 */
const MONTH_END = Date.UTC(2026, 1, 1); // 00:00 UTC, 1 February 2026
const QUIET = Date.UTC(2026, 2, 10, 9, 20);
const HOUR_END = Date.UTC(2026, 2, 15, 11);

async function holds(
  env: HarnessEnv,
  setup: { startMs: number; global?: boolean },
  steps: readonly HarnessStep[],
): Promise<void> {
  const { violations, log } = await runScenario(env, setup, steps);
  if (process.env.HARNESS_TRACE) console.info(log.join('\n'));
  if (violations.length) console.info(`${violations.join('\n')}\n${log.slice(-25).join('\n')}`);
  expect(violations).toEqual([]);
}

onEveryEmulator((backend, endpoint) =>
  describe(`the harness catches the findings of issue 20 (replayed counterexamples, ${backend})`, () => {
    let env: HarnessEnv;
    beforeAll(async () => {
      const dynamo = localDynamoClient(endpoint());
      const { tables } = await createLocalResources(
        dynamo,
        localSqsClient(inject('sqsEndpoint')),
        `findings-${randomUUID().slice(0, 8)}`,
      );
      env = { dynamo, tables: { limits: tables.limits, requests: tables.requests } };
    });

    it('a settle after midnight keeps the new day exact (finding 5: stale belief drops the refund)', async () => {
      // r1 streams across 00:00 UTC at a month's end; r2 is admitted and settled on the new day by the
      // same runner instance, whose belief of the item is still the old day's.
      await holds(env, { startMs: MONTH_END - 2000 }, [
        new Send(0, 0, undefined, undefined, undefined),
        new RunEvent(0, 5000, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined),
        new RunEvent(0, 5000, undefined, undefined),
      ]);
    });

    it('a queued reply that streams across 00:00 UTC settles and ends (finding 4: markers dropped at the new day)', async () => {
      await holds(env, { startMs: MONTH_END - 60_000 }, [
        new Send(0, 0, undefined, undefined, undefined), // r1 admitted
        new Send(0, 1, undefined, undefined, undefined), // r2 admitted (2 in flight)
        new Send(0, 0, undefined, undefined, undefined), // r3 queued (in-flight slots)
        new RunEvent(0, 0, undefined, undefined), // r1 ends, a slot frees
        new Process(undefined, undefined), // r3 admitted from the queue, handed to the runner
        new RunEvent(0, 0, undefined, undefined), // r2 ends
        new Advance(61_000), // 00:00 UTC passes while r3 is still to stream
        new Send(0, 1, undefined, undefined, undefined), // r4: the first admission of the new day
        new RunEvent(0, 0, undefined, undefined), // r3 streams and settles
      ]);
    });

    it('a decision whose write landed but whose answer was lost counts nothing it does not tell (finding 7)', async () => {
      // The admission lands, its answer is lost and the retries are throttled: the client is told
      // "busy" (nothing counted) while the reservation and the in-flight slot stay.
      await holds(env, { startMs: QUIET }, [
        new Send(
          0,
          0,
          undefined,
          { port: 'dynamo', nth: 0, kind: 'lost-answer-then-throttled', durationMs: 2000 },
          undefined,
        ),
      ]);
    });

    it('a store outage during a queued reply’s settle neither ends it twice nor leaves it uncharged (finding 8)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined), // r3 queued
        new RunEvent(0, 0, undefined, undefined),
        new Process(undefined, undefined), // r3 admitted from the queue
        new RunEvent(1, 0, { port: 'dynamo', nth: 0, kind: 'outage', durationMs: 6000 }, undefined), // r3's settle meets a 6 s outage
      ]);
    });

    it('a dropped asynchronous event still ends its request (finding 15: dropped direct event)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, { port: 'handoff', nth: 0, kind: 'drop' }, undefined),
      ]);
    });

    it('an asynchronous event delivered twice streams and ends once (finding 15: duplicate event)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, { port: 'handoff', nth: 0, kind: 'duplicate' }, undefined),
        new RunEvent(0, 0, undefined, undefined),
        new RunEvent(0, 0, undefined, undefined),
      ]);
    });

    it('a lost Invoke answer neither refunds a running reply nor ends it twice (finding 15: lost Invoke answer)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, { port: 'handoff', nth: 0, kind: 'lost-answer' }, undefined),
        new RunEvent(0, 0, undefined, undefined),
      ]);
    });

    it('a late attempt-1 event after a takeover neither ends the request nor refunds it (finding 15: delayed event)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined), // r3 queued
        new RunEvent(0, 0, undefined, undefined), // r1 ends
        new Process(undefined, undefined), // r3 admitted; its event waits in Lambda's queue
        new Advance(960_000),
        new Advance(5000), // the lease lapsed
        new Process(undefined, undefined), // the processor takes r3 over: attempt 2, a second event
        new RunEvent(1, 0, undefined, undefined), // attempt 1's event arrives late
        new RunEvent(1, 0, undefined, undefined), // attempt 2 streams
      ]);
    });

    it('a request id reused after its request ended is served (finding 1: FIFO deduplication)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined), // r1
        new Send(0, 0, undefined, undefined, undefined), // r2
        new Send(0, 0, undefined, undefined, undefined), // r3 queued: its wake-up dedup id is hash(user, r3)
        new RunEvent(0, 0, undefined, undefined),
        new Process(undefined, undefined), // r3 admitted
        new RunEvent(1, 0, undefined, undefined), // r3 ends
        new Process(undefined, undefined), // its wake-up finds the list empty and is deleted
        // Reuse r3 (ended) within 5 minutes, on the instance that never saw it: the message rate
        // refuses it now, so it queues at position 1, and its wake-up has r3's deduplication id.
        new Send(0, 1, 1, undefined, undefined),
      ]);
    });

    it('a request id reused after its request ended is not refused as a duplicate (unlisted finding U1: duplicate decided from a stale belief)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined), // r1 admitted by message#0
        new RunEvent(0, 0, undefined, undefined), // r1 ends (settled by the runner)
        new Send(0, 0, 0, undefined, undefined), // r1 again, on message#0, whose belief still holds r_r1
      ]);
    });

    it('positions a client shows never go up, and their versions agree (finding 13: the processor’s queue_position races request_queued)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined), // two in flight
        new Send(0, 0, undefined, undefined, undefined), // r3 queued at 1, its wake-up visible
        new RunEvent(0, 0, undefined, undefined), // r1 ends: a slot frees
        // r4 queues at 2; before its request_queued(2, v0) goes out, the processor admits r3 and
        // tells r4 queue_position(1, v1): on the wire the position goes up, the client drops the
        // older notice by its version.
        new SendWhileProcessing(0),
      ]);
    });

    it('a global admission whose shard answer was lost takes one shard, not two (finding 7: a second shard taken)', async () => {
      await holds(env, { startMs: HOUR_END - 2000, global: true }, [
        // The decision's second call (its shard write) lands and its answer is lost.
        new Send(0, 0, undefined, { port: 'dynamo', nth: 1, kind: 'lost-answer' }, undefined),
        new RunEvent(0, 0, undefined, undefined),
      ]);
    });

    it('a global release whose answer was lost is applied once (finding 7: double refund)', async () => {
      await holds(env, { startMs: HOUR_END - 2000, global: true }, [
        new Send(0, 0, undefined, undefined, undefined),
        // The runner's fourth call (the shard release) lands and its answer is lost.
        new RunEvent(0, 0, { port: 'dynamo', nth: 3, kind: 'lost-answer' }, undefined),
        new RunEvent(0, 0, undefined, undefined),
      ]);
    });

    it('a settle whose answer was lost still releases its global slot (finding 7: lost settle answer)', async () => {
      await holds(env, { startMs: HOUR_END - 2000, global: true }, [
        new Send(0, 0, undefined, undefined, undefined),
        new RunEvent(0, 0, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined),
        new RunEvent(0, 0, { port: 'dynamo', nth: 0, kind: 'lost-answer' }, undefined),
      ]);
    });

    it('a wake-up send that fails never strands the request queued behind it (finding 3: lost send)', async () => {
      await holds(env, { startMs: QUIET }, [
        new Send(0, 0, undefined, undefined, undefined),
        new Send(0, 0, undefined, undefined, undefined), // two in flight: the next ones queue
        new SendPair(0, 0), // A queued at 1, its SQS send held; B queued at 2; A's send fails
      ]);
    });
  }),
);
