import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { ExpressionWriter, type UpdatePlan } from '../core/limiter/expression';
import {
  ACTIVE_ATTR,
  IN_FLIGHT_ATTR,
  KEY_ATTR,
  USER_KEY_PREFIX,
  userIdOf,
  userKey,
  WAITING_ATTR,
} from '../core/limiter/item/attributes';
import { SWEEP_AFTER_ATTRIBUTE, SWEEP_BUCKET_ATTRIBUTE, SWEEP_BUCKETS } from '../core/queue/sweep';
import { TABLES } from '../core/resources';
import type { DueUser, SweepIndexPort } from '../services/ports';

const INDEX = TABLES.limits.globalIndexes.find((i) => i.indexName === 'bySweep')!.indexName;

/**
 * The sweep's side of the Limits table: the sparse `bySweep` index, queried bucket by bucket for
 * users due now (never a scan), and the small conditional writes that move a user's next look,
 * take it out of the index, or drop lapsed in-flight slots.
 */
export class SweepIndex implements SweepIndexPort {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async due(nowMs: number, limit: number): Promise<DueUser[]> {
    const perBucket = Math.max(1, Math.ceil(limit / SWEEP_BUCKETS));
    const buckets = await Promise.all(
      Array.from({ length: SWEEP_BUCKETS }, (_, b) => this.dueIn(String(b), nowMs, perBucket)),
    );
    return buckets.flat();
  }

  private async dueIn(bucket: string, nowMs: number, limit: number): Promise<DueUser[]> {
    const users: DueUser[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX,
          KeyConditionExpression: '#sw = :b AND #sa <= :now',
          ExpressionAttributeNames: { '#sw': SWEEP_BUCKET_ATTRIBUTE, '#sa': SWEEP_AFTER_ATTRIBUTE },
          ExpressionAttributeValues: marshall({ ':b': bucket, ':now': nowMs }),
          Limit: limit - users.length,
          ExclusiveStartKey: startKey ? marshall(startKey) : undefined,
        }),
      );
      for (const raw of page.Items ?? []) {
        const item = unmarshall(raw);
        const pk = String(item[KEY_ATTR]);
        const sweepAfterEpochMs = item[SWEEP_AFTER_ATTRIBUTE];
        if (!pk.startsWith(USER_KEY_PREFIX) || typeof sweepAfterEpochMs !== 'number') continue;
        users.push({ userId: userIdOf(pk), sweepAfterEpochMs });
      }
      startKey = page.LastEvaluatedKey ? unmarshall(page.LastEvaluatedKey) : undefined;
    } while (startKey && users.length < limit);
    return users;
  }

  async reschedule(user: DueUser, nextLookEpochMs: number, waiting: number): Promise<boolean> {
    const w = new ExpressionWriter();
    const sa = w.name(SWEEP_AFTER_ATTRIBUTE);
    const list = w.name(WAITING_ATTR);
    // Only the look it was found with (an enqueue or another sweep may have set its own since),
    // and only if the list is as long as it was read: the next look was computed from that list.
    w.condition(`${sa} = ${w.value(user.sweepAfterEpochMs)}`);
    w.condition(
      waiting === 0
        ? `(attribute_not_exists(${list}) OR size(${list}) = ${w.value(0)})`
        : `size(${list}) = ${w.value(waiting)}`,
    );
    w.set(`${sa} = ${w.value(nextLookEpochMs)}`);
    return this.write(user.userId, w.build());
  }

  async clear(user: DueUser): Promise<boolean> {
    const w = new ExpressionWriter();
    const sa = w.name(SWEEP_AFTER_ATTRIBUTE);
    const waiting = w.name(WAITING_ATTR);
    const fl = w.name(IN_FLIGHT_ATTR);
    // Nothing left that needs an end: no waiting list, no active request, no slot held — decided
    // by the store, not by the read, so an enqueue or admission since keeps the user in the index.
    w.condition(`${sa} = ${w.value(user.sweepAfterEpochMs)}`);
    w.condition(`(attribute_not_exists(${waiting}) OR size(${waiting}) = ${w.value(0)})`);
    w.condition(`attribute_not_exists(${w.name(ACTIVE_ATTR)})`);
    w.condition(`(attribute_not_exists(${fl}) OR size(${fl}) = ${w.value(0)})`);
    w.remove(w.name(SWEEP_BUCKET_ATTRIBUTE), sa);
    return this.write(user.userId, w.build());
  }

  async dropSlots(userId: string, slots: readonly (readonly [string, number])[]): Promise<boolean> {
    if (slots.length === 0) return true;
    const w = new ExpressionWriter();
    const fl = w.name(IN_FLIGHT_ATTR);
    for (const [id, lease] of slots) {
      // Only a slot still held under the lease that lapsed: a takeover since renewed it.
      const entry = `${fl}.${w.name(id)}`;
      w.condition(`${entry} = ${w.value(lease)}`);
      w.remove(entry);
    }
    return this.write(userId, w.build());
  }

  /** One conditional write of the user's item; `false` when its condition did not hold. */
  private async write(userId: string, plan: UpdatePlan): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall({ [KEY_ATTR]: userKey(userId) }),
          UpdateExpression: plan.update,
          ConditionExpression: plan.condition,
          ExpressionAttributeNames: plan.names,
          ExpressionAttributeValues: Object.keys(plan.values).length ? marshall(plan.values) : undefined,
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }
}
