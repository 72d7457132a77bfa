import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type ConsumedCapacity,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { KEY_ATTR, LINE_KEY_PREFIX, USER_KEY_PREFIX } from '../lambda/core/limiter/item/attributes';

/** The commands that write: their units are write units; every other command's are read units. */
const WRITES = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
]);

export interface Units {
  readonly write: number;
  readonly read: number;
  /** Calls made, and of them the conditional writes that failed. */
  readonly calls: number;
  readonly failedConditions: number;
  /** Write units of failed conditional writes, derived from the item's size (see below). */
  readonly derivedWrite: number;
  /** Of them, the ones whose error carried no item (dynalite's): counted as 1, a lower bound. */
  readonly withoutItem: number;
}

/** a + b, field by field (a absent: b). */
export function sum(a: Units | undefined, b: Units): Units {
  if (!a) return b;
  return {
    write: a.write + b.write,
    read: a.read + b.read,
    calls: a.calls + b.calls,
    failedConditions: a.failedConditions + b.failedConditions,
    derivedWrite: a.derivedWrite + b.derivedWrite,
    withoutItem: a.withoutItem + b.withoutItem,
  };
}

/** value / n with 2 decimals, for notes. */
export const per = (value: number, n: number) => (value / Math.max(1, n)).toFixed(2);

const ZERO: Units = { write: 0, read: 0, calls: 0, failedConditions: 0, derivedWrite: 0, withoutItem: 0 };

/**
 * Meters a client with DynamoDB's own accounting: an SDK middleware (initialize step, nothing
 * mocked) asks every command for `ReturnConsumedCapacity: 'TOTAL'` unless it asks already, and
 * sums the `ConsumedCapacity` each answer carries.
 *
 * A failed conditional write is billed by AWS as a write of the item's size, but neither AWS nor
 * the emulators put `ConsumedCapacity` on a `ConditionalCheckFailedException`: it is counted here
 * from the item the error returns (`ReturnValuesOnConditionCheckFailure: 'ALL_OLD'`, which every
 * conditional write of the limiter asks for): 1 write unit per KB of that item, rounded up, at
 * least 1 (an absent item, or an emulator that does not return it: dynalite does not, so its
 * count is a lower bound there; DynamoDB Local does).
 */
export function meterCapacity(client: DynamoDBClient): { take(): Units } {
  let units = { ...ZERO };
  const add = (command: string, consumed: ConsumedCapacity | ConsumedCapacity[] | undefined) => {
    for (const c of [consumed ?? []].flat()) {
      const write = c.WriteCapacityUnits ?? (WRITES.has(command) ? (c.CapacityUnits ?? 0) : 0);
      const read = c.ReadCapacityUnits ?? (WRITES.has(command) ? 0 : (c.CapacityUnits ?? 0));
      units = { ...units, write: units.write + write, read: units.read + read };
    }
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? 'unknown';
      const input = args.input as { ReturnConsumedCapacity?: string };
      units = { ...units, calls: units.calls + 1 };
      try {
        const out = await next({
          ...args,
          input: { ReturnConsumedCapacity: 'TOTAL', ...input },
        });
        add(command, (out.output as { ConsumedCapacity?: ConsumedCapacity }).ConsumedCapacity);
        return out;
      } catch (err) {
        if (err instanceof ConditionalCheckFailedException) {
          const derived = Math.max(1, Math.ceil(itemSize(err.Item ?? {}) / 1024));
          units = {
            ...units,
            write: units.write + derived,
            failedConditions: units.failedConditions + 1,
            derivedWrite: units.derivedWrite + derived,
            withoutItem: units.withoutItem + (err.Item ? 0 : 1),
          };
        }
        throw err;
      }
    },
    { step: 'initialize', name: `capacityMeter-${Math.random()}` },
  );
  return {
    take: () => {
      const taken = units;
      units = { ...ZERO };
      return taken;
    },
  };
}

/**
 * An item's size as DynamoDB counts it, after AWS's "Item sizes and formats"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
 * the sum of its attributes' names (UTF-8 bytes) and values — a string its UTF-8 bytes, a number
 * about (significant digits / 2) + 1 bytes, binary its bytes, a boolean or null 1 byte, a list or
 * map 3 bytes plus its elements plus 1 byte per element (a map's keys counted like names), a set
 * the sum of its elements.
 */
export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += utf8(name) + valueSize(value);
  return size;
}

function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return v.B.length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.L !== undefined) return 3 + v.L.reduce((sum, e) => sum + valueSize(e) + 1, 0);
  if (v.M !== undefined)
    return 3 + Object.entries(v.M).reduce((sum, [k, e]) => sum + utf8(k) + valueSize(e) + 1, 0);
  if (v.SS !== undefined) return v.SS.reduce((sum, s) => sum + utf8(s), 0);
  if (v.NS !== undefined) return v.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (v.BS !== undefined) return v.BS.reduce((sum, b) => sum + b.length, 0);
  return 0;
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** Significant digits (no sign, point, exponent, leading or trailing zeros) / 2, rounded up, + 1. */
function numberSize(n: string): number {
  const mantissa = n.replace(/^-/, '').replace(/[eE].*$/, '');
  const digits = mantissa.replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

export type ItemKind = 'user item' | 'global shard' | 'global line entry' | 'usage-index entry';

/**
 * The largest item of each kind in a table, read directly (a Scan with an unmetered client), and
 * the largest entry of the usage index `byDayUsage` (its key attributes, the table's key and the
 * projected counters: what an index write is sized by; storage adds 100 bytes per entry).
 */
export async function largestItems(
  client: DynamoDBClient,
  table: string,
  usageIndex: string,
): Promise<Record<ItemKind, { bytes: number; key: string }>> {
  const largest = {} as Record<ItemKind, { bytes: number; key: string }>;
  const keep = (kind: ItemKind, item: Record<string, AttributeValue>) => {
    const bytes = itemSize(item);
    if (bytes > (largest[kind]?.bytes ?? -1)) largest[kind] = { bytes, key: item[KEY_ATTR]?.S ?? '?' };
  };
  for (const indexName of [undefined, usageIndex]) {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({ TableName: table, IndexName: indexName, ExclusiveStartKey: start }),
      );
      for (const item of page.Items ?? []) {
        const key = item[KEY_ATTR]?.S ?? '';
        if (indexName) keep('usage-index entry', item);
        else if (key.startsWith(USER_KEY_PREFIX)) keep('user item', item);
        else if (key.startsWith(LINE_KEY_PREFIX)) keep('global line entry', item);
        else if (key.startsWith('global#')) keep('global shard', item);
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }
  return largest;
}
