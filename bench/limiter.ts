import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDB } from '@aws-sdk/client-dynamodb';
import { RateLimiterDynamo } from 'rate-limiter-flexible';
import { DynamoLimiter } from '../lambda/adapters/dynamo-limiter';
import { parseTierLimits } from '../lambda/core/limiter/policy';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';
import { countCalls } from '../test/support/call-counter';
import type { BenchPart, BenchRow } from './report';

const SEQUENTIAL = 2000;
const CONCURRENT = 4000;
const WIDTH = 16;
const USERS = 200;

/**
 * Every per-user limit kind active (message bucket, hourly and daily quotas, requests in flight,
 * daily, per-minute and monthly tokens, daily and monthly cost on the echo model's price), high enough that the
 * throughput runs are all admissions.
 */
const OPEN_TIERS = parseTierLimits({
  tiers: {
    free: {
      messagesPerMinute: 100_000,
      burst: 0,
      hourlyMessages: 1_000_000,
      dailyMessages: 1_000_000,
      dailyTokens: 1_000_000_000,
      requestsInFlight: 1_000_000,
      tokensPerMinute: 1_000_000_000,
      monthlyTokens: 1_000_000_000,
      dailyCostUsd: 1_000_000,
      monthlyCostUsd: 1_000_000,
    },
  },
});

/** What one decision costs each implementation: the same three limits. */
export interface Contender {
  readonly name: string;
  decide(userId: string): Promise<boolean>;
  calls(): number;
}

async function ours(
  endpoint: string,
  table: string,
  tiers = OPEN_TIERS,
  withReconcile = false,
): Promise<Contender> {
  const client = localDynamoClient(endpoint);
  const counter = countCalls(client);
  const limiter = new DynamoLimiter({ client, tableName: table, tiers, timeoutMs: 10_000 });
  return {
    name: 'chat-limiter',
    calls: counter.total,
    decide: async (userId) => {
      const decision = await limiter.decide(
        { userId, requestId: randomUUID(), estimatedInputTokens: 20, maxTokens: 200 },
        Date.now(),
      );
      if (decision.allowed && withReconcile)
        await limiter.reconcile(decision.reservation, { inputTokens: 20, outputTokens: 200 }, Date.now());
      return decision.allowed;
    },
  };
}

/**
 * rate-limiter-flexible's RateLimiterDynamo, one limiter per limit (message rate, hourly and daily
 * messages, daily, per-minute and monthly tokens, daily and monthly cost), consumed one after the
 * other. Not atomic across limits: a refusal by a later one leaves the earlier ones charged (the
 * peer's documented model), which we do not fix.
 */
async function peer(endpoint: string, open = true): Promise<Contender> {
  const storeClient = new DynamoDB({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const counter = countCalls(storeClient as never);
  const tableName = `peer-${randomUUID().slice(0, 8)}`;
  await storeClient.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
    }),
  );
  const make = (keyPrefix: string, points: number, duration: number) =>
    new RateLimiterDynamo({
      storeClient,
      tableName,
      tableCreated: true,
      ttlSet: true,
      keyPrefix,
      points,
      duration,
    });
  const rate = make('rate', open ? 100_000 : 25, 60);
  // The per-message quotas and the token and cost budgets, each a limiter of its own.
  const others = [
    [make('hourly', 1_000_000, 3_600), 1],
    [make('daily', 1_000_000, 86_400), 1],
    [make('tokens', 1_000_000_000, 86_400), 220],
    [make('tpm', 1_000_000_000, 60), 220],
    [make('monthly', 1_000_000_000, 2_592_000), 220],
    [make('cost', 1_000_000_000, 86_400), 124],
    [make('monthcost', 1_000_000_000, 2_592_000), 124],
  ] as const;
  counter.reset();
  return {
    name: `rate-limiter-flexible (${others.length + 1}× RateLimiterDynamo)`,
    calls: counter.total,
    decide: async (userId) => {
      try {
        await rate.consume(userId, 1);
        for (const [limiter, points] of others) await limiter.consume(userId, points);
        return true;
      } catch (err) {
        if (err instanceof Error) throw err; // a store fault, not a refusal
        return false;
      }
    },
  };
}

/** Runs `total` decisions `width` at a time over `users`: decisions/s and calls per decision. */
export async function measure(c: Contender, users: readonly string[], total: number, width: number) {
  const before = c.calls();
  let next = 0;
  let admitted = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) {
        const i = next++;
        if (await c.decide(users[i % users.length]!)) admitted++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: total / seconds, callsPerDecision: (c.calls() - before) / total, admitted };
}

export const limiterBench: BenchPart = {
  name: 'limiter',
  description:
    'decisions/s and DynamoDB calls per decision, chat-limiter vs rate-limiter-flexible, same dynalite',
  async run() {
    const emulators = await startEmulators();
    try {
      const resources = await createLocalResources(
        localDynamoClient(emulators.dynamodbEndpoint),
        localSqsClient(emulators.sqsEndpoint),
        'bench',
      );
      const users = Array.from({ length: USERS }, () => `bench-${randomUUID().slice(0, 8)}`);
      const a = await ours(emulators.dynamodbEndpoint, resources.tables.limits);
      const b = await peer(emulators.dynamodbEndpoint);
      // Warm both (tables, caches, JIT) on the same users.
      await measure(a, users, USERS, 8);
      await measure(b, users, USERS, 8);
      const rssBefore = process.memoryUsage().rss;
      const seqA = await measure(a, users, SEQUENTIAL, 1);
      const seqB = await measure(b, users, SEQUENTIAL, 1);
      const parA = await measure(a, users, CONCURRENT, WIDTH);
      const parB = await measure(b, users, CONCURRENT, WIDTH);

      // At the limit: one user, default free tier (25 back to back), 200 decisions in a row.
      const hot = `hot-${randomUUID().slice(0, 8)}`;
      const limitedA = await ours(emulators.dynamodbEndpoint, resources.tables.limits, parseTierLimits(''));
      const limitedB = await peer(emulators.dynamodbEndpoint, false);
      const hotA = await measure(limitedA, [hot], 200, 1);
      // A new instance meets 200 existing items cold (3 calls on each first touch); warm it like
      // the others so the row is the steady state.
      const reconciling = await ours(emulators.dynamodbEndpoint, resources.tables.limits, OPEN_TIERS, true);
      await measure(reconciling, users, USERS, 8);
      const withRec = await measure(reconciling, users, 1000, 1);
      const hotB = await measure(limitedB, [hot], 200, 1);
      const rssAfter = process.memoryUsage().rss;

      const row = (metric: string, unit: string, x: number, y: number, note?: string): BenchRow => ({
        metric,
        unit,
        value: x,
        peer: { name: b.name, value: y, ratio: x / y },
        note,
      });
      const rows: BenchRow[] = [
        row('decisions/s, sequential', '/s', seqA.perSecond, seqB.perSecond),
        row(`decisions/s, ${WIDTH}-way`, '/s', parA.perSecond, parB.perSecond, `${USERS} users`),
        row(
          'DynamoDB calls per decision (steady state)',
          'calls',
          seqA.callsPerDecision,
          seqB.callsPerDecision,
          'all 9 per-user kinds on (the peer: 8 limiters, it has no in-flight one)',
        ),
        {
          metric: 'DynamoDB calls per admitted request, decide + reconcile',
          value: withRec.callsPerDecision,
          unit: 'calls',
          note: 'the peer has no reconcile',
        },
        row(
          `DynamoDB calls per decision, ${WIDTH}-way`,
          'calls',
          parA.callsPerDecision,
          parB.callsPerDecision,
        ),
        row(
          'DynamoDB calls per decision, one user at the limit',
          'calls',
          hotA.callsPerDecision,
          hotB.callsPerDecision,
          `${hotA.admitted} of 200 admitted (peer ${hotB.admitted})`,
        ),
        { metric: 'RSS growth over the runs', value: (rssAfter - rssBefore) / 1024 / 1024, unit: 'MiB' },
      ];
      return {
        rows,
        details: {
          sequential: SEQUENTIAL,
          concurrent: CONCURRENT,
          width: WIDTH,
          users: USERS,
          seqA,
          seqB,
          parA,
          parB,
          hotA,
          hotB,
        },
      };
    } finally {
      await emulators.stop();
    }
  },
};
