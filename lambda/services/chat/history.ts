import {
  type ConversationRef,
  DEFAULT_CONVERSATION_TURNS,
  fitHistory,
  historyTokens,
} from '../../core/conversation';
import type { Identity } from '../../core/identity';
import { estimateTokens } from '../../core/tokens';
import type { ChatServiceDeps, SendMessageInput } from './deps';

/** A message's input as the decision counts it: its own tokens and its conversation's earlier turns. */
export interface CountedInput {
  readonly estimatedInputTokens: number;
  readonly conversation?: ConversationRef;
}

/**
 * Before the decision, the conversation's newest turns (one Query on the Requests table), kept
 * while they fit `CONVERSATION_TURNS` and the tier's `maxInputTokens`: the tokens reserved are
 * the prompt's and theirs (SPEC §9.3). The key holds the user id from the authorizer, so a
 * `conversationId` of another user's finds nothing of theirs. The reply runner reads the same
 * turns back by their sort keys.
 */
export async function countInput(
  deps: ChatServiceDeps,
  identity: Identity,
  input: SendMessageInput,
  nowMs: number,
): Promise<CountedInput> {
  const promptTokens = estimateTokens(input.message);
  const { conversations, settings } = deps;
  if (input.conversationId === undefined || !conversations) return { estimatedInputTokens: promptTokens };
  const maxTurns = settings.conversationTurns ?? DEFAULT_CONVERSATION_TURNS;
  const newest = await conversations.recentTurns(identity.userId, input.conversationId, maxTurns, nowMs);
  // The token's tier (an admin-set tier is known only to the decision's write).
  const cap = settings.maxInputTokens?.[identity.tier ?? 'free'];
  const turns = fitHistory(newest, maxTurns, promptTokens, cap);
  const first = turns[0];
  const last = turns[turns.length - 1];
  return {
    estimatedInputTokens: promptTokens + historyTokens(turns),
    conversation: {
      id: input.conversationId,
      atEpochMs: nowMs,
      ...(first && last ? { since: first.sk, until: last.sk } : {}),
    },
  };
}
