import type { Identity } from '../core/identity';
import { sendMessage } from './chat/admit';
import type { ChatServiceDeps, Refusal, SendMessageInput, SendOutcome } from './chat/deps';
import { cancel, resume, status } from './chat/requests';
import type { OutgoingMessage } from './ports';

export type { Identity } from '../core/identity';
/** Re-exported for the tests that import it from here; it lives in core. */
export { statusMessage } from '../core/status-message';
export type { ChatServiceDeps, Refusal, SendMessageInput, SendOutcome } from './chat/deps';

/**
 * The chat flows of the Message function: admit-and-stream, queue, cancel, status and resume.
 * Flow messages (accepted, chunks, complete, queued, cancelled) are sent from here; refusals are
 * returned as values for the handler to turn into protocol errors. Each flow lives in `chat/`:
 * `admit.ts` (decide, hand off), `enqueue.ts` (queue or refuse), `requests.ts` (cancel, status,
 * resume), `refusals.ts` (every refusal's wording).
 */
export class ChatService {
  constructor(private readonly deps: ChatServiceDeps) {}

  sendMessage(identity: Identity, connectionId: string, input: SendMessageInput): Promise<SendOutcome> {
    return sendMessage(this.deps, identity, connectionId, input);
  }

  /** Cancels a queued request of the user, or stops one being answered; another's id is not found. */
  cancel(
    identity: Identity,
    connectionId: string,
    requestId: string,
  ): Promise<Refusal | { kind: 'cancelled' } | { kind: 'stopping' }> {
    return cancel(this.deps, identity, connectionId, requestId);
  }

  /** The user's limits, usage and queue (`status`), consuming nothing. */
  status(identity: Identity): Promise<OutgoingMessage> {
    return status(this.deps, identity);
  }

  /** Re-delivers finished replies kept while the user had no connection (`resume`). */
  resume(identity: Identity, connectionId: string): Promise<number> {
    return resume(this.deps, identity, connectionId);
  }
}
