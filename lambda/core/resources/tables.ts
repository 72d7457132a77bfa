import {
  KEY_ATTR,
  LINE_ORDER_ATTR,
  LINE_PARTITION_ATTR,
  SWEEP_AFTER_ATTRIBUTE,
  SWEEP_BUCKET_ATTRIBUTE,
  USAGE_DAY_ATTR,
  USAGE_INDEX_PROJECTION,
  WAITER_FIELDS,
} from '../limiter/item/attributes';
import { ENV, type EnvName } from './env';

/** Attribute types as DynamoDB spells them. */
export type KeyType = 'S' | 'N';

export interface KeyDefinition {
  readonly name: string;
  readonly type: KeyType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /**
   * Project only the keys and these attributes (small index entries, cheap index writes); an
   * empty list projects the keys only. @default all
   */
  readonly include?: readonly string[];
}

export interface TableDefinition {
  /** Logical id in the stack and base name of the local table. */
  readonly id: string;
  readonly env: EnvName;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /** Attribute holding the expiry in epoch seconds. Emulators do not expire: readers filter. */
  readonly ttlAttribute?: string;
  readonly globalIndexes?: readonly IndexDefinition[];
}

/** Name of the TTL attribute in every table: DynamoDB TTL is epoch seconds. */
export const TTL_ATTRIBUTE = 'ttlEpochSeconds';

export const TABLES = {
  /**
   * One item per rate-limited subject (`user#<id>`, `ip#<addr>`): every limit counter, the user's
   * tier and override, and the user's waiting queue, so one conditional write decides everything.
   */
  limits: {
    id: 'Limits',
    env: ENV.limitsTable,
    partitionKey: { name: KEY_ATTR, type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
    globalIndexes: [
      {
        // `admin top`: today's users by settled usage, without a scan. Sparse (only user items
        // carry `ud`, the usage day and one of USAGE_BUCKETS, 256, set by settles only: a
        // decision writes no index entry, issue 22), no sort key (a settle updates its entry in
        // place: 1 index write), keys and the settled tokens, cost and replies only; docs/admin.md
        // has what it costs. (Renamed from `byDayUsage`, sorted by `tu`: a GSI's key schema
        // cannot change in place.)
        indexName: 'byDaySettled',
        partitionKey: { name: USAGE_DAY_ATTR, type: 'S' },
        include: USAGE_INDEX_PROJECTION,
      },
      {
        // The self-healing sweep: users whose item holds state needing an end (a waiting list,
        // an active request, in-flight slots), by bucket (`sw`, one of 8) and the instant to look
        // after (`sa`); no scan. Sparse and keys only: lambda/core/queue/sweep.ts.
        indexName: 'bySweep',
        partitionKey: { name: SWEEP_BUCKET_ATTRIBUTE, type: 'S' },
        sortKey: { name: SWEEP_AFTER_ATTRIBUTE, type: 'N' },
        include: [],
      },
      {
        // The global line (lambda/core/limiter/global/line.ts): users held back by a global limit,
        // one item each (`gline#<id>`), by bucket (`lb`, one of LINE_BUCKETS 4) and place in
        // priority order (`lo`). Sparse; projects the waiter's fields, so reading the line's head
        // is one Query per bucket. docs/limiter.md has what it costs per partition at 10,000 waiting.
        indexName: 'byLine',
        partitionKey: { name: LINE_PARTITION_ATTR, type: 'S' },
        sortKey: { name: LINE_ORDER_ATTR, type: 'S' },
        include: Object.values(WAITER_FIELDS),
      },
    ],
  },
  /** Live WebSocket connections, found by user through `byUser`. */
  connections: {
    id: 'Connections',
    env: ENV.connectionsTable,
    partitionKey: { name: 'connectionId', type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
    globalIndexes: [
      {
        indexName: 'byUser',
        partitionKey: { name: 'userId', type: 'S' },
        sortKey: { name: 'connectedAtEpochMs', type: 'N' },
      },
    ],
  },
  /** Queued request records, queue counters and undelivered replies (pk/sk single-table layout). */
  requests: {
    id: 'Requests',
    env: ENV.requestsTable,
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
  },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof TABLES;
