import { estimateTokens } from './tokens';

/**
 * Conversations (SPEC §9.3): a `sendMessage` with a `conversationId` reaches the model with the
 * conversation's earlier turns. A turn is one exchange: the user's message and the reply it got
 * (a stopped reply as produced). Turns live in the Requests table, one item per turn, outside the
 * limiter item (adapters/conversation-store.ts), and end with their TTL.
 */
export interface ConversationTurn {
  readonly user: string;
  readonly assistant: string;
}

/** A stored turn: its sort key (the order of the conversation) and its text. */
export interface StoredTurn extends ConversationTurn {
  readonly sk: string;
}

/** `CONVERSATION_TURNS`: the earlier turns a message may carry. @default 20 */
export const DEFAULT_CONVERSATION_TURNS = 20;
/** `CONVERSATION_TTL_SECONDS`: how long a turn is kept after it was written. @default 86400 (24 h) */
export const DEFAULT_CONVERSATION_TTL_SECONDS = 86_400;

/**
 * The earlier turns one request carries, as the decision counted them: the conversation and the
 * sort keys of its oldest and newest turn (inclusive), so the reply runner reads the same turns.
 * `atEpochMs`: the request's decision time, which orders its own turn in the conversation.
 */
export interface ConversationRef {
  readonly id: string;
  readonly atEpochMs: number;
  readonly since?: string;
  readonly until?: string;
}

/** A turn's tokens as the input estimate counts them (the echo model counts them the same way). */
export function turnTokens(turn: ConversationTurn): number {
  return estimateTokens(turn.user) + estimateTokens(turn.assistant);
}

export function historyTokens(turns: readonly ConversationTurn[]): number {
  return turns.reduce((sum, turn) => sum + turnTokens(turn), 0);
}

/**
 * The newest turns that fit: at most `maxTurns`, and with the prompt within the tier's input cap
 * (`maxInputTokens`, unset: no cap). `newestFirst` comes from the store newest first; the answer
 * is oldest first, as the model reads them. A turn that does not fit ends the history there (an
 * older one is never taken over a newer one).
 */
export function fitHistory<T extends ConversationTurn>(
  newestFirst: readonly T[],
  maxTurns: number,
  promptTokens: number,
  maxInputTokens: number | undefined,
): T[] {
  const kept: T[] = [];
  let tokens = promptTokens;
  for (const turn of newestFirst.slice(0, maxTurns)) {
    tokens += turnTokens(turn);
    if (maxInputTokens !== undefined && tokens > maxInputTokens) break;
    kept.push(turn);
  }
  return kept.reverse();
}

/** A turn's sort key: the request's decision time (13 digits, so keys sort by time), then its id. */
export function turnSortKey(atEpochMs: number, requestId: string): string {
  return `turn#${String(Math.max(0, Math.floor(atEpochMs))).padStart(13, '0')}#${requestId}`;
}

/**
 * A conversation's partition key. The user id comes from the authorizer, never the client, so one
 * user never reads another's turns; a conversation id holds no `#` (protocol.ts), so the key is
 * unambiguous.
 */
export function conversationKey(userId: string, conversationId: string): string {
  return `conv#${userId}#${conversationId}`;
}
