import type { ConnectionDirectory, ConnectionSender, OutgoingMessage, RequestStorePort } from './ports';

export type FinalDelivery = 'delivered' | 'stored';

/**
 * Where a request's messages go (SPEC §4): the connection that sent it; if that one is gone, the
 * user's other live connections; if none is left, a final reply is kept for an hour for `resume`.
 *
 * One channel serves one request, so after the first `GoneException` it stops posting to the dead
 * connection and follows the user instead.
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
      readonly store: RequestStorePort;
      readonly now: () => number;
    },
  ) {
    this.target = connectionId;
  }

  /** Sends a message of this request; false when no connection of the user took it. */
  async deliver(message: OutgoingMessage): Promise<boolean> {
    if (this.orphaned) return false;
    return this.deliverNow(message);
  }

  private async deliverNow(message: OutgoingMessage): Promise<boolean> {
    if (this.target && (await this.deps.sender.send(this.target, message)) === 'sent') return true;
    this.target = undefined;
    for (const { connectionId } of await this.deps.directory.listByUser(this.userId, this.deps.now())) {
      if ((await this.deps.sender.send(connectionId, message)) === 'sent') {
        this.target = connectionId;
        return true;
      }
    }
    this.orphaned = true;
    return false;
  }

  /** Sends the final reply of a request, or keeps it for `resume` when nobody is connected. */
  async deliverFinal(requestId: string, message: OutgoingMessage): Promise<FinalDelivery> {
    if (await this.deliverNow(message)) return 'delivered';
    await this.deps.store.saveReply(this.userId, requestId, message, this.deps.now());
    return 'stored';
  }
}
