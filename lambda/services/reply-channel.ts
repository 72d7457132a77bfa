import type {
  ConnectionDirectory,
  ConnectionSender,
  LogPort,
  OutgoingMessage,
  ReplyStorePort,
} from './ports';

export type FinalDelivery = 'delivered' | 'stored';

/** A failed post (throttled, 5xx, too large) is tried once more after this pause. */
const RETRY_PAUSE_MS = 100;

/**
 * Where a request's messages go (SPEC §4): the connection that sent it; if that one is gone, the
 * user's other live connections; if none is left, a final reply is kept for an hour for `resume`.
 *
 * One channel serves one request, so after the first `GoneException` it stops posting to the dead
 * connection and follows the user instead. Any other failure of a post (429, 5xx, 413) is tried
 * once more; a chunk that still fails is skipped (the final message carries the whole text), and
 * never fails the request as if the model had failed.
 */
export class ReplyChannel {
  private target: string | undefined;
  /** Nobody was reachable: skip streaming chunks, but still try (then keep) the final reply. */
  private orphaned = false;

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
    },
  ) {
    this.target = connectionId;
  }

  /** Sends a message of this request; false when no connection of the user took it. */
  async deliver(message: OutgoingMessage): Promise<boolean> {
    if (this.orphaned) return false;
    return this.deliverNow(message);
  }

  private async deliverNow(message: OutgoingMessage, final = false): Promise<boolean> {
    if (this.target) {
      const result = await this.post(this.target, message);
      if (result === 'sent') return true;
      // A chunk that could not be posted is skipped; a final message looks for another way.
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
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return await this.deps.sender.send(connectionId, message);
      } catch (err) {
        this.deps.log?.warn('posting to a connection failed', {
          connectionId,
          type: message.type,
          error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        });
        if (attempt === 0) await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      }
    }
    return 'failed';
  }

  /** Sends the final reply of a request, or keeps it for `resume` when nobody took it. */
  async deliverFinal(requestId: string, message: OutgoingMessage): Promise<FinalDelivery> {
    this.orphaned = false;
    if (await this.deliverNow(message, true)) return 'delivered';
    await this.deps.store.saveReply(this.userId, requestId, message, this.deps.now());
    return 'stored';
  }
}
