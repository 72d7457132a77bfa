import type { Identity } from '../../core/identity';
import type { StatusOptions } from '../../core/limiter/decision';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import { chunk, fitMessage, requestCancelled, splitChunkText } from '../../core/protocol';
import { statusMessage } from '../../core/status-message';
import type { OutgoingMessage } from '../ports';
import { globalWaitOf, notifyPositions } from '../shared/queue-notices';
import { dropContent } from '../shared/request-content';
import { type ChatServiceDeps, channelOf, type Refusal } from './deps';
import { notQueued } from './refusals';

/**
 * `cancel`: one of the user's requests. A waiting one leaves the line (`request_cancelled`); one
 * being answered, direct or replayed from the queue, is stopped: the cancel leaves a stop mark its
 * runner reads while the model streams (lambda/services/runner/stop-watch.ts), and the runner ends
 * it with `message_complete` `stopped: true` (the one final message of the request, so a cancel
 * that races the reply's end yields exactly one `message_complete`). Someone else's request id,
 * or one that has ended, is simply not found: the user's own item is all that is read.
 */
export async function cancel(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
  requestId: string,
): Promise<Refusal | { kind: 'cancelled' } | { kind: 'stopping' }> {
  const { limiter, now } = deps;
  const before = await limiter.view(identity.userId, identity.tier, now());
  const request = before.snap.queued[requestId];
  const index = before.snap.waiting.indexOf(requestId);
  if (!request || index < 0) return stop(deps, identity, requestId, before.snap);
  // The processor may admit it a moment before: then it is no longer waiting but being answered.
  const { removed } = await limiter.removeWaiting(identity.userId, requestId);
  if (!removed) {
    const fresh = await limiter.view(identity.userId, identity.tier, now());
    return stop(deps, identity, requestId, fresh.snap);
  }
  await dropContent(deps, identity.userId, request);
  const message = requestCancelled(requestId, now());
  await channelOf(deps, identity.userId, connectionId).deliver(message);
  if (request.connectionId !== connectionId) {
    await channelOf(deps, identity.userId, request.connectionId).deliver(message);
  }
  const after = await limiter.view(identity.userId, identity.tier, now(), { fresh: false });
  await notifyPositions(deps, identity.userId, after, index);
  return { kind: 'cancelled' };
}

/**
 * Stops a request of the user being answered: one with a pending reservation (admitted, not
 * settled) or the user's active queued request. One PutItem; nothing is sent here, the runner's
 * `message_complete` answers the cancel.
 */
async function stop(
  deps: ChatServiceDeps,
  identity: Identity,
  requestId: string,
  snap: LimiterSnapshot,
): Promise<Refusal | { kind: 'stopping' }> {
  const answered = snap.reservations[requestId] !== undefined || snap.active?.requestId === requestId;
  if (!answered) return notQueued(requestId);
  await deps.store.requestStop(identity.userId, requestId, deps.now());
  deps.log.info('stop requested', { userId: identity.userId, requestId });
  return { kind: 'stopping' };
}

/** `status`: the user's limits, usage and queue, consuming nothing. */
export async function status(deps: ChatServiceDeps, identity: Identity): Promise<OutgoingMessage> {
  const nowMs = deps.now();
  // The token's team claim rides on the options (SPEC §9.4), so the team in effect and its source
  // are the ones this connection's decisions get; a store that does not know teams ignores it.
  const withTeam: (StatusOptions & { readonly claimTeam?: string }) | undefined =
    identity.team === undefined ? undefined : { claimTeam: identity.team };
  const user = await deps.limiter.status(identity.userId, identity.tier, nowMs, withTeam);
  // The item status just read is this instance's belief: the view costs no call.
  const global =
    user.queued.length > 0 && deps.limiter.globalWait
      ? await globalWaitOf(
          deps,
          identity.userId,
          await deps.limiter.view(identity.userId, identity.tier, nowMs, { fresh: false }),
          nowMs,
        )
      : undefined;
  return statusMessage(user, nowMs, global);
}

/** `resume`: re-delivers finished replies kept while the user had no connection. */
export async function resume(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
): Promise<number> {
  const { store, sender, now } = deps;
  let delivered = 0;
  replies: for (const reply of await store.listReplies(identity.userId, now())) {
    for (const message of resumeMessages(reply.message, now())) {
      if ((await sender.send(connectionId, message)) === 'gone') break replies;
    }
    await store.deleteReply(identity.userId, reply.requestId);
    delivered++;
  }
  return delivered;
}

/**
 * What `resume` sends for a kept reply: the reply itself, or, when its text would not fit one
 * message, the text as `chunk`s first and then the `message_complete` without it.
 */
function resumeMessages(message: OutgoingMessage, nowMs: number): OutgoingMessage[] {
  if (message.type !== 'message_complete' || typeof message.text !== 'string') return [message];
  if (!('textOmitted' in fitMessage(message))) return [message];
  const chunks = splitChunkText(message.text).map((piece, index) =>
    chunk(message.requestId, index, piece, nowMs),
  );
  return [...chunks, message];
}
