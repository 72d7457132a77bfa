import { shardKey } from '../../../lambda/core/limiter/global/shards';
import { recordedShares } from '../../../lambda/core/limiter/global/share-record';
import type { QueueRecord } from '../../../lambda/services/replay-service';
import type { FaultSpec } from './faults';
import { type SweepHook, sweepHook } from './sweep';
import {
  connectionOf,
  type PendingEvent,
  RUNNER_ASYNC_RETRIES,
  RUNNER_MAX_EVENT_AGE_MS,
  type World,
} from './world';

/**
 * What the commands do to the world: each is one invocation of a function (with its fault and
 * its crash point), or the passage of time. They never look at the store to decide: the outcome
 * is whatever the real services do.
 */

/** A user's client sends a message (a new id, or reuses one whose request ended). */
export async function sendMessage(
  w: World,
  args: { user: number; instance: number; reuse?: number; fault?: FaultSpec; crashAfter?: number },
): Promise<void> {
  const userId = w.users[args.user % w.users.length]!;
  const ended = w.endedIdsOf(userId);
  const reused = args.reuse !== undefined && ended.length > 0;
  const requestId = reused ? ended[args.reuse! % ended.length]! : w.newRequestId();
  const r = w.record(requestId, userId);
  const instance = w.messageInstances[args.instance % w.messageInstances.length]!;
  w.trace(`${userId} sends ${requestId} via ${instance.name}`);
  const result = await instance.invoke(args.fault, args.crashAfter, () =>
    instance.chat!.sendMessage({ userId, tier: 'free' }, connectionOf(userId), {
      message: `hello ${requestId} from ${userId}`,
      requestId,
    }),
  );
  if (!result.ok) {
    // The handler (or API Gateway, for a crash) answers an error that names no request.
    r.ambiguous++;
    w.trace(`send ${requestId} threw: ${String(result.error)}`);
    return;
  }
  w.trace(
    `${requestId} → ${result.value.kind === 'refused' ? `refused ${result.value.code}: ${result.value.message}` : result.value.kind}`,
  );
  if (result.value.kind !== 'refused') return;
  // "Outcome unknown" is not an end (see World.deliver): the request may still hold what its write
  // left, and the sweep ends it, or nothing landed.
  if ((result.value.details as { outcomeUnknown?: unknown } | undefined)?.outcomeUnknown) {
    r.ambiguous++;
    w.trace(`${requestId} → outcome unknown: ${result.value.message}`);
    return;
  }
  w.terminal(r, `error:${result.value.code}`);
  // Commands run one at a time: with no fault in this invocation nothing contends for the item and
  // the store answers, so "busy" or "unavailable" is the limiter's own doing (SPEC §2: faults are
  // never permission, and nothing else is a fault).
  const calm = args.fault === undefined && args.crashAfter === undefined;
  const busy = result.value.code === 'RATE_LIMIT_EXCEEDED' && result.value.details?.limit === 'busy';
  if (calm && (busy || result.value.code === 'INTERNAL_ERROR')) {
    w.violation(`${requestId} refused with no fault injected: ${result.value.code} ${result.value.message}`);
  }
  // SPEC §3: an id may be reused once its request ended; "still in flight or waiting" is false then.
  if (reused && result.value.code === 'INVALID_REQUEST') {
    w.violation(`${requestId} reused after its request ended was refused: ${result.value.message}`);
  }
}

/**
 * Two sends of one user at once, on the two Message instances, in a fixed interleaving: the first
 * is held at its `held`-th SQS call while the second runs to its end; then that call times out.
 */
export async function sendPair(w: World, args: { user: number; held: number }): Promise<void> {
  let second: Promise<void> | undefined;
  w.whileHeld = () => {
    w.whileHeld = undefined;
    second = sendMessage(w, { user: args.user, instance: 1 });
    return second;
  };
  await sendMessage(w, {
    user: args.user,
    instance: 0,
    fault: { port: 'sqs', nth: args.held, kind: 'held-then-timeout' },
  });
  w.whileHeld = undefined;
  await second;
}

/**
 * A send whose first post to the client (its `request_queued`, when it queues) is slow: the
 * processor serves the user's next wake-up meanwhile, then the post goes out.
 */
export async function sendWhileProcessing(w: World, args: { user: number }): Promise<void> {
  w.whileHeld = async () => {
    w.whileHeld = undefined;
    await processNext(w);
  };
  await sendMessage(w, { user: args.user, instance: 0, fault: { port: 'sender', nth: 0, kind: 'held' } });
  w.whileHeld = undefined;
}

export async function cancel(w: World, args: { user: number; pick: number; fault?: FaultSpec }) {
  const userId = w.users[args.user % w.users.length]!;
  const open = [...w.requests.values()].filter(
    (r) => r.userId === userId && r.terminals.length < r.sends && r.positions[r.sends - 1]?.length,
  );
  if (open.length === 0) return;
  const target = open[args.pick % open.length]!;
  const instance = w.messageInstances[args.pick % w.messageInstances.length]!;
  w.trace(`${userId} cancels ${target.requestId}`);
  await instance.invoke(args.fault, undefined, () =>
    instance.chat!.cancel({ userId, tier: 'free' }, connectionOf(userId), target.requestId),
  );
}

/**
 * The processor's event source mapping receives the next visible wake-up (batch of one) and runs
 * the handler's logic: `done` deletes it; `retry` leaves it with the visibility it set; a throw
 * hides it 2 s (as `handlers/processor.ts`); a crash leaves it as it was.
 */
export async function processNext(
  w: World,
  args: { fault?: FaultSpec; crashAfter?: number } = {},
): Promise<boolean> {
  const got = w.queue.receive();
  if (!got) return false;
  const { message, receiptHandle } = got;
  const record: QueueRecord = {
    messageId: message.messageId,
    receiptHandle,
    body: message.body,
    groupId: message.groupId,
    deduplicationId: message.deduplicationId,
  };
  const p = w.processor;
  const startedAt = w.t;
  w.trace(`processor receives ${message.messageId} (receive ${message.receiveCount})`);
  const result = await p.invoke(args.fault, args.crashAfter, async () => {
    try {
      return await p.replay!.replay(record, () => 60_000 - (w.t - startedAt));
    } catch (err) {
      if (p.current.dead) throw err;
      await p.queue.defer(receiptHandle, 2000).catch(() => undefined);
      return 'retry' as const;
    }
  });
  if (result.ok && result.value === 'done') w.queue.delete(receiptHandle);
  return true;
}

/** Lambda runs one of the runner's pending asynchronous events (any order: they may be delayed). */
export async function runEvent(
  w: World,
  args: { pick: number; midStreamMs?: number; fault?: FaultSpec; crashAfter?: number },
): Promise<boolean> {
  ageOut(w);
  if (w.events.length === 0) return false;
  const [event] = w.events.splice(args.pick % w.events.length, 1) as [PendingEvent];
  const r = w.runnerInstance;
  const startedAt = w.t;
  w.midStreamMs = args.midStreamMs ?? 0;
  w.trace(`runner runs ${event.job.requestId} (event ${event.id}, attempt ${event.attempt})`);
  const result = await r.invoke(args.fault, args.crashAfter, () =>
    r.runner!.run(event.job, () => 900_000 - (w.t - startedAt)),
  );
  w.midStreamMs = 0;
  if (!result.ok && event.attempt <= RUNNER_ASYNC_RETRIES) {
    // Lambda retries a failed asynchronous invocation (after a minute or more).
    w.events.push({ ...event, attempt: event.attempt + 1 });
  } else if (!result.ok) {
    // Its last attempt failed: Lambda sends the record to the on-failure destination.
    w.failureRecords.push({
      job: event.job,
      condition: 'RetriesExhausted',
      invokeCount: event.attempt,
      dueAtMs: w.t,
    });
  }
  return true;
}

/**
 * Lambda sends the first due record to the runner's on-failure destination (`replyFailure`), which
 * runs `ReplyFailureService.settleDropped` (as `handlers/reply-failure.ts`). A failed invocation
 * of the destination is retried by Lambda a minute later.
 */
export async function runFailureRecord(w: World, args: { fault?: FaultSpec } = {}): Promise<boolean> {
  const at = w.failureRecords.findIndex((r) => r.dueAtMs <= w.t);
  if (at < 0) return false;
  const [record] = w.failureRecords.splice(at, 1);
  const s = w.sweeper;
  w.trace(`replyFailure gets ${record!.job.requestId} (${record!.condition})`);
  const result = await s.invoke(args.fault, undefined, () =>
    s.failures!.settleDropped({
      job: record!.job,
      condition: record!.condition,
      invokeCount: record!.invokeCount,
    }),
  );
  if (!result.ok) w.failureRecords.push({ ...record!, dueAtMs: w.t + 60_000 });
  else w.trace(`replyFailure: ${record!.job.requestId} ${result.value}`);
  return true;
}

/**
 * Events Lambda could not start within the maximum event age never run: their records go to the
 * on-failure destination at that age (first attempts and retries alike).
 */
function ageOut(w: World): void {
  for (let i = w.events.length - 1; i >= 0; i--) {
    const event = w.events[i]!;
    const dueAtMs = event.sentAtMs + RUNNER_MAX_EVENT_AGE_MS;
    if (dueAtMs > w.t) continue;
    w.events.splice(i, 1);
    w.trace(`event ${event.id} for ${event.job.requestId} too old to start (attempt ${event.attempt})`);
    w.failureRecords.push({
      job: event.job,
      condition: 'EventAgeExceeded',
      invokeCount: event.attempt - 1,
      dueAtMs,
    });
  }
}

/** Time passes; what Lambda does meanwhile on its own (records of events it gave up on) happens. */
export async function advance(w: World, ms: number): Promise<void> {
  w.advance(ms);
  w.trace(`clock +${ms} ms`);
  ageOut(w);
  const due = w.failureRecords.filter((r) => r.dueAtMs <= w.t).length;
  for (let i = 0; i < due; i++) await runFailureRecord(w);
}

export async function sweep(w: World): Promise<void> {
  const hook: SweepHook | undefined = await sweepHook();
  if (!hook) return;
  await hook(w);
}

/**
 * After the commands: no more faults; time goes on (to the next hidden wake-up's return, or 20
 * minutes when nothing is hidden: past every lease and deadline; a minute at a time when the
 * branch has a sweep, which runs each minute) while the processor serves every visible wake-up
 * and Lambda runs every pending event, until nothing is left to do.
 */
export async function drain(w: World, maxSimMs = 3 * 3600_000): Promise<void> {
  const until = w.t + maxSimMs;
  const maxStepMs = (await sweepHook()) ? 60_000 : 20 * 60_000;
  let idle = 0;
  while (w.t < until) {
    if (w.events.length > 0 && (await runEvent(w, { pick: 0 }))) continue;
    if (await processNext(w)) continue;
    if (await runFailureRecord(w)) continue;
    await sweep(w);
    const hidden = [
      ...w.queue.messages.map((m) => m.invisibleUntilMs),
      ...w.failureRecords.map((r) => r.dueAtMs),
    ].filter((t) => t > w.t);
    const open = hidden.length > 0 || (await anyUserOpen(w));
    idle = open ? 0 : idle + 1;
    if (idle >= 2) return;
    const next = hidden.length > 0 ? Math.min(...hidden) - w.t : maxStepMs;
    w.advance(Math.min(maxStepMs, Math.max(1000, next)));
  }
}

async function anyUserOpen(w: World): Promise<boolean> {
  for (const userId of w.users) {
    const s = await w.item(userId);
    if (s.active || s.waiting.length > 0 || Object.keys(s.reservations).length > 0) return true;
  }
  // A share a shard still records (`gr.<id>`, or `ga_<id>` of the first format) ends with its
  // release, or the sweep's after its lease.
  for (let k = 0; k < (w.global?.shards ?? 0); k++) {
    if (recordedShares(await w.raw(shardKey(k))).length > 0) return true;
  }
  return false;
}
