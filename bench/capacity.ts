import { randomUUID } from 'node:crypto';
import { DynamoLimiter } from '../lambda/adapters/dynamo-limiter';
import { USAGE_INDEX } from '../lambda/adapters/limiter/usage-index';
import type { Decision } from '../lambda/core/limiter/decision';
import { parseLimitsConfig } from '../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';
import { isJavaAvailable, startDynamoDbLocal } from '../test/support/dynamodb-local';
import { type ItemKind, largestItems, meterCapacity, sum, type Units } from './capacity-units';
import type { BenchPart, BenchRow } from './report';

/** 8,000 four-byte characters (32,000 UTF-8 bytes): the long prompt of issue 22. */
const LONG_PROMPT = '😀'.repeat(8000);
const WAITING = 10;
const REFUSALS = 300;
const LINE = 100;
/** Every global limit on, high enough that none binds (as bench/global.ts), over 4 shards. */
const GLOBAL = {
  requestsInFlight: 1_000_000,
  hourlyMessages: 1_000_000,
  dailyTokens: 1_000_000_000,
  dailyCostUsd: 1_000_000,
  shards: 4,
};

type Reservation = Extract<Decision, { allowed: true }>['reservation'];
interface Measured {
  readonly units: Units;
  readonly decisions: number;
  readonly note: string;
}

/** One backend's table, a limiter on the free tier's defaults and one with global limits on. */
async function setUp(endpoint: string, sqsEndpoint: string) {
  const { tables } = await createLocalResources(
    localDynamoClient(endpoint),
    localSqsClient(sqsEndpoint),
    `bench-c-${randomUUID().slice(0, 6)}`,
  );
  const made = (global: boolean) => {
    const client = localDynamoClient(endpoint);
    const meter = meterCapacity(client);
    const config = parseLimitsConfig(global ? { global: GLOBAL } : {});
    const limiter = new DynamoLimiter({
      client,
      tableName: tables.limits,
      tiers: config.tiers,
      global: config.global,
      timeoutMs: 10_000,
    });
    return { limiter, meter };
  };
  return { table: tables.limits, plain: made(false), global: made(true), fresh: () => made(false) };
}
type Made = Awaited<ReturnType<typeof setUp>>['plain'];

const short = (userId: string) => ({
  userId,
  requestId: randomUUID(),
  estimatedInputTokens: 20,
  maxTokens: 200,
});
const usage = { inputTokens: 20, outputTokens: 100 };

/** `users` users, `each` short requests each, one after the other: decide, then settle. */
async function decideAndSettle(made: Made, users: number, each: number) {
  made.meter.take();
  let decideUnits: Units | undefined;
  const settles: Units[] = [];
  let decisions = 0;
  for (let u = 0; u < users; u++) {
    const userId = `typical-${randomUUID().slice(0, 8)}`;
    for (let i = 0; i < each; i++) {
      const d = await made.limiter.decide(short(userId), Date.now());
      decideUnits = sum(decideUnits, made.meter.take());
      decisions++;
      if (!d.allowed) continue;
      await made.limiter.reconcile(d.reservation, usage, Date.now());
      settles.push(made.meter.take());
    }
  }
  const settleUnits = settles.reduce<Units | undefined>(sum, undefined)!;
  return { decideUnits: decideUnits!, settleUnits, decisions, settles: settles.length };
}

/** Admits the user up to its limit (25 back to back on the free tier); keeps the reservations. */
async function toLimit(made: Made, userId: string): Promise<Reservation[]> {
  const kept: Reservation[] = [];
  for (;;) {
    const d = await made.limiter.decide(short(userId), Date.now());
    if (!d.allowed) return kept;
    kept.push(d.reservation);
  }
}

/**
 * The user of issue 22: at its limit, 10 prompts of 8,000 four-byte characters waiting (queued by
 * `decideOrQueue`, as the chat service does); then 20 more frames refused by the same instance,
 * one refused by each of 5 other instances (a Lambda instance that has not seen the item), and 5
 * replies settled.
 */
async function longPromptsWaiting(made: Made, fresh: () => Made): Promise<Record<string, Measured>> {
  const userId = `long-${randomUUID().slice(0, 8)}`;
  const inFlight = await toLimit(made, userId);
  made.meter.take();
  let queued = 0;
  for (let i = 0; i < WAITING; i++) {
    const nowMs = Date.now();
    const input = { ...short(userId), estimatedInputTokens: 8000 };
    const request = {
      requestId: input.requestId,
      connectionId: `conn-${randomUUID().slice(0, 12)}=`,
      message: LONG_PROMPT,
      estimatedInputTokens: 8000,
      enqueuedAtEpochMs: nowMs,
      expiresAtEpochMs: nowMs + 360_000,
    };
    const { slot } = await made.limiter.decideOrQueue(input, nowMs, () => ({ request, maxQueued: WAITING }));
    if (slot?.kind === 'queued') queued++;
  }
  const enqueue = made.meter.take();
  let refused = 0;
  for (let i = 0; i < 20; i++) if (!(await made.limiter.decide(short(userId), Date.now())).allowed) refused++;
  const refusals = made.meter.take();
  const others = Array.from({ length: 5 }, fresh);
  let otherRefused = 0;
  for (const other of others)
    if (!(await other.limiter.decide(short(userId), Date.now())).allowed) otherRefused++;
  const otherUnits = others.map((o) => o.meter.take()).reduce<Units | undefined>(sum, undefined)!;
  for (const r of inFlight.slice(-5)) await made.limiter.reconcile(r, usage, Date.now());
  const settles = made.meter.take();
  return {
    'each of its 10 enqueues': { units: enqueue, decisions: WAITING, note: `${queued} queued` },
    'a refusal': {
      units: refusals,
      decisions: 20,
      note: `${refused} of 20 refused by the instance that queued`,
    },
    'a refusal by another instance': {
      units: otherUnits,
      decisions: 5,
      note: `${otherRefused} of 5 refused, each by a limiter that had not seen the item`,
    },
    'a settle': { units: settles, decisions: 5, note: 'replies admitted before the prompts queued' },
  };
}

/** One user at its limit, then 300 frames at once, every one refused. */
async function refusalBurst(made: Made): Promise<Measured> {
  const userId = `burst-${randomUUID().slice(0, 8)}`;
  await toLimit(made, userId);
  made.meter.take();
  const ds = await Promise.all(
    Array.from({ length: REFUSALS }, () => made.limiter.decide(short(userId), Date.now())),
  );
  const refused = ds.filter((d) => !d.allowed).length;
  return { units: made.meter.take(), decisions: REFUSALS, note: `${refused} refused` };
}

/** 100 users in the global line (AWS-length receipt handles), to size the line's item. */
async function fillGlobalLine(made: Made): Promise<Units> {
  made.meter.take();
  const nowMs = Date.now();
  for (let i = 0; i < LINE; i++) {
    await made.limiter.joinGlobalLine({
      userId: `line-${randomUUID().slice(0, 8)}`,
      tier: 'free',
      enqueuedAtEpochMs: nowMs,
      deadlineEpochMs: nowMs + 300_000,
      // An SQS receipt handle on AWS is a few hundred characters (here 400); fauxqs's are shorter.
      wakeUp: 'A'.repeat(400),
      seenAtEpochMs: nowMs,
      limit: 'requestsInFlight',
    });
  }
  return made.meter.take();
}

/** Every scenario on one backend: rows of write and read units per decision, and item sizes. */
async function onBackend(backend: string, endpoint: string, sqsEndpoint: string) {
  const { table, plain, global, fresh } = await setUp(endpoint, sqsEndpoint);
  const typical = await decideAndSettle(plain, 10, 3);
  const long = await longPromptsWaiting(plain, fresh);
  const burst = await refusalBurst(plain);
  const withGlobal = await decideAndSettle(global, 10, 3);
  const line = await fillGlobalLine(global);
  const largest = await largestItems(localDynamoClient(endpoint), table, USAGE_INDEX);
  const both = sum(typical.decideUnits, typical.settleUnits);
  const gBoth = sum(withGlobal.decideUnits, withGlobal.settleUnits);
  const scenarios: [string, Measured][] = [
    [
      'a typical user (decide + settle)',
      {
        units: both,
        decisions: typical.decisions,
        note: `free tier defaults, short prompts; decide ${per(typical.decideUnits.write, typical.decisions)} WU`,
      },
    ],
    ...Object.entries(long).map(([what, m]): [string, Measured] => [
      `the user with 10 long prompts waiting, ${what}`,
      m,
    ]),
    [`a burst of ${REFUSALS} refusals (one user at its limit)`, burst],
    [
      'global limits on, 4 shards (decide + settle)',
      {
        units: gBoth,
        decisions: withGlobal.decisions,
        note: `decide ${per(withGlobal.decideUnits.write, withGlobal.decisions)} WU`,
      },
    ],
    [
      `global limits on, joining a line of up to ${LINE}`,
      { units: line, decisions: LINE, note: 'one joinGlobalLine per waiter, the line growing 1…100' },
    ],
    ['settle', { units: typical.settleUnits, decisions: typical.settles, note: 'a typical user, one reply' }],
  ];
  const rows: BenchRow[] = [];
  for (const [scenario, m] of scenarios) {
    const failed = m.units.failedConditions
      ? `; ${m.units.failedConditions} failed conditional writes counted as ${m.units.derivedWrite} WU from the item's size${
          m.units.withoutItem ? ` (${m.units.withoutItem} returned no item: 1 WU each, a lower bound)` : ''
        }`
      : '';
    rows.push(
      {
        metric: `write units per decision, ${scenario} [${backend}]`,
        value: m.units.write / m.decisions,
        unit: 'WU',
        note: `${m.note}; ${per(m.units.calls, m.decisions)} calls${failed}`,
      },
      {
        metric: `read units per decision, ${scenario} [${backend}]`,
        value: m.units.read / m.decisions,
        unit: 'RU',
      },
    );
  }
  for (const kind of [
    'user item',
    'global shard',
    'global waiting line',
    'usage-index entry',
  ] as ItemKind[]) {
    const item = largest[kind];
    rows.push({
      metric: `largest ${kind} [${backend}]`,
      value: item?.bytes ?? 0,
      unit: 'bytes',
      note: item ? `${item.key}; ${Math.ceil(item.bytes / 1024)} WU to write` : 'none in the table',
    });
  }
  return { rows, largest };
}

export const capacityBench: BenchPart = {
  name: 'capacity',
  description: "write and read capacity units per decision, from DynamoDB's own ReturnConsumedCapacity",
  async run() {
    const emulators = await startEmulators();
    try {
      const rows: BenchRow[] = [];
      const details: Record<string, unknown> = {
        notes: [
          "dynalite sizes a string by its UTF-16 length (half a four-byte character's bytes) and leaves index writes out; DynamoDB Local counts UTF-8 bytes and each index write, as AWS bills",
          'items are the largest left after the scenarios, when every reply has been settled',
        ],
      };
      const dynalite = await onBackend('dynalite', emulators.dynamodbEndpoint, emulators.sqsEndpoint);
      rows.push(...dynalite.rows);
      details.dynalite = dynalite.largest;
      if (isJavaAvailable()) {
        const local = await startDynamoDbLocal();
        try {
          const ddb = await onBackend('DynamoDB Local', local.endpoint, emulators.sqsEndpoint);
          rows.push(...ddb.rows);
          details.dynamodbLocal = ddb.largest;
        } finally {
          await local.stop();
        }
      } else {
        rows.push({ metric: 'DynamoDB Local', value: 0, unit: '', note: 'skipped: no java on PATH' });
      }
      return { rows, details };
    } finally {
      await emulators.stop();
    }
  },
};

const per = (value: number, n: number) => (value / Math.max(1, n)).toFixed(2);
