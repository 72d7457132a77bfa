import { Duration } from 'aws-cdk-lib';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { QUEUES, type QueueDefinition, type QueueKey } from '../../lambda/core/resources';

export interface RequestQueuesProps {
  /**
   * The processor's timeout: a queue's visibility timeout must be at least this (AWS recommends
   * six times a function's timeout for event sources). @default 100 s
   */
  readonly processorTimeout?: Duration;
}

/**
 * The FIFO request queue and its FIFO dead-letter queue, from `lambda/core/resources.ts`:
 * SQS-managed encryption, TLS enforced, per-group high-throughput mode (one group per user).
 */
export class RequestQueues extends Construct {
  public readonly queues: Readonly<Record<QueueKey, Queue>>;

  constructor(scope: Construct, id: string, props: RequestQueuesProps = {}) {
    super(scope, id);
    const processorSeconds = (props.processorTimeout ?? Duration.seconds(100)).toSeconds();
    const queues = {} as Record<QueueKey, Queue>;
    // Dead-letter queues first: the main queue's redrive policy points at its DLQ.
    const keys = (Object.keys(QUEUES) as QueueKey[]).sort(
      (a, b) => Number(hasDlq(QUEUES[a])) - Number(hasDlq(QUEUES[b])),
    );
    for (const key of keys) {
      const def: QueueDefinition = QUEUES[key];
      const dlq = def.deadLetterQueue ? queues[def.deadLetterQueue as QueueKey] : undefined;
      queues[key] = new Queue(this, def.id, {
        fifo: def.fifo || undefined,
        contentBasedDeduplication: def.contentBasedDeduplication,
        deduplicationScope: def.fifo ? DeduplicationScope.MESSAGE_GROUP : undefined,
        fifoThroughputLimit: def.fifo ? FifoThroughputLimit.PER_MESSAGE_GROUP_ID : undefined,
        visibilityTimeout: Duration.seconds(Math.max(def.visibilityTimeoutSeconds, processorSeconds * 6)),
        retentionPeriod: Duration.seconds(def.retentionSeconds),
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue:
          dlq && def.maxReceiveCount ? { queue: dlq, maxReceiveCount: def.maxReceiveCount } : undefined,
      });
    }
    this.queues = queues;
  }
}

function hasDlq(def: QueueDefinition): boolean {
  return def.deadLetterQueue !== undefined;
}
