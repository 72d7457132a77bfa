import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { isConnectionRefused } from '../discovery';
import { showFrame } from './frames';
import type { TerminalOutput } from './live-line';
import { ChatScreen } from './screen';
import { refusalHint } from './words';

export { queueVerb } from './words';

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

/**
 * The terminal chat client behind `npm run chat`: each input line is a message (or a `/command`),
 * replies stream in as they come, refusals say why and when to retry, queued requests show their
 * place in line and a counting-down wait, and a status line shows what is left of the limits.
 * Resolves with the process exit code. Frames are shown by frames.ts on a {@link ChatScreen}.
 */
export function runTerminalClient(options: TerminalClientOptions): Promise<number> {
  const out = options.output as TerminalOutput;
  const s = new ChatScreen(out, options.color ?? Boolean((out as Writable & { isTTY?: boolean }).isTTY));
  let inputEnded = false;
  let startInput: (() => void) | undefined;

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
      if (inputEnded && s.pending.size === 0 && s.statusAsked === 0 && options.exitWhenDone !== false)
        finish(0);
    };
    const send = (payload: Json) => ws.send(JSON.stringify(payload));
    const askStatus = () => {
      s.statusAsked++;
      send({ action: 'status' });
    };
    /** Each input line: a `/command`, or a message sent with a fresh request id. */
    const onInput = (raw: string) => {
      const text = raw.trim();
      if (!text) return;
      if (text === '/quit') return finish(0);
      if (text === '/status') return askStatus();
      if (text === '/resume') return send({ action: 'resume' });
      if (text.startsWith('/cancel'))
        return send({ action: 'cancel', requestId: text.split(/\s+/)[1] ?? '' });
      const requestId = randomUUID().slice(0, 8);
      s.pending.set(requestId, { text });
      s.texts.set(requestId, text);
      send({ action: 'sendMessage', requestId, message: text });
    };

    const ticker = setInterval(() => s.drawQueue(), 500);

    ws.on('unexpected-response', (_req, res) => {
      s.line(s.paint('31', `connection refused: HTTP ${res.statusCode}${refusalHint(res.statusCode)}`));
      finish(1);
    });
    ws.on('error', (err) => {
      const unreachable = options.unreachable && isConnectionRefused(err) ? options.unreachable : undefined;
      s.line(s.paint('31', unreachable ?? `connection error: ${err.message}`));
      finish(1);
    });
    ws.on('close', (code) => {
      clearInterval(ticker);
      s.clearLive();
      if (code !== 1000 && exitCode === 0 && !(inputEnded && s.pending.size === 0)) {
        s.line(s.paint('31', `connection closed (${code})`));
        exitCode = 1;
      }
      resolve(exitCode);
    });

    ws.on('open', () => {
      s.line(s.dim(`connected to ${options.url} — type a message, or /status /cancel ID /resume /quit`));
      askStatus();
      // Read input once the first status is shown (or after a second), so it comes first.
      startInput = () => {
        startInput = undefined;
        const rl = createInterface({ input: options.input, terminal: false });
        rl.on('line', onInput);
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
        return s.line(s.paint('31', `unreadable frame: ${String(data).slice(0, 80)}`));
      }
      showFrame(s, msg, { send, askStatus, statusShown: () => startInput?.() });
      s.drawQueue();
      maybeDone();
    });
  });
}
