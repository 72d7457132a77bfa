import type { ConversationTurn, StoredTurn } from '../core/conversation';

/** A user's conversations (SPEC §9.3): their turns in the Requests table, beside kept replies. */
export interface ConversationPort {
  /** The newest `limit` turns still alive, newest first: one Query. */
  recentTurns(userId: string, conversationId: string, limit: number, nowMs: number): Promise<StoredTurn[]>;
  /** The turns from `since` to `until` (sort keys, inclusive), oldest first: one Query. */
  turnsBetween(userId: string, conversationId: string, since: string, until: string): Promise<StoredTurn[]>;
  /**
   * Writes one request's turn (its message and its reply) once its reply ended: one PutItem on a
   * key made of the request's decision time and id, so a retry writes the same item again.
   */
  putTurn(
    userId: string,
    conversationId: string,
    sk: string,
    turn: ConversationTurn,
    ttlEpochSeconds: number,
  ): Promise<void>;
}
