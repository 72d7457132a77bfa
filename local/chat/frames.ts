import { isNewerPlace } from '../../lambda/core/queue/places';
import { describeLimitWarning, humanizeLimitNames, replyMeta } from '../limit-names';
import type { ChatScreen } from './screen';
import { describeRefusal, queueVerb, renderLimits } from './words';

type Json = Record<string, unknown>;

/** What a frame may make the client do besides writing. */
export interface FrameActions {
  send(payload: Json): void;
  askStatus(): void;
  /** A `status` answer was shown (input starts reading after the first). */
  statusShown(): void;
}

const TERMINAL = new Set(['message_complete', 'request_cancelled', 'request_expired', 'request_failed']);

/** One server frame on screen, and what it ends. */
export function showFrame(s: ChatScreen, msg: Json, act: FrameActions): void {
  const id = typeof msg.requestId === 'string' ? msg.requestId : undefined;
  switch (msg.type) {
    case 'message_accepted':
      break;
    case 'queue_processing_started':
      if (id && s.pending.get(id)) s.pending.get(id)!.queue = undefined;
      if (id) s.outOfLine.add(id);
      s.line(s.dim(`${s.name(id)}: your turn — processing`));
      break;
    case 'chunk':
      showChunk(s, id!, msg);
      break;
    case 'message_complete':
      showComplete(s, id!, msg, act);
      break;
    case 'request_queued':
    case 'queue_position':
      showPlace(s, id, msg);
      break;
    default:
      showNotice(s, id, msg, act);
  }
  if (id && TERMINAL.has(String(msg.type))) {
    s.pending.delete(id);
    s.outOfLine.add(id);
  }
  if (msg.type === 'error' && id) s.pending.delete(id);
}

/** Frames that are one line each: ends, status, warnings, refusals. */
function showNotice(s: ChatScreen, id: string | undefined, msg: Json, act: FrameActions): void {
  if (msg.type !== 'status') {
    s.line(noticeLine(s, id, msg));
    return;
  }
  s.statusAsked = Math.max(0, s.statusAsked - 1);
  s.line(s.dim(renderLimits(msg)));
  act.statusShown();
}

function noticeLine(s: ChatScreen, id: string | undefined, msg: Json): string {
  switch (msg.type) {
    case 'request_cancelled':
      return s.paint('33', `${s.name(id)} cancelled`);
    case 'request_expired':
      return s.paint('31', `${s.name(id)} expired: it waited too long in the queue`);
    case 'request_failed':
      return s.paint(
        '31',
        `${s.name(id)} failed: ${humanizeLimitNames(String(msg.message ?? ''))} (${msg.code})`,
      );
    case 'pong':
      return s.dim('pong');
    case 'limit_warning': {
      const warning = describeLimitWarning(msg as unknown as Parameters<typeof describeLimitWarning>[0]);
      return s.paint('33', `warning: ${warning}`);
    }
    case 'error':
      return s.paint('31', `refused${id ? ` ${s.name(id)}` : ''}: ${describeRefusal(msg)}`);
    default:
      return s.dim(JSON.stringify(msg));
  }
}

/**
 * Stream inline when this is the only request in flight (a conversation turn); with several at
 * once their chunks would interleave, so each prints whole when complete. A reply is streamed from
 * its first chunk or not at all: never from the middle.
 */
function showChunk(s: ChatScreen, id: string, msg: Json): void {
  const first = !s.started.has(id);
  s.started.add(id);
  if (first && s.streaming === undefined && s.pending.size === 1 && !s.completed.has(id))
    s.startStreaming(id);
  if (s.streaming === id) s.write(String(msg.text ?? ''));
}

function showComplete(s: ChatScreen, id: string, msg: Json, act: FrameActions): void {
  // Some chunks were lost on the way and the text is not here: the whole reply was kept,
  // and `resume` delivers it (its chunks, then its message_complete).
  if (msg.resume === true && !s.completed.has(id)) {
    s.endStreaming(id);
    s.line(s.dim(`  (${s.name(id)}: part of the reply was lost on the way; fetching it whole)`));
    s.started.delete(id);
    act.send({ action: 'resume' });
    return;
  }
  // A processor that crashed right after sending may send a reply twice: show it once.
  if (s.completed.has(id)) return;
  const usage = (msg.usage ?? {}) as Json;
  s.completed.add(id);
  if (!s.endStreaming(id)) s.line(`${s.paint('36', 'assistant> ')}${String(msg.text ?? '')}`);
  s.line(s.dim(`  (${replyMeta({ ...msg, usage } as Parameters<typeof replyMeta>[0])})`));
  // What is left, once the last reply in flight is in: one line per burst, not per reply; from
  // the limits the reply carries (its settle's), else from a status asked for.
  if ([...s.pending.keys()].every((other) => other === id)) {
    if (Array.isArray(msg.limits)) s.line(s.dim(renderLimits(msg)));
    else act.askStatus();
  }
}

function showPlace(s: ChatScreen, id: string | undefined, msg: Json): void {
  const position = Number(msg.position);
  const eta = Number(msg.estimatedWaitTime);
  const entry = id ? s.pending.get(id) : undefined;
  const queueVersion = typeof msg.queueVersion === 'number' ? msg.queueVersion : undefined;
  // A place computed before the request left the line (its processing started, or it
  // ended) that arrives after: old news, whatever its version (finding 13).
  if (id && s.outOfLine.has(id)) return;
  // A notice computed from an older version of the list crossed a newer one: old news.
  if (!isNewerPlace(entry?.queue, { position, queueVersion })) return;
  const verb = queueVerb(msg.type === 'request_queued' ? undefined : entry?.queue?.position, position);
  if (entry)
    entry.queue = {
      position,
      queueVersion,
      total: Number(msg.totalInQueue),
      etaAtMs: Date.now() + eta * 1000,
    };
  // A move or a new estimate: the live line shows it, one line for all the waiting requests
  // (issue 23: 5 queued printed 15 "moved up" lines). Without one (piped output), say it.
  if (verb !== 'queued' && s.color) return;
  const cancel = msg.type === 'request_queued' ? `  (/cancel ${id})` : '';
  const said = verb === 'still' ? 'still' : `${verb}:`;
  s.line(
    s.paint(
      '33',
      `${s.name(id)} ${said} #${position} in line (${msg.totalInQueue} in queue), ~${eta} s${cancel}`,
    ),
  );
  // Why it waits, in the server's sentence, as is (SPEC §9.3).
  const reason = (msg.details as Json | undefined)?.reason;
  if (msg.type === 'request_queued' && typeof reason === 'string') s.line(s.dim(`  ${reason}`));
}
