import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { GlobalLimits } from '../../core/limiter/global/limits';
import { planOrphanRelease } from '../../core/limiter/global/shards';
import { type RecordedShare, recordedShares } from '../../core/limiter/global/share-record';
import {
  KEY_ATTR,
  RESERVATION_PREFIX,
  SETTLED_SHARE_FIELDS,
  SETTLED_SHARE_PREFIX,
  userKey,
} from '../../core/limiter/item/attributes';
import { snapshotFromItem } from '../../core/limiter/item/codec';
import { planForgetSettledCharge } from '../../core/limiter/plan/settle';
import { LimiterStoreError } from './errors';
import type { UserItems } from './user-items';

/**
 * A share is orphaned only this long after its lease ended: every decision and settle of it has
 * long given up by then (their calls time out in seconds), so nothing else will give it back.
 */
export const ORPHAN_MARGIN_MS = 120_000;

/** The sweep's repair of the global shards: shares whose holder is gone go back (once). */
export class GlobalOrphans {
  constructor(
    private readonly items: UserItems,
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly limits: GlobalLimits,
    /** Shard k's key (the stack's shards, or a team's). */
    private readonly shardKey: (k: number) => string,
  ) {}

  /**
   * Gives back the shares nothing holds any more (SPEC §2 global limits: a share taken once is given
   * back once). Each shard records every share it holds (`gr.<id>`, planGlobalAdmission; `ga_<id>`
   * written before issue 22 is read too) until its release; one whose lease ended more than ORPHAN_MARGIN_MS ago is looked up on its user's item:
   * a reservation of it there (`r_<id>`) is the user's, and its settle (or the sweep's repair of
   * the user) releases it — left alone; a settled request's charge (`gs_<id>`) means only the part
   * not charged goes back; neither means the request was never admitted (its decision's outcome was
   * unknown and its undo got no answer), and the whole share goes back, its message too. Each
   * give-back is one write conditioned on the record (planOrphanRelease), so it happens once even
   * with a release or another sweep racing it. Returns the requests given back.
   */
  async release(nowMs: number): Promise<{ readonly userId: string; readonly requestId: string }[]> {
    const released: { readonly userId: string; readonly requestId: string }[] = [];
    for (let k = 0; k < this.limits.shards; k++) {
      const key = this.shardKey(k);
      const item = await this.items.withRetries(() => this.rawItem(key));
      const lapsed = recordedShares(item).filter((s) => s.leaseUntilEpochMs + ORPHAN_MARGIN_MS <= nowMs);
      for (const share of lapsed) {
        const user = await this.items.withRetries(() => this.rawItem(userKey(share.userId)));
        if (user?.[`${RESERVATION_PREFIX}${share.requestId}`] !== undefined) continue;
        const charged = chargeOf(user?.[`${SETTLED_SHARE_PREFIX}${share.requestId}`]);
        if (await this.items.withRetries(() => this.giveBackOrphan(key, share, charged))) {
          released.push({ userId: share.userId, requestId: share.requestId });
        }
        if (charged) {
          await this.items.withRetries(() =>
            forgetSettledCharge(this.items, this.client, this.tableName, share.userId, share.requestId),
          );
        }
      }
    }
    return released;
  }

  /** One conditioned write; false when the record is gone (released meanwhile). */
  private async giveBackOrphan(
    key: string,
    share: RecordedShare,
    charged: { readonly tokens: number; readonly costMicroUsd: number } | undefined,
  ): Promise<boolean> {
    for (let round = 0; round < 8; round++) {
      const item = await this.rawItem(key);
      // Released meanwhile (by the request's own release, or another sweep): nothing to give.
      if (!recordedShares(item).some((s) => s.requestId === share.requestId)) return false;
      const belief = snapshotFromItem(item);
      if ((await this.items.write(key, planOrphanRelease({ belief, share, charged }))).ok) return true;
    }
    throw new LimiterStoreError(`orphaned share ${share.requestId} stayed contended`);
  }

  /** A consistent read of an item as stored (the snapshot does not keep the share records). */
  private async rawItem(key: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.items.call(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: marshall({ pk: key }), ConsistentRead: true }),
        { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
      ),
    );
    return Item ? unmarshall(Item) : undefined;
  }
}

/** A settled request's charge as its settle left it (`gs_<id>`), if it did. */
function chargeOf(value: unknown): { readonly tokens: number; readonly costMicroUsd: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const [tokens, cost] = [record[SETTLED_SHARE_FIELDS.tokens], record[SETTLED_SHARE_FIELDS.costMicroUsd]];
  return {
    tokens: typeof tokens === 'number' ? tokens : 0,
    costMicroUsd: typeof cost === 'number' ? cost : 0,
  };
}

/**
 * A settled request's charge (`gs_<id>`) is no longer needed once its share is back — given back
 * by its release or by the sweep: it goes from the user's item (only if still there, so no empty
 * item is made). One conditioned write.
 */
export async function forgetSettledCharge(
  items: UserItems,
  client: DynamoDBClient,
  tableName: string,
  userId: string,
  requestId: string,
): Promise<void> {
  const plan = planForgetSettledCharge(requestId);
  try {
    await items.call(() =>
      client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: marshall({ [KEY_ATTR]: userKey(userId) }),
          UpdateExpression: plan.update,
          ConditionExpression: plan.condition,
          ExpressionAttributeNames: plan.names,
        }),
        { abortSignal: AbortSignal.timeout(items.timeoutMs) },
      ),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
  }
}
