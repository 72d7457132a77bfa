import { randomBytes, randomUUID } from 'node:crypto';
import type { ConversationRef } from '../../core/conversation';
import { describeError } from '../../core/errors';
import type { Identity } from '../../core/identity';
import type { AllowedDecision, DeniedDecision } from '../../core/limiter/decision';
import { limitWarning, messageAccepted } from '../../core/protocol';
import { notBeforeEpochMs } from '../../core/queue/eta';
import { type QueuedRequest, queueDeadlineEpochMs } from '../../core/queue/request';
import { OutcomeUnknownError } from '../errors';
import type { LimiterPort, SettleOutcome } from '../ports';
import { reportShadow } from '../shared/admission-report';
import { publishBudgetCrossings } from '../shared/budget-events';
import { releaseWakeUps } from '../shared/wake-ups';
import { type ChatServiceDeps, channelOf, type SendMessageInput, type SendOutcome } from './deps';
import { queueOrRefuse, waitSeconds } from './enqueue';
import { countInput } from './history';
import { modelUnavailable, notStarted, outcomeUnknown } from './refusals';

/**
 * `sendMessage`: one step in the user's lane decides the request and, if it is refused and may
 * wait, gives it its place in the queue. Admitted, it is handed to the reply runner; queued, it
 * gets its wake-up; refused, the refusal is returned for the handler to answer.
 */
export async function sendMessage(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
  input: SendMessageInput,
): Promise<SendOutcome> {
  const { settings, now } = deps;
  const requestId = input.requestId ?? (deps.newRequestId ?? randomUUID)();
  const nowMs = now();
  const { estimatedInputTokens, conversation } = await countInput(deps, identity, input, nowMs);
  const waiting: QueuedRequest = {
    requestId,
    connectionId,
    contentKey: randomBytes(9).toString('base64url'),
    maxTokens: input.maxTokens,
    model: input.model,
    claimTier: identity.tier,
    claimTeam: identity.team,
    estimatedInputTokens,
    enqueuedAtEpochMs: nowMs,
    expiresAtEpochMs: queueDeadlineEpochMs(nowMs, settings.maxQueueWaitSeconds),
  };
  let decided: Awaited<ReturnType<LimiterPort['decideOrQueue']>>;
  try {
    decided = await decideOrQueue(deps, identity, input, waiting, nowMs, conversation);
  } catch (err) {
    // Its write may have been counted: never "nothing was counted" (RATE_LIMIT_EXCEEDED), and
    // never a bare error the client cannot tie to its frame. `status` tells what the item holds.
    if (!(err instanceof OutcomeUnknownError)) throw err;
    deps.log.warn('the limiter could not tell whether a decision landed', {
      requestId,
      error: describeError(err),
    });
    return outcomeUnknown(requestId);
  }
  const { decision, slot } = decided;
  if (decision.allowed) {
    return answer(deps, identity, connectionId, requestId, input, decision, conversation);
  }
  if (decision.limit === 'model') return modelUnavailable(requestId, input.model);
  return queueOrRefuse(deps, identity, connectionId, requestId, decision, slot, nowMs);
}

/**
 * One step in the user's lane: the decision and, if it refuses, the place in the queue. The
 * position is fixed by that one write, before anything goes to SQS.
 */
function decideOrQueue(
  deps: ChatServiceDeps,
  identity: Identity,
  input: SendMessageInput,
  waiting: QueuedRequest,
  nowMs: number,
  conversation: ConversationRef | undefined,
): ReturnType<LimiterPort['decideOrQueue']> {
  const { settings } = deps;
  return deps.limiter.decideOrQueue(
    {
      userId: identity.userId,
      requestId: waiting.requestId,
      claimTier: identity.tier,
      claimTeam: identity.team,
      estimatedInputTokens: waiting.estimatedInputTokens,
      maxTokens: input.maxTokens,
      model: input.model,
      modelMaxOutputTokens: settings.modelMaxOutputTokens,
      queue: { mode: 'direct' },
    },
    nowMs,
    (denied) => {
      if (!mayWait(deps, denied, nowMs)) return undefined;
      // Held until a window's end: so is every request that queues behind it (their ETAs' floor).
      const notBefore = notBeforeEpochMs(denied, nowMs);
      return {
        request: notBefore === undefined ? waiting : { ...waiting, notBeforeEpochMs: notBefore },
        maxQueued: settings.maxQueuedPerUser,
        storeContent: () => storeContent(deps, identity.userId, waiting, { ...input, conversation }),
      };
    },
  );
}

/**
 * A request about to wait keeps its content in the Requests table, not in the user's limiter item
 * (issue 22): written before the enqueue's write, so a request in the line always has it. Not
 * written: not queued (the client is told the queue is unavailable), nothing else was written.
 */
async function storeContent(
  deps: ChatServiceDeps,
  userId: string,
  waiting: QueuedRequest,
  input: SendMessageInput & { readonly conversation?: ConversationRef },
): Promise<boolean> {
  try {
    await deps.store.putContent(userId, waiting, {
      message: input.message,
      conversationId: input.conversationId,
      conversation: input.conversation,
    });
    return true;
  } catch (err) {
    deps.log.error('could not store a waiting request', {
      requestId: waiting.requestId,
      error: describeError(err),
    });
    return false;
  }
}

/**
 * May a refused request wait in the queue? Not when queueing is off, the queue is full (as the
 * decision saw it, after this frame arrived: no write needed to say so), or the wait would be
 * longer than `MAX_QUEUE_WAIT`; never a duplicate or a refusal of an unavailable store; and not
 * when the user's item is busy (the queue lives in that same item: the write would fail too).
 */
function mayWait(deps: ChatServiceDeps, decision: DeniedDecision, nowMs: number): boolean {
  const { settings } = deps;
  if (['duplicate', 'unavailable', 'busy', 'model'].includes(decision.limit)) return false;
  if (settings.maxQueuedPerUser === 0 || decision.queued >= settings.maxQueuedPerUser) return false;
  return waitSeconds(decision, decision.queued + 1, nowMs) <= settings.maxQueueWaitSeconds;
}

/**
 * An admitted request: told `message_accepted`, then handed to the reply runner. The route
 * function never waits for the model (API Gateway gives a route 29 s at most).
 */
async function answer(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
  requestId: string,
  input: SendMessageInput,
  decision: AllowedDecision,
  conversation: ConversationRef | undefined,
): Promise<SendOutcome> {
  const { metrics, now } = deps;
  if (decision.failedOpen) metrics.count('LimiterFailOpen');
  if (decision.globalCostPercent !== undefined)
    metrics.count('GlobalCostPercent', decision.globalCostPercent);
  reportShadow(deps, identity.userId, requestId, decision);
  const channel = channelOf(deps, identity.userId, connectionId);
  await channel.deliver(messageAccepted(requestId, now()));
  for (const warning of decision.warnings ?? []) await channel.deliver(limitWarning(warning, now()));
  await publishBudgetCrossings(deps, identity.userId, requestId, decision.budgetCrossings, now());
  try {
    await deps.handoff.handOff({
      v: 1,
      userId: identity.userId,
      claimTier: identity.tier,
      claimTeam: identity.team,
      requestId,
      connectionId,
      prompt: input.message,
      reservation: decision.reservation,
      model: decision.model,
      fallbackFrom: decision.fallbackFrom,
      source: 'direct',
      inFlightUntilEpochMs: decision.inFlightUntilEpochMs,
      failedOpen: decision.failedOpen || undefined,
      conversation,
    });
    return { kind: 'handed-off', requestId };
  } catch (err) {
    return handOffFailed(deps, requestId, decision, err);
  }
}

/**
 * The Invoke failed. A definite failure (Lambda answered with an error: throttled
 * `TooManyRequestsException`, a refused payload, a missing function) started no runner. An
 * ambiguous one (a timeout, a connection reset: the event may have been queued, and the SDK may
 * even have sent it twice) may have started one that is running now. Either way the refund is
 * conditioned on no runner having claimed the request (issue 20, finding 15): the refund and the
 * runner's claim are each one conditional write on the reservation marker, so whichever lands
 * first wins — a refund first means any runner that starts later claims nothing and does
 * nothing (the client is told nothing was charged, truly); a claim first means the refund
 * changes nothing and the runner answers. A refund that cannot be written (the store is out
 * too) leaves the reservation to a runner's claim, or to its lease and the sweep.
 */
async function handOffFailed(
  deps: ChatServiceDeps,
  requestId: string,
  decision: AllowedDecision,
  err: unknown,
): Promise<SendOutcome> {
  const { log, metrics, limiter, now } = deps;
  log.error('reply hand-off failed', { requestId, error: describeError(err) });
  if (decision.failedOpen) {
    metrics.count('RequestsFailed');
    return notStarted(requestId);
  }
  let outcome: SettleOutcome;
  try {
    outcome = await limiter.reconcile(decision.reservation, { inputTokens: 0, outputTokens: 0 }, now(), {
      holder: { unclaimed: true },
    });
  } catch (refundErr) {
    log.error('could not refund a failed hand-off; its lease and the sweep end it', {
      requestId,
      error: describeError(refundErr),
    });
    return { kind: 'handed-off', requestId };
  }
  if (!outcome.applied) {
    // A runner claimed it (the Invoke did go through): it answers, and settles.
    log.warn('the hand-off failed but a runner holds the request', { requestId });
    return { kind: 'handed-off', requestId };
  }
  await releaseWakeUps(deps, outcome, requestId);
  metrics.count('RequestsFailed');
  return notStarted(requestId);
}
