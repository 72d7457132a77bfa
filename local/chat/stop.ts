import type { EventEmitter } from 'node:events';
import type { ChatScreen } from './screen';

type Send = (payload: Record<string, unknown>) => void;

/** The replies streaming now: their first chunk is in, their `message_complete` is not. */
export function repliesStreaming(s: ChatScreen): string[] {
  return [...s.pending.keys()].filter((id) => s.started.has(id) && !s.completed.has(id));
}

/**
 * Stops the replies streaming now (SPEC §9.3): a `cancel` for each; the server stops the model and
 * each ends with `message_complete` `stopped: true`, shown as "(stopped · … tokens)". False when
 * no reply is streaming.
 */
export function stopReplies(s: ChatScreen, send: Send): boolean {
  const ids = repliesStreaming(s);
  for (const id of ids) send({ action: 'cancel', requestId: id });
  return ids.length > 0;
}

/** `/stop`: stops what streams, or says that nothing does. */
export function stopCommand(s: ChatScreen, send: Send): void {
  if (!stopReplies(s, send)) s.line(s.dim('  (no reply is streaming: nothing to stop)'));
}

/**
 * Ctrl-C (`SIGINT` on `interrupts`, the process in `npm run chat`): once while a reply streams, it
 * stops the reply and the session goes on; again before a new message, or with nothing streaming,
 * it quits (exit 130, as a shell reports Ctrl-C). Returns what undoes the listening.
 */
export function listenForInterrupts(
  s: ChatScreen,
  interrupts: EventEmitter | undefined,
  send: Send,
  quit: () => void,
): { readonly sent: () => void; readonly stop: () => void } {
  let stopping = false;
  const onInterrupt = () => {
    // Nothing is written here: a line would cut the reply streaming inline, which ends by itself
    // within a second with "(stopped · …)".
    if (!stopping && stopReplies(s, send)) {
      stopping = true;
      return;
    }
    quit();
  };
  interrupts?.on('SIGINT', onInterrupt);
  return {
    sent: () => {
      stopping = false;
    },
    stop: () => void interrupts?.off('SIGINT', onInterrupt),
  };
}
