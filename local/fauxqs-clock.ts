import type { Clock } from '../lambda/core/clock';

/**
 * SQS FIFO's deduplication interval, as AWS documents it: a message sent with the
 * `MessageDeduplicationId` of one sent successfully in the last 5 minutes is accepted (the first's
 * MessageId is returned) but not delivered — whether or not the first was received or deleted
 * since (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html).
 */
export const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;

/** The part of fauxqs 1.9's queue class this patch replaces (dist/sqs/sqsStore.d.ts). */
interface FauxqsQueuePrototype {
  checkDeduplication(dedupId: string): {
    isDuplicate: boolean;
    originalMessageId?: string;
    originalSequenceNumber?: string;
  };
  recordDeduplication(dedupId: string, messageId: string, sequenceNumber?: string): void;
}

interface FirstSend {
  readonly messageId: string;
  readonly sequenceNumber?: string;
  readonly atMs: number;
}

/** Entries looked at for pruning per recorded send (amortized cleanup of lapsed intervals). */
const PRUNE_STEP = 32;

let patchedWith: Clock | undefined;

/**
 * Makes the embedded fauxqs keep SQS FIFO's 5-minute deduplication interval on the stack's clock,
 * so `npm run admin -- clock --advance 6m` ends it as six minutes would in AWS (docs/local.md).
 *
 * fauxqs 1.9 keeps the interval itself (a toad-cache FifoMap with a 5-minute TTL on the machine's
 * clock, and at most 10,000 ids, past which the oldest is forgotten early — AWS has no such cap).
 * This replaces its queue class's two deduplication methods, in this process only, without editing
 * node_modules: the class is reached by its file (the package exports only `buildApp`). Visibility
 * timeouts and delays are not touched: they time real work (a processor invocation running now).
 */
export async function keepDeduplicationOnClock(clock: Clock): Promise<void> {
  if (patchedWith) {
    patchedWith = clock;
    return;
  }
  const storeUrl = new URL('../node_modules/fauxqs/dist/sqs/sqsStore.js', import.meta.url);
  const { SqsQueue } = (await import(storeUrl.href)) as { SqsQueue: { prototype: FauxqsQueuePrototype } };
  const proto = SqsQueue.prototype;
  if (typeof proto.checkDeduplication !== 'function' || typeof proto.recordDeduplication !== 'function')
    throw new Error('fauxqs changed: SqsQueue has no checkDeduplication/recordDeduplication to patch');
  patchedWith = clock;
  const firstSends = new WeakMap<object, Map<string, FirstSend>>();
  const sendsOf = (queue: object) => {
    const sends = firstSends.get(queue) ?? new Map<string, FirstSend>();
    firstSends.set(queue, sends);
    return sends;
  };
  const now = () => (patchedWith ?? Date.now)();

  proto.checkDeduplication = function checkDeduplication(this: object, dedupId: string) {
    const first = sendsOf(this).get(dedupId);
    if (!first || now() - first.atMs >= DEDUPLICATION_INTERVAL_MS) return { isDuplicate: false };
    return {
      isDuplicate: true,
      originalMessageId: first.messageId,
      originalSequenceNumber: first.sequenceNumber,
    };
  };
  proto.recordDeduplication = function recordDeduplication(
    this: object,
    dedupId: string,
    messageId: string,
    sequenceNumber?: string,
  ) {
    const sends = sendsOf(this);
    const atMs = now();
    // Oldest first (insertion order): drop a few that have lapsed, so the map stays bounded.
    let looked = 0;
    for (const [id, first] of sends) {
      if (looked++ >= PRUNE_STEP || atMs - first.atMs < DEDUPLICATION_INTERVAL_MS) break;
      sends.delete(id);
    }
    sends.delete(dedupId);
    sends.set(dedupId, { messageId, sequenceNumber, atMs });
  };
}
