import { randomUUID } from 'node:crypto';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import { SWEEP_GRACE_MS } from '../../lambda/core/queue/sweep';
import { AdminService } from '../../lambda/services/admin-service';
import { renderAudit } from '../../local/admin/admin-cli';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

describe('admin audit of one user', () => {
  let res: TestResources;
  let clock: number;
  let limiter: DynamoLimiter;
  let admin: AdminService;

  beforeEach(async () => {
    res = await createTestResources('audit');
    clock = T0;
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
    });
    const unused = async () => {
      throw new Error('not used by audit');
    };
    admin = new AdminService({
      limiter,
      health: { probeTable: unused, queueDepth: unused, breakerState: () => 'closed' },
      store: new ReplyStore(res.dynamo, res.tables.requests),
      sender: { send: async () => 'sent' },
      directory: { listByUser: async () => [] },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      now: () => clock,
      maxQueuedPerUser: 10,
    });
  });

  async function enqueue(userId: string, requestId: string): Promise<void> {
    const slot = await limiter.enqueue(
      {
        userId,
        requestId,
        connectionId: 'c1',
        contentKey: 'k',
        estimatedInputTokens: 1,
        enqueuedAtEpochMs: clock,
        expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
      },
      10,
      clock,
    );
    expect(slot.kind).toBe('queued');
  }

  /** Breaks the item by hand, as a lost write or a bug would. */
  async function removeAttributes(userId: string, ...names: string[]): Promise<void> {
    await res.dynamo.send(
      new UpdateItemCommand({
        TableName: res.tables.limits,
        Key: marshall({ pk: `user#${userId}` }),
        UpdateExpression: `REMOVE ${names.map((_, i) => `#a${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#a${i}`, n])),
      }),
    );
  }

  it('says ok for a user with requests waiting as they should', async () => {
    const user = `u-${randomUUID()}`;
    await enqueue(user, 'r1');
    await enqueue(user, 'r2');
    const report = await admin.audit(user);
    expect(report).toMatchObject({ ok: true, findings: [], state: { waiting: ['r1', 'r2'] } });
    expect(renderAudit(report)).toBe(`audit ${user}: ok`);
  });

  it('names each broken invariant: a waiting id without its data, a queue outside the sweep index, a head nobody served', async () => {
    const user = `u-${randomUUID()}`;
    await enqueue(user, 'r1');
    await enqueue(user, 'r2');
    await removeAttributes(user, 'q_r2', 'sw', 'sa');
    clock += 2 * SWEEP_GRACE_MS;
    const report = await admin.audit(user);
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => f.code).sort()).toEqual(
      ['head-not-served', 'not-swept', 'waiting-without-data'].sort(),
    );
    expect(renderAudit(report)).toContain('waiting-without-data: r2 waits at position 2 without its data');
  });

  it('finds an active request whose lease lapsed and one without its reservation', async () => {
    const user = `u-${randomUUID()}`;
    await enqueue(user, 'r1');
    const admitted = await limiter.decide(
      {
        userId: user,
        requestId: 'r1',
        estimatedInputTokens: 1,
        queue: {
          mode: 'replay',
          leaseUntilEpochMs: clock + 5_000,
          enqueuedAtEpochMs: clock,
          deadlineEpochMs: queueDeadlineEpochMs(clock, 900),
        },
      },
      clock,
    );
    expect(admitted.allowed).toBe(true);
    expect((await admin.audit(user)).ok).toBe(true);
    await removeAttributes(user, 'r_r1');
    clock += 5_000 + SWEEP_GRACE_MS;
    expect((await admin.audit(user)).findings.map((f) => f.code).sort()).toEqual([
      'active-without-reservation',
      'lapsed-active',
    ]);
  });
});
