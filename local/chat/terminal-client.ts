import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';

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
}

type Json = Record<string, unknown>;

/** Requests still waiting for a terminal message, and what the queue said about each. */
interface Pending {
  readonly text: string;
  queue?: { position: number; total: number; etaAtMs: number };
}

const TERMINAL = new Set(['message_complete', 'request_cancelled', 'request_expired', 'request_failed']);

/**
 * The terminal chat client behind `npm run chat`: each input line is a message (or a `/command`),
 * replies stream in as they come, refusals say why and when to retry, queued requests show their
 * place in line and a counting-down wait, and a status line shows what is left of the limits.
 * Resolves with the process exit code.
 */
export function runTerminalClient(options: TerminalClientOptions): Promise<number> {
  const out = options.output;
  const color = options.color ?? Boolean((out as Writable & { isTTY?: boolean }).isTTY);
  const paint = (code: string, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const dim = (t: string) => paint('2', t);
  const pending = new Map<string, Pending>();
  let streaming: string | undefined;
  let inputEnded = false;
  let startInput: (() => void) | undefined;
  let limitsLine = '';
  const completed = new Set<string>();

  const write = (text: string) => out.write(text);
  const line = (text: string) => {
    if (streaming) write('\n');
    streaming = undefined;
    write(`${text}\n`);
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
    const maybeDone = () => {
      if (inputEnded && pending.size === 0 && options.exitWhenDone !== false) finish(0);
    };
    const send = (payload: Json) => ws.send(JSON.stringify(payload));

    const ticker = setInterval(() => {
      if (!color) return;
      const queued = [...pending.entries()].filter(([, p]) => p.queue);
      if (queued.length === 0 || streaming) return;
      const parts = queued.map(([, p]) => {
        const q = p.queue!;
        return `#${q.position} in line, ~${Math.max(0, Math.ceil((q.etaAtMs - Date.now()) / 1000))} s`;
      });
      write(`\r\x1b[2K${paint('33', `queue: ${parts.join(' | ')}`)}`);
    }, 500);

    ws.on('unexpected-response', (_req, res) => {
      line(paint('31', `connection refused: HTTP ${res.statusCode}${hint(res.statusCode)}`));
      finish(1);
    });
    ws.on('error', (err) => {
      line(paint('31', `connection error: ${err.message}`));
      finish(1);
    });
    ws.on('close', (code) => {
      clearInterval(ticker);
      if (code !== 1000 && exitCode === 0 && !(inputEnded && pending.size === 0)) {
        line(paint('31', `connection closed (${code})`));
        exitCode = 1;
      }
      resolve(exitCode);
    });

    ws.on('open', () => {
      line(dim(`connected to ${options.url} — type a message, or /status /cancel ID /resume /quit`));
      send({ action: 'status' });
      // Read input once the first status is shown (or after a second), so it comes first.
      startInput = () => {
        startInput = undefined;
        const rl = createInterface({ input: options.input, terminal: false });
        rl.on('line', (raw) => {
          const text = raw.trim();
          if (!text) return;
          if (text === '/quit') return finish(0);
          if (text === '/status') return send({ action: 'status' });
          if (text === '/resume') return send({ action: 'resume' });
          if (text.startsWith('/cancel'))
            return send({ action: 'cancel', requestId: text.split(/\s+/)[1] ?? '' });
          const requestId = randomUUID().slice(0, 8);
          pending.set(requestId, { text });
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
          line(dim(`[${id}] your turn — processing`));
          break;
        case 'chunk':
          // Stream inline when this is the only request in flight (a conversation turn); with
          // several at once their chunks would interleave, so each prints whole when complete.
          if (streaming === undefined && pending.size === 1 && !completed.has(id!)) {
            write(paint('36', 'assistant> '));
            streaming = id;
          }
          if (streaming === id) write(String(msg.text ?? ''));
          break;
        case 'message_complete': {
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
          line(dim(`  (${usage.inputTokens ?? '?'} in + ${usage.outputTokens ?? '?'} out tokens)`));
          send({ action: 'status' });
          break;
        }
        case 'request_queued':
        case 'queue_position': {
          const position = Number(msg.position);
          const eta = Number(msg.estimatedWaitTime);
          const entry = id ? pending.get(id) : undefined;
          if (entry)
            entry.queue = { position, total: Number(msg.totalInQueue), etaAtMs: Date.now() + eta * 1000 };
          const verb = msg.type === 'request_queued' ? 'queued' : 'moved up';
          line(
            paint('33', `[${id}] ${verb}: #${position} in line (${msg.totalInQueue} in queue), ~${eta} s`),
          );
          break;
        }
        case 'request_cancelled':
          line(paint('33', `[${id}] cancelled`));
          break;
        case 'request_expired':
          line(paint('31', `[${id}] expired: it waited too long in the queue`));
          break;
        case 'request_failed':
          line(paint('31', `[${id}] failed: ${msg.code} ${msg.message ?? ''}`));
          break;
        case 'status':
          limitsLine = renderLimits(msg);
          line(dim(limitsLine));
          startInput?.();
          break;
        case 'pong':
          line(dim('pong'));
          break;
        case 'error': {
          const details = (msg.details ?? {}) as Json;
          const retry = details.retryAfter !== undefined ? ` — retry in ${details.retryAfter} s` : '';
          const which = details.limit ? ` (${details.limit})` : '';
          line(paint('31', `refused${id ? ` [${id}]` : ''}: ${msg.code}${which}: ${msg.message}${retry}`));
          break;
        }
        default:
          line(dim(JSON.stringify(msg)));
      }
      if (id && TERMINAL.has(String(msg.type))) pending.delete(id);
      if (msg.type === 'error' && id) pending.delete(id);
      maybeDone();
    });
  });
}

function renderLimits(msg: Json): string {
  const limits = Array.isArray(msg.limits) ? (msg.limits as Json[]) : [];
  const parts = limits.map(
    (l) =>
      `${l.name} ${Number(l.remaining).toLocaleString('en-US')}/${Number(l.limit).toLocaleString('en-US')}`,
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
