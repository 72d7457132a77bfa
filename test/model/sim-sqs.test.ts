import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestResources } from '../support/emulators';
import { DEDUP_WINDOW_MS, SimFifoQueue } from './harness/sim-sqs';

/**
 * The harness's SQS FIFO model against the rules AWS documents, and against fauxqs for the rules
 * that do not need time to pass (fauxqs runs on wall time): the same steps, the same answers.
 */
interface FifoDriver {
  send(group: string, dedup: string, body: string): Promise<void>;
  /** The body and handle of the next message handed out, or undefined. */
  receive(): Promise<{ body: string; handle: string; receiveCount: number } | undefined>;
  changeVisibility(handle: string, seconds: number): Promise<void>;
  delete(handle: string): Promise<void>;
}

function simDriver(q: SimFifoQueue): FifoDriver {
  return {
    send: async (g, d, b) => void q.send(g, d, b),
    receive: async () => {
      const got = q.receive();
      return (
        got && { body: got.message.body, handle: got.receiptHandle, receiveCount: got.message.receiveCount }
      );
    },
    changeVisibility: async (h, s) => q.changeVisibility(h, s * 1000),
    delete: async (h) => q.delete(h),
  };
}

function fauxqsDriver(sqs: SQSClient, url: string): FifoDriver {
  return {
    send: async (g, d, b) =>
      void (await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: b,
          MessageGroupId: g,
          MessageDeduplicationId: d,
        }),
      )),
    receive: async () => {
      const { Messages } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 1,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          WaitTimeSeconds: 0,
        }),
      );
      const m = Messages?.[0];
      return (
        m && {
          body: m.Body!,
          handle: m.ReceiptHandle!,
          receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
        }
      );
    },
    changeVisibility: async (h, s) =>
      void (await sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: s }),
      )),
    delete: async (h) => void (await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: h }))),
  };
}

/** Rules that need no time to pass, each run on both queues. */
const SHARED_RULES: Record<string, (q: FifoDriver, tag: string) => Promise<void>> = {
  'a deduplication id seen within 5 minutes is accepted and dropped, even after the first was consumed':
    async (q, tag) => {
      await q.send(`g-${tag}`, `d-${tag}`, 'first');
      const got = await q.receive();
      expect(got?.body).toBe('first');
      await q.delete(got!.handle);
      await q.send(`g-${tag}`, `d-${tag}`, 'second');
      expect(await q.receive()).toBeUndefined();
    },
  'while a message of a group is in flight, nothing more of that group is handed out, in order after it':
    async (q, tag) => {
      await q.send(`g-${tag}`, `a-${tag}`, 'one');
      await q.send(`g-${tag}`, `b-${tag}`, 'two');
      const first = await q.receive();
      expect(first?.body).toBe('one');
      expect(await q.receive()).toBeUndefined();
      await q.delete(first!.handle);
      expect((await q.receive())?.body).toBe('two');
    },
  'a visibility of 0 hands the message out again at once, and every receive counts': async (q, tag) => {
    await q.send(`g-${tag}`, `a-${tag}`, 'again');
    const first = await q.receive();
    expect(first?.receiveCount).toBe(1);
    await q.changeVisibility(first!.handle, 0);
    const second = await q.receive();
    expect(second?.body).toBe('again');
    expect(second?.receiveCount).toBe(2);
  },
};

describe('the simulated SQS FIFO queue of the harness', () => {
  let sqs: SQSClient;
  let url: string;
  beforeAll(async () => {
    const res = await createTestResources('simsqs');
    sqs = res.sqs;
    url = res.queues.dlq.url; // a FIFO queue without redrive, so nothing moves away under the test
  });

  for (const [rule, check] of Object.entries(SHARED_RULES)) {
    it(`${rule} (the model)`, async () => {
      let now = Date.UTC(2026, 2, 10);
      await check(simDriver(new SimFifoQueue(() => now++)), 'sim');
    });
    it(`${rule} (fauxqs, the same steps)`, async () => {
      await check(fauxqsDriver(sqs, url), `${rule.length}-${Date.now()}`);
    });
  }

  it('forgets a deduplication id after 5 minutes (the model; fauxqs cannot move its clock)', () => {
    let now = Date.UTC(2026, 2, 10);
    const q = new SimFifoQueue(() => now);
    expect(q.send('g', 'd', 'first').accepted).toBe(true);
    now += DEDUP_WINDOW_MS - 1;
    expect(q.send('g', 'd', 'again').accepted).toBe(false);
    now += 1;
    expect(q.send('g', 'd', 'later').accepted).toBe(true);
  });

  it('brings a message back when its visibility timeout ends, and honours ChangeMessageVisibility from the call', () => {
    let now = Date.UTC(2026, 2, 10);
    const q = new SimFifoQueue(() => now, { visibilityTimeoutMs: 120_000, maxReceiveCount: 500 });
    q.send('g', 'd', 'body');
    const got = q.receive()!;
    now += 119_999;
    expect(q.receive()).toBeUndefined();
    now += 1;
    const again = q.receive()!;
    expect(again.message.receiveCount).toBe(2);
    q.changeVisibility(again.receiptHandle, 30_000);
    now += 29_999;
    expect(q.receive()).toBeUndefined();
    now += 1;
    expect(q.receive()).toBeDefined();
    // Only the latest receive's handle acts on the message.
    q.delete(got.receiptHandle);
    expect(q.messages).toHaveLength(1);
  });

  it('answers MessageNotInflight to a visibility change of a message not in flight', () => {
    let now = Date.UTC(2026, 2, 10);
    const q = new SimFifoQueue(() => now);
    q.send('g', 'd', 'body');
    const got = q.receive()!;
    now += 120_000;
    expect(() => q.changeVisibility(got.receiptHandle, 0)).toThrow(/not in flight/);
  });

  it('moves a message to the dead-letter queue instead of a receive past maxReceiveCount', () => {
    let now = Date.UTC(2026, 2, 10);
    const q = new SimFifoQueue(() => now, { visibilityTimeoutMs: 1000, maxReceiveCount: 3 });
    q.send('g', 'd', 'body');
    for (let i = 1; i <= 3; i++) {
      expect(q.receive()?.message.receiveCount).toBe(i);
      now += 1000;
    }
    expect(q.receive()).toBeUndefined();
    expect(q.deadLetters.map((m) => m.body)).toEqual(['body']);
  });
});
