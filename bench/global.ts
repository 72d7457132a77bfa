import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoLimiter } from '../lambda/adapters/dynamo-limiter';
import type { AllowedDecision } from '../lambda/core/limiter/decision';
import { SHARE_RECORDS_PER_SHARD } from '../lambda/core/limiter/global/share-record';
import { parseLimitsConfig } from '../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';
import { countCalls } from '../test/support/call-counter';
import { type Contender, measure } from './limiter';
import type { BenchPart, BenchRow } from './report';

const USERS = 200;
const DECISIONS = 2000;
const WIDTH = 16;
/** The users' own limits, high: every decision is an admission, so each one writes a shard. */
const OPEN = { messagesPerMinute: 100_000, burst: 0, dailyTokens: 1_000_000_000 };
/**
 * Every global limit on, high enough that none binds; requests in flight as many as `shards`
 * shards hold (SHARE_RECORDS_PER_SHARD each: a higher limit would get more shards).
 */
const GLOBAL = {
  hourlyMessages: 1_000_000,
  dailyTokens: 1_000_000_000,
  dailyCostUsd: 1_000_000,
};

/** One limiter on its own table, with or without global limits over `shards` shards. */
async function limiter(endpoint: string, sqsEndpoint: string, shards: number | undefined) {
  const { tables } = await createLocalResources(
    localDynamoClient(endpoint),
    localSqsClient(sqsEndpoint),
    `bench-g-${randomUUID().slice(0, 6)}`,
  );
  const client = localDynamoClient(endpoint);
  const counter = countCalls(client);
  const config = parseLimitsConfig({
    tiers: { free: OPEN },
    ...(shards ? { global: { ...GLOBAL, requestsInFlight: SHARE_RECORDS_PER_SHARD * shards, shards } } : {}),
  });
  const make = (c: DynamoDBClient) =>
    new DynamoLimiter({
      client: c,
      tableName: tables.limits,
      tiers: config.tiers,
      global: config.global,
      timeoutMs: 10_000,
    });
  // The replies end on another instance (as the runner settles them), its calls not counted: a
  // shard holds at most 13 shares, so requests left in flight would soon fill every shard.
  const settler = make(localDynamoClient(endpoint));
  const settling: Promise<unknown>[] = [];
  return {
    counter,
    limiter: make(client),
    // Without global limits nothing fills up: no settle, as before the cap.
    settleElsewhere: (reservation: AllowedDecision['reservation']) =>
      shards &&
      settling.push(settler.reconcile(reservation, { inputTokens: 20, outputTokens: 100 }, Date.now())),
    settled: () => Promise.all(settling.splice(0)),
  };
}

/** One limiter as a contender: each decision, and (`settle`) the reconcile of an admitted one. */
function contender(made: Awaited<ReturnType<typeof limiter>>, settle: boolean): Contender {
  return {
    name: 'chat-limiter',
    calls: made.counter.total,
    decide: async (userId) => {
      const decision = await made.limiter.decide(
        { userId, requestId: randomUUID(), estimatedInputTokens: 20, maxTokens: 200 },
        Date.now(),
      );
      if (!decision.allowed) return false;
      if (!settle) made.settleElsewhere(decision.reservation);
      if (settle) {
        await made.limiter.reconcile(
          decision.reservation,
          { inputTokens: 20, outputTokens: 100 },
          Date.now(),
        );
      }
      return true;
    },
  };
}

export const globalBench: BenchPart = {
  name: 'global',
  description: 'DynamoDB calls per decision and decisions/s with global limits on, by number of shards',
  async run() {
    const emulators = await startEmulators();
    try {
      const users = Array.from({ length: USERS }, () => `g-${randomUUID().slice(0, 8)}`);
      const rows: BenchRow[] = [];
      const calls: BenchRow[] = [];
      const details: Record<string, unknown> = {};
      const without = await limiter(emulators.dynamodbEndpoint, emulators.sqsEndpoint, undefined);
      await measure(contender(without, false), users, USERS, 8);
      const base = await measure(contender(without, false), users, DECISIONS, WIDTH);
      details.without = base;
      rows.push({
        metric: `decisions/s, ${WIDTH}-way, no global limits`,
        value: base.perSecond,
        unit: '/s',
        note: `${base.callsPerDecision.toFixed(2)} calls per decision`,
      });
      for (const shards of [1, 2, 4, 8]) {
        const made = await limiter(emulators.dynamodbEndpoint, emulators.sqsEndpoint, shards);
        // Warm: users' items and every shard known to this instance.
        await measure(contender(made, false), users, USERS, 8);
        await made.settled();
        const run = await measure(contender(made, false), users, DECISIONS, WIDTH);
        await made.settled();
        details[`shards${shards}`] = run;
        rows.push({
          metric: `decisions/s, ${WIDTH}-way, global limits over ${shards} shard${shards > 1 ? 's' : ''}`,
          value: run.perSecond,
          unit: '/s',
          note: `${run.admitted} of ${DECISIONS} admitted (each settled on another instance; at most ${SHARE_RECORDS_PER_SHARD * shards} in flight)`,
          peer: { name: 'no global limits', value: base.perSecond, ratio: run.perSecond / base.perSecond },
        });
        if (shards === 4) {
          calls.push({
            metric: 'DynamoDB calls per decision, global limits on (4 shards)',
            value: run.callsPerDecision,
            unit: 'calls',
            peer: {
              name: 'no global limits',
              value: base.callsPerDecision,
              ratio: run.callsPerDecision / base.callsPerDecision,
            },
            note: 'one shard write more than without, plus a look at who waits (once a second per instance)',
          });
          const settled = await measure(contender(made, true), users, 1000, 1);
          details.settled = settled;
          calls.push({
            metric: 'DynamoDB calls per admitted request with settle, global limits on',
            value: settled.callsPerDecision,
            unit: 'calls',
            note: 'user write + shard write, user settle + shard release (+ a look at who waits, at most once a second)',
          });
        }
      }
      rows.push(...calls);
      return { rows, details: { users: USERS, decisions: DECISIONS, width: WIDTH, ...details } };
    } finally {
      await emulators.stop();
    }
  },
};
