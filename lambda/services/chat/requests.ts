import type { Identity } from '../../core/identity';
import { chunk, fitMessage, requestCancelled, splitChunkText } from '../../core/protocol';
import { statusMessage } from '../../core/status-message';
import type { OutgoingMessage } from '../ports';
import { globalWaitOf, notifyPositions } from '../shared/queue-notices';
import { dropContent } from '../shared/request-content';
import { type ChatServiceDeps, channelOf, type Refusal } from './deps';
import { notQueued } from './refusals';

/** `cancel`: one of the user's queued requests; someone else's request id is simply not found. */
export async function cancel(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
  requestId: string,
): Promise<Refusal | { kind: 'cancelled' }> {
  const { limiter, now } = deps;
  const before = await limiter.view(identity.userId, identity.tier, now());
  const request = before.snap.queued[requestId];
  const index = before.snap.waiting.indexOf(requestId);
  if (!request || index < 0) return notQueued(requestId);
  // The processor may admit it a moment before: then it is no longer waiting, and not cancelled.
  const { removed } = await limiter.removeWaiting(identity.userId, requestId);
  if (!removed) return notQueued(requestId);
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

/** `status`: the user's limits, usage and queue, consuming nothing. */
export async function status(deps: ChatServiceDeps, identity: Identity): Promise<OutgoingMessage> {
  const nowMs = deps.now();
  const user = await deps.limiter.status(identity.userId, identity.tier, nowMs);
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
