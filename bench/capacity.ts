import { randomUUID } from 'node:crypto';
import { DynamoLimiter } from '../lambda/adapters/dynamo-limiter';
import { USAGE_INDEX } from '../lambda/adapters/limiter/usage-index';
import { parseLimitsConfig } from '../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';
import { isJavaAvailable, startDynamoDbLocal } from '../test/support/dynamodb-local';
import {
  ALL_KINDS,
  allKindsPromptsWaiting,
  decideAndSettle,
  fillGlobalLine,
  globalInFlight,
  LINE,
  longPromptsWaiting,
  type Made,
  type Measured,
  REFUSALS,
  rawReader,
  refusalBurst,
} from './capacity-scenarios';
import { type ItemKind, largestItems, meterCapacity, per, sum } from './capacity-units';
import type { BenchPart, BenchRow } from './report';

/** Requests admitted and left in flight across the shards before the items are read. */
const IN_FLIGHT = 1000;
/**
 * Every global limit on; all but requests in flight high enough that none binds (as
 * bench/global.ts). `requestsInFlight` is the scenario's 1,000, so the stack has the shards they
 * need (ceil(1,000 / 13) = 77, more than the 4 configured): every shard ends full, at its cap.
 */
const GLOBAL = {
  requestsInFlight: IN_FLIGHT,
  hourlyMessages: 1_000_000,
  dailyTokens: 1_000_000_000,
  dailyCostUsd: 1_000_000,
  shards: 4,
};

/** The shards the stack has for GLOBAL (configured 4, raised to fit its requests in flight). */
const SHARDS = parseLimitsConfig({ global: GLOBAL }).global!.shards;

/** One backend's table, a limiter on the free tier's defaults and one with global limits on. */
async function setUp(endpoint: string, sqsEndpoint: string) {
  const { tables } = await createLocalResources(
    localDynamoClient(endpoint),
    localSqsClient(sqsEndpoint),
    `bench-c-${randomUUID().slice(0, 6)}`,
  );
  const made = (global: boolean, tiers?: typeof ALL_KINDS): Made => {
    const client = localDynamoClient(endpoint);
    const meter = meterCapacity(client);
    const config = parseLimitsConfig(global ? { global: GLOBAL } : {});
    const limiter = new DynamoLimiter({
      client,
      tableName: tables.limits,
      historyTableName: tables.requests,
      tiers: tiers ?? config.tiers,
      global: config.global,
      timeoutMs: 10_000,
    });
    return { limiter, meter };
  };
  return {
    table: tables.limits,
    plain: made(false),
    global: made(true),
    fresh: () => made(false),
    kinds: made(false, ALL_KINDS),
    freshKinds: () => made(false, ALL_KINDS),
  };
}

/** Every scenario on one backend: rows of write and read units per decision, and item sizes. */
async function onBackend(backend: string, endpoint: string, sqsEndpoint: string) {
  const { table, plain, global, fresh, kinds, freshKinds } = await setUp(endpoint, sqsEndpoint);
  const typical = await decideAndSettle(plain, 10, 3);
  const everyKind = await allKindsPromptsWaiting(
    kinds,
    freshKinds,
    rawReader(localDynamoClient(endpoint), table),
  );
  const long = await longPromptsWaiting(plain, fresh);
  const burst = await refusalBurst(plain);
  const withGlobal = await decideAndSettle(global, 10, 3);
  const flight = await globalInFlight(global, IN_FLIGHT, SHARDS);
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
    ...Object.entries(everyKind.measured).map(([what, m]): [string, Measured] => [
      `every per-user kind on, 1 in flight and 10 long prompts waiting, ${what}`,
      m,
    ]),
    [`a burst of ${REFUSALS} refusals (one user at its limit)`, burst],
    [
      `global limits on, ${SHARDS} shards (decide + settle)`,
      {
        units: gBoth,
        decisions: withGlobal.decisions,
        note: `decide ${per(withGlobal.decideUnits.write, withGlobal.decisions)} WU`,
      },
    ],
    [
      `global limits on, joining the line (${LINE} waiters), one line entry`,
      {
        units: line,
        decisions: LINE,
        note: "one joinGlobalLine per waiter: a write of the waiter's own line entry",
      },
    ],
    [`global limits on, ${IN_FLIGHT} requests left in flight (decide only)`, flight],
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
  rows.push({
    metric: `largest user item, every per-user kind on, 1 in flight and 10 long prompts waiting [${backend}]`,
    value: everyKind.itemBytes,
    unit: 'bytes',
    note: `${Math.ceil(everyKind.itemBytes / 1024)} WU to write`,
  });
  for (const kind of ['user item', 'global shard', 'global line entry', 'usage-index entry'] as ItemKind[]) {
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
          `items are the largest left after the scenarios: ${IN_FLIGHT} requests still in flight on the shards, 100 users in the global line`,
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
