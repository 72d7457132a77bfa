import { setTimeout as pause } from 'node:timers/promises';
import { describeError } from '../core/errors';
import { chunk, fitMessage, splitChunkText } from '../core/protocol';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LogPort,
  OutgoingMessage,
  ReplyStorePort,
} from './ports';

export type FinalDelivery = 'delivered' | 'stored';

/** Tries of one post that failed (throttled, 5xx) before it counts as lost. */
export const POST_ATTEMPTS = 5;
/** Backoff before the second try, doubled for each next one, jittered (issue 20, finding 17). */
const POST_BACKOFF_BASE_MS = 100;
const POST_BACKOFF_CAP_MS = 2000;
/**
 * Reply text is posted at most once per this interval (the first text at once): a model that
 * streams a token every few milliseconds costs one `PostToConnection` per interval, not per token.
 */
export const COALESCE_MS = 100;
/** Text waiting this long in bytes goes out without waiting for the interval. */
export const COALESCE_BYTES = 16 * 1024;

/**
 * Where a request's messages go (SPEC §4): the connection that sent it; if that one is gone, the
 * user's other live connections; if none is left, a final reply is kept for an hour for `resume`.
 *
 * One channel serves one request, so after the first `GoneException` it stops posting to the dead
 * connection and follows the user instead. Any other failure of a post (429, 5xx) is tried again
 * with exponential backoff and jitter, {@link POST_ATTEMPTS} times in all. Reply text is coalesced
 * ({@link streamText}) into few `chunk` posts within the 32 KB frame. A chunk that is still lost
 * is never a silent gap: no more chunks follow it, and the final message carries the whole text —
 * or, when the text is too long for it, the whole reply is kept for `resume` and the final message
 * says so (`resume: true`). A lost chunk never fails the request as if the model had failed.
 */
export class ReplyChannel {
  private target: string | undefined;
  /** Nobody was reachable: skip streaming chunks, but still try (then keep) the final reply. */
  private orphaned = false;
  /** Reply text not posted yet, and the next chunk's index. */
  private buffered = '';
  private nextIndex = 0;
  private lastTextPostAtMs = Number.NEGATIVE_INFINITY;
  /** A chunk of this reply did not reach the user: the final message must make up for it. */
  private lostChunk = false;

  constructor(
    private readonly userId: string,
    connectionId: string,
    private readonly deps: {
      readonly sender: ConnectionSender;
      readonly directory: ConnectionDirectory;
      readonly store: ReplyStorePort;
      readonly now: () => number;
      /** Where failed posts are reported (ids and the error, never the message). */
      readonly log?: Pick<LogPort, 'warn'>;
      /** The pause between tries of a post. @default `setTimeout` of node:timers/promises */
      readonly sleep?: (ms: number) => Promise<void>;
      /** Jitter of that pause. @default Math.random */
      readonly random?: () => number;
    },
  ) {
    this.target = connectionId;
  }

  /** Did a chunk of this reply fail to reach the user? */
  get chunkLost(): boolean {
    return this.lostChunk;
  }

  /** Sends a message of this request; false when no connection of the user took it. */
  async deliver(message: OutgoingMessage): Promise<boolean> {
    if (this.orphaned) return false;
    return this.deliverNow(message);
  }

  /**
   * Streams reply text as `chunk`s, coalesced: posted now if the last text post was at least
   * {@link COALESCE_MS} ago (or {@link COALESCE_BYTES} are waiting), else kept for the next post;
   * {@link flushText} sends what is left. Text held back waits at most for the model's next delta
   * or its end (no timer runs beside the model). After a lost chunk nothing more is streamed.
   */
  async streamText(requestId: string, text: string): Promise<void> {
    this.buffered += text;
    const due =
      this.deps.now() - this.lastTextPostAtMs >= COALESCE_MS ||
      Buffer.byteLength(this.buffered) >= COALESCE_BYTES;
    if (due) await this.flushText(requestId);
  }

  /** Posts the text still waiting (each piece within one 32 KB frame). */
  async flushText(requestId: string): Promise<void> {
    if (this.buffered === '') return;
    const text = this.buffered;
    this.buffered = '';
    this.lastTextPostAtMs = this.deps.now();
    if (this.lostChunk || this.orphaned) {
      this.lostChunk = true;
      return;
    }
    for (const piece of splitChunkText(text)) {
      if (!(await this.deliverNow(chunk(requestId, this.nextIndex++, piece, this.deps.now())))) {
        this.lostChunk = true;
        return;
      }
    }
  }

  private async deliverNow(message: OutgoingMessage, final = false): Promise<boolean> {
    if (this.target) {
      const result = await this.post(this.target, message);
      if (result === 'sent') return true;
      // A chunk that could not be posted is lost (the final message makes up for it); a final
      // message looks for another way.
      if (result === 'failed' && !final) return false;
    }
    this.target = undefined;
    for (const { connectionId } of await this.deps.directory.listByUser(this.userId, this.deps.now())) {
      if ((await this.post(connectionId, message)) === 'sent') {
        this.target = connectionId;
        return true;
      }
    }
    this.orphaned = true;
    return false;
  }

  private async post(connectionId: string, message: OutgoingMessage): Promise<'sent' | 'gone' | 'failed'> {
    const sleep = this.deps.sleep ?? ((ms: number) => pause(ms));
    const random = this.deps.random ?? Math.random;
    for (let attempt = 1; attempt <= POST_ATTEMPTS; attempt++) {
      try {
        return await this.deps.sender.send(connectionId, message);
      } catch (err) {
        this.deps.log?.warn('posting to a connection failed', {
          connectionId,
          type: message.type,
          attempt,
          error: describeError(err),
        });
        if (attempt === POST_ATTEMPTS) break;
        // Exponential backoff with equal jitter: throttled posts of many runners spread out.
        const ceiling = Math.min(POST_BACKOFF_CAP_MS, POST_BACKOFF_BASE_MS * 2 ** (attempt - 1));
        await sleep(ceiling / 2 + random() * (ceiling / 2));
      }
    }
    return 'failed';
  }

  /**
   * Sends the final reply of a request, or keeps it for `resume` when nobody took it. After a lost
   * chunk, a `message_complete` too long to carry its text is kept for `resume` first and goes out
   * with `resume: true`, so the client fetches the whole reply instead of showing a gap.
   */
  async deliverFinal(requestId: string, message: OutgoingMessage): Promise<FinalDelivery> {
    this.orphaned = false;
    let final = message;
    if (this.lostChunk && message.type === 'message_complete' && 'textOmitted' in fitMessage(message)) {
      await this.deps.store.saveReply(this.userId, requestId, message, this.deps.now());
      final = { ...message, resume: true };
    }
    if (await this.deliverNow(final, true)) return 'delivered';
    await this.deps.store.saveReply(this.userId, requestId, message, this.deps.now());
    return 'stored';
  }
}
