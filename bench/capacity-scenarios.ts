import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoLimiter } from '../lambda/adapters/dynamo-limiter';
import type { Decision } from '../lambda/core/limiter/decision';
import { KEY_ATTR, userKey } from '../lambda/core/limiter/item/attributes';
import { parseTierLimits } from '../lambda/core/limiter/policy';
import { itemSize, per, sum, type Units } from './capacity-units';

const WAITING = 10;
export const REFUSALS = 300;
export const LINE = 100;
type Reservation = Extract<Decision, { allowed: true }>['reservation'];
export interface Measured {
  readonly units: Units;
  readonly decisions: number;
  readonly note: string;
}

/** A limiter and the meter on its client. */
export interface Made {
  readonly limiter: DynamoLimiter;
  readonly meter: { take(): Units };
}

const short = (userId: string) => ({
  userId,
  requestId: randomUUID(),
  estimatedInputTokens: 20,
  maxTokens: 200,
});
const usage = { inputTokens: 20, outputTokens: 100 };

/** `users` users, `each` short requests each, one after the other: decide, then settle. */
export async function decideAndSettle(made: Made, users: number, each: number) {
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
export async function longPromptsWaiting(made: Made, fresh: () => Made): Promise<Record<string, Measured>> {
  const userId = `long-${randomUUID().slice(0, 8)}`;
  const inFlight = await toLimit(made, userId);
  const measured = await longPromptsWaitingOn(made, fresh, userId);
  made.meter.take();
  for (const r of inFlight.slice(-5)) await made.limiter.reconcile(r, usage, Date.now());
  const settles = made.meter.take();
  return {
    ...measured,
    'a settle': { units: settles, decisions: 5, note: 'replies admitted before the prompts queued' },
  };
}

/** 10 prompts queued for a user the limits refuse now; then refusals by this and 5 other instances. */
async function longPromptsWaitingOn(
  made: Made,
  fresh: () => Made,
  userId: string,
): Promise<Record<string, Measured>> {
  made.meter.take();
  let queued = 0;
  for (let i = 0; i < WAITING; i++) {
    const nowMs = Date.now();
    const input = { ...short(userId), estimatedInputTokens: 8000 };
    const request = {
      requestId: input.requestId,
      connectionId: `conn-${randomUUID().slice(0, 12)}=`,
      // The prompt itself (8,000 four-byte characters, 32,000 bytes) is written once to the Requests table before
      // the enqueue (lambda/adapters/request-store.ts): about 32 WU once per request, not metered
      // here; the limiter item keeps only the key to it.
      contentKey: randomUUID().slice(0, 12),
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
  };
}

/**
 * Every per-user limit kind on (as test/integration/request-content.test.ts), one request in
 * flight: the issue 22 scenario (SPEC §9.2 "every per-user limit kind on and 10 requests of 8,000
 * characters waiting").
 */
export const ALL_KINDS = parseTierLimits({
  tiers: {
    free: {
      messagesPerMinute: 600,
      burst: 100,
      requestsInFlight: 1,
      tokensPerMinute: 10_000_000,
      hourlyMessages: 1_000,
      dailyMessages: 10_000,
      dailyTokens: 100_000_000,
      weeklyTokens: 100_000_000,
      monthlyTokens: 100_000_000,
      dailyCostUsd: 1_000,
      monthlyCostUsd: 1_000,
    },
  },
});

/**
 * The issue 22 user on {@link ALL_KINDS}: one request admitted and in flight, then 10 prompts of
 * 8,000 four-byte characters queued behind it (refused by requestsInFlight, queued by
 * `decideOrQueue`); 20 frames refused by the same instance, one by each of 5 other instances, the
 * reply in flight settled; and the user's item read (unmetered) at its largest, before the settle.
 */
export async function allKindsPromptsWaiting(
  made: Made,
  fresh: () => Made,
  readItem: (key: Record<string, { S: string }>) => Promise<Record<string, unknown> | undefined>,
): Promise<{ measured: Record<string, Measured>; itemBytes: number }> {
  const userId = `kinds-${randomUUID().slice(0, 8)}`;
  const first = await made.limiter.decide(short(userId), Date.now());
  if (!first.allowed) throw new Error('the first request of a fresh user was refused');
  const rest = await longPromptsWaitingOn(made, fresh, userId);
  const item = await readItem({ [KEY_ATTR]: { S: userKey(userId) } });
  made.meter.take();
  await made.limiter.reconcile(first.reservation, usage, Date.now());
  const settle = made.meter.take();
  return {
    measured: {
      ...rest,
      'a settle': {
        units: settle,
        decisions: 1,
        note: 'the reply in flight (the day first: enters the index)',
      },
    },
    itemBytes: item ? itemSize(item as never) : 0,
  };
}

/** Reads an item as stored (no meter), for its size. */
export const rawReader =
  (client: { send: (c: GetItemCommand) => Promise<{ Item?: Record<string, unknown> }> }, table: string) =>
  async (key: Record<string, { S: string }>) =>
    (await client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;

/** One user at its limit, then 300 frames at once, every one refused. */
export async function refusalBurst(made: Made): Promise<Measured> {
  const userId = `burst-${randomUUID().slice(0, 8)}`;
  await toLimit(made, userId);
  made.meter.take();
  const ds = await Promise.all(
    Array.from({ length: REFUSALS }, () => made.limiter.decide(short(userId), Date.now())),
  );
  const refused = ds.filter((d) => !d.allowed).length;
  return { units: made.meter.take(), decisions: REFUSALS, note: `${refused} refused` };
}

/** 100 users join the global line (AWS-length receipt handles), each writing its own line entry. */
export async function fillGlobalLine(made: Made): Promise<Units> {
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

/**
 * Requests in flight on the global shards: `count` users admitted once each and none settled, so
 * each shard's map of the requests holding a share grows to about count / shards entries (at most
 * SHARE_RECORDS_PER_SHARD: the stack has the shards its requests in flight need).
 */
export async function globalInFlight(made: Made, count: number, shards: number): Promise<Measured> {
  made.meter.take();
  let admitted = 0;
  let early: Units | undefined;
  for (let i = 0; i < count; i++) {
    const d = await made.limiter.decide(short(`flight-${randomUUID().slice(0, 8)}`), Date.now());
    if (d.allowed) admitted++;
    if (i === count - 101) early = made.meter.take();
  }
  const last = made.meter.take();
  const all = sum(early, last);
  return {
    units: all,
    decisions: count,
    note: `${admitted} admitted, none settled (shards' maps growing to ~${per(admitted, shards)} entries); the last 100: ${per(last.write, 100)} WU each`,
  };
}
