import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { isNewerPlace } from '../../lambda/core/queue/places';
import { isConnectionRefused } from '../discovery';
import { describeLimitWarning, humanizeLimitNames, limitName, replyMeta } from '../limit-names';
import { LiveLine, type TerminalOutput } from './live-line';

export interface TerminalClientOptions {
  /** `ws://localhost:3001/local` or a deployed `wss://…/STAGE` URL, without the token. */
  readonly url: string;
  readonly token: string;
  readonly input: Readable;
  readonly output: Writable;
  /** ANSI colours and the live status line. @default output.isTTY */
  readonly color?: boolean;
  /** Exit once the input ends and every request has ended. @default true */
  readonly exitWhenDone?: boolean;
  /** Said instead of the bare error when nothing listens at `url` (where it came from, what to set). */
  readonly unreachable?: string;
}

type Json = Record<string, unknown>;

/** Requests still waiting for a terminal message, and what the queue said about each. */
interface Pending {
  readonly text: string;
  queue?: { position: number; queueVersion?: number; total: number; etaAtMs: number };
}

/** How a request is named on screen: the start of its text, which is what the person typed. */
const NAME_CHARS = 32;

const TERMINAL = new Set(['message_complete', 'request_cancelled', 'request_expired', 'request_failed']);

/**
 * The terminal chat client behind `npm run chat`: each input line is a message (or a `/command`),
 * replies stream in as they come, refusals say why and when to retry, queued requests show their
 * place in line and a counting-down wait, and a status line shows what is left of the limits.
 * Resolves with the process exit code.
 */
export function runTerminalClient(options: TerminalClientOptions): Promise<number> {
  const out = options.output as TerminalOutput;
  const color = options.color ?? Boolean((out as Writable & { isTTY?: boolean }).isTTY);
  const paint = (code: string, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const dim = (t: string) => paint('2', t);
  const pending = new Map<string, Pending>();
  /** The text of every request sent in this session, to name it in whatever comes back. */
  const texts = new Map<string, string>();
  let streaming: string | undefined;
  let inputEnded = false;
  let startInput: (() => void) | undefined;
  const completed = new Set<string>();
  /** Requests whose reply has started to arrive, streamed or not. */
  const started = new Set<string>();
  /** Requests that left the line (processing started, or ended): a place told for them is late. */
  const outOfLine = new Set<string>();
  const live = new LiveLine(out, (text) => paint('33', text));

  const write = (text: string) => out.write(text);
  const line = (text: string) => {
    live.clear();
    if (streaming) write('\n');
    streaming = undefined;
    write(`${text}\n`);
  };
  const name = (id: string | undefined) => {
    const text = id === undefined ? undefined : texts.get(id);
    if (text === undefined) return id === undefined ? 'request' : `request ${id}`;
    const chars = [...text];
    return JSON.stringify(chars.length > NAME_CHARS ? `${chars.slice(0, NAME_CHARS - 1).join('')}…` : text);
  };
  /** The live queue line: this session's waiting requests, soonest first, as wide as the window. */
  const drawQueue = () => {
    if (!color || streaming) return;
    const queued = [...pending.values()].flatMap((p) => (p.queue ? [p.queue] : []));
    if (queued.length === 0) return live.clear();
    const parts = queued
      .sort((a, b) => a.position - b.position)
      .map((q) => `#${q.position} ~${Math.max(0, Math.ceil((q.etaAtMs - Date.now()) / 1000))} s`);
    live.draw(`queue: ${queued.length} waiting · ${parts.join(' · ')}`);
  };

  return new Promise((resolve) => {
    const ws = new WebSocket(
      `${options.url}${options.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(options.token)}`,
    );
    let exitCode = 0;
    const finish = (code: number) => {
      exitCode = code;
      clearInterval(ticker);
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    };
    /** `status` asked for and not answered yet: the last one is shown before exiting. */
    let statusAsked = 0;
    const maybeDone = () => {
      if (inputEnded && pending.size === 0 && statusAsked === 0 && options.exitWhenDone !== false) finish(0);
    };
    const send = (payload: Json) => ws.send(JSON.stringify(payload));
    const askStatus = () => {
      statusAsked++;
      send({ action: 'status' });
    };

    const ticker = setInterval(drawQueue, 500);

    ws.on('unexpected-response', (_req, res) => {
      line(paint('31', `connection refused: HTTP ${res.statusCode}${hint(res.statusCode)}`));
      finish(1);
    });
    ws.on('error', (err) => {
      const unreachable = options.unreachable && isConnectionRefused(err) ? options.unreachable : undefined;
      line(paint('31', unreachable ?? `connection error: ${err.message}`));
      finish(1);
    });
    ws.on('close', (code) => {
      clearInterval(ticker);
      live.clear();
      if (code !== 1000 && exitCode === 0 && !(inputEnded && pending.size === 0)) {
        line(paint('31', `connection closed (${code})`));
        exitCode = 1;
      }
      resolve(exitCode);
    });

    ws.on('open', () => {
      line(dim(`connected to ${options.url} — type a message, or /status /cancel ID /resume /quit`));
      askStatus();
      // Read input once the first status is shown (or after a second), so it comes first.
      startInput = () => {
        startInput = undefined;
        const rl = createInterface({ input: options.input, terminal: false });
        rl.on('line', (raw) => {
          const text = raw.trim();
          if (!text) return;
          if (text === '/quit') return finish(0);
          if (text === '/status') return askStatus();
          if (text === '/resume') return send({ action: 'resume' });
          if (text.startsWith('/cancel'))
            return send({ action: 'cancel', requestId: text.split(/\s+/)[1] ?? '' });
          const requestId = randomUUID().slice(0, 8);
          pending.set(requestId, { text });
          texts.set(requestId, text);
          send({ action: 'sendMessage', requestId, message: text });
        });
        rl.on('close', () => {
          inputEnded = true;
          maybeDone();
        });
      };
      setTimeout(() => startInput?.(), 1000).unref();
    });

    ws.on('message', (data) => {
      let msg: Json;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return line(paint('31', `unreadable frame: ${String(data).slice(0, 80)}`));
      }
      const id = typeof msg.requestId === 'string' ? msg.requestId : undefined;
      switch (msg.type) {
        case 'message_accepted':
          break;
        case 'queue_processing_started':
          if (id && pending.get(id)) pending.get(id)!.queue = undefined;
          if (id) outOfLine.add(id);
          line(dim(`${name(id)}: your turn — processing`));
          break;
        case 'chunk': {
          // Stream inline when this is the only request in flight (a conversation turn); with
          // several at once their chunks would interleave, so each prints whole when complete. A
          // reply is streamed from its first chunk or not at all: never from the middle.
          const first = !started.has(id!);
          started.add(id!);
          if (first && streaming === undefined && pending.size === 1 && !completed.has(id!)) {
            live.clear();
            write(paint('36', 'assistant> '));
            streaming = id;
          }
          if (streaming === id) write(String(msg.text ?? ''));
          break;
        }
        case 'message_complete': {
          // Some chunks were lost on the way and the text is not here: the whole reply was kept,
          // and `resume` delivers it (its chunks, then its message_complete).
          if (msg.resume === true && !completed.has(id!)) {
            if (streaming === id) {
              streaming = undefined;
              write('\n');
            }
            line(dim(`  (${name(id)}: part of the reply was lost on the way; fetching it whole)`));
            started.delete(id!);
            send({ action: 'resume' });
            break;
          }
          // A processor that crashed right after sending may send a reply twice: show it once.
          if (completed.has(id!)) break;
          const usage = (msg.usage ?? {}) as Json;
          completed.add(id!);
          if (streaming === id) {
            streaming = undefined;
            write('\n');
          } else {
            line(`${paint('36', 'assistant> ')}${String(msg.text ?? '')}`);
          }
          line(dim(`  (${replyMeta({ ...msg, usage } as Parameters<typeof replyMeta>[0])})`));
          // What is left, once the last reply in flight is in: one status line per burst, not per reply.
          if ([...pending.keys()].every((other) => other === id)) askStatus();
          break;
        }
        case 'request_queued':
        case 'queue_position': {
          const position = Number(msg.position);
          const eta = Number(msg.estimatedWaitTime);
          const entry = id ? pending.get(id) : undefined;
          const queueVersion = typeof msg.queueVersion === 'number' ? msg.queueVersion : undefined;
          // A place computed before the request left the line (its processing started, or it
          // ended) that arrives after: old news, whatever its version (finding 13).
          if (id && outOfLine.has(id)) break;
          // A notice computed from an older version of the list crossed a newer one: old news.
          if (!isNewerPlace(entry?.queue, { position, queueVersion })) break;
          const verb = queueVerb(
            msg.type === 'request_queued' ? undefined : entry?.queue?.position,
            position,
          );
          if (entry)
            entry.queue = {
              position,
              queueVersion,
              total: Number(msg.totalInQueue),
              etaAtMs: Date.now() + eta * 1000,
            };
          // Same place, new estimate: the live line shows it; without one (piped output), say it.
          if (verb === 'still' && color) break;
          const cancel = msg.type === 'request_queued' ? `  (/cancel ${id})` : '';
          const said = verb === 'still' ? 'still' : `${verb}:`;
          line(
            paint(
              '33',
              `${name(id)} ${said} #${position} in line (${msg.totalInQueue} in queue), ~${eta} s${cancel}`,
            ),
          );
          break;
        }
        case 'request_cancelled':
          line(paint('33', `${name(id)} cancelled`));
          break;
        case 'request_expired':
          line(paint('31', `${name(id)} expired: it waited too long in the queue`));
          break;
        case 'request_failed':
          line(
            paint('31', `${name(id)} failed: ${humanizeLimitNames(String(msg.message ?? ''))} (${msg.code})`),
          );
          break;
        case 'status':
          statusAsked = Math.max(0, statusAsked - 1);
          line(dim(renderLimits(msg)));
          startInput?.();
          break;
        case 'pong':
          line(dim('pong'));
          break;
        case 'limit_warning':
          line(
            paint(
              '33',
              `warning: ${describeLimitWarning(msg as unknown as Parameters<typeof describeLimitWarning>[0])}`,
            ),
          );
          break;
        case 'error':
          line(paint('31', `refused${id ? ` ${name(id)}` : ''}: ${describeRefusal(msg)}`));
          break;
        default:
          line(dim(JSON.stringify(msg)));
      }
      if (id && TERMINAL.has(String(msg.type))) {
        pending.delete(id);
        outOfLine.add(id);
      }
      if (msg.type === 'error' && id) pending.delete(id);
      drawQueue();
      maybeDone();
    });
  });
}

/**
 * What a `queue_position` says happened, from the position before and after. The server sends one
 * whenever the place or the estimate changes, and a place can also grow (a request that was
 * deferred goes back in ahead): only a smaller number is "moved up".
 */
export function queueVerb(before: number | undefined, after: number): string {
  if (before === undefined) return 'queued';
  if (after < before) return 'moved up';
  if (after > before) return 'moved back';
  return 'still';
}

/** A refusal in words: the limit by its human name, when it can be retried. */
function describeRefusal(msg: Json): string {
  const details = (msg.details ?? {}) as Json;
  const retry = details.retryAfter !== undefined ? ` — retry in ${details.retryAfter} s` : '';
  if (msg.code === 'RATE_LIMIT_EXCEEDED' && typeof details.limit === 'string')
    return `${limitName(details.limit)} limit reached${retry}`;
  return `${humanizeLimitNames(String(msg.message ?? ''))} (${msg.code})${retry}`;
}

function renderLimits(msg: Json): string {
  const limits = Array.isArray(msg.limits) ? (msg.limits as Json[]) : [];
  const parts = limits.map(
    (l) =>
      `${limitName(String(l.name))} ${Number(l.remaining).toLocaleString('en-US')}/${Number(l.limit).toLocaleString('en-US')}`,
  );
  const queue = (msg.queue ?? {}) as Json;
  return `status: ${msg.userId} (${msg.tier}) — left: ${parts.join(', ')}${queue.queued ? ` — ${queue.queued} queued` : ''}`;
}

function hint(status: number | undefined): string {
  if (status === 401) return ' (no token)';
  if (status === 403) return ' (token rejected: expired or bad signature)';
  if (status === 429) return ' (too many connection attempts from this address; wait a minute)';
  return '';
}
