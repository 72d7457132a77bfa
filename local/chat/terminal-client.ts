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
  return new Promise((resolve) => {
    new TerminalSession(options, resolve);
  });
}

/** One connection of the terminal client: its socket, its input, and when it is done. */
class TerminalSession {
  private readonly s: ChatScreen;
  private readonly ws: WebSocket;
  private readonly ticker: NodeJS.Timeout;
  private inputEnded = false;
  private startInput: (() => void) | undefined;
  private exitCode = 0;

  constructor(
    private readonly options: TerminalClientOptions,
    private readonly resolve: (code: number) => void,
  ) {
    const out = options.output as TerminalOutput;
    this.s = new ChatScreen(out, options.color ?? Boolean((out as Writable & { isTTY?: boolean }).isTTY));
    const { url, token } = options;
    this.ws = new WebSocket(`${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
    this.ticker = setInterval(() => this.s.drawQueue(), 500);
    this.ws.on('unexpected-response', (_req, res) => {
      this.s.line(
        this.s.paint('31', `connection refused: HTTP ${res.statusCode}${refusalHint(res.statusCode)}`),
      );
      this.finish(1);
    });
    this.ws.on('error', (err) => {
      const unreachable = options.unreachable && isConnectionRefused(err) ? options.unreachable : undefined;
      this.s.line(this.s.paint('31', unreachable ?? `connection error: ${err.message}`));
      this.finish(1);
    });
    this.ws.on('close', (code) => this.onClose(code));
    this.ws.on('open', () => this.onOpen());
    this.ws.on('message', (data) => this.onMessage(String(data)));
  }

  private finish(code: number): void {
    this.exitCode = code;
    clearInterval(this.ticker);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(1000);
  }

  private maybeDone(): void {
    const { pending, statusAsked } = this.s;
    if (this.inputEnded && pending.size === 0 && statusAsked === 0 && this.options.exitWhenDone !== false)
      this.finish(0);
  }

  private send(payload: Json): void {
    this.ws.send(JSON.stringify(payload));
  }

  private askStatus(): void {
    this.s.statusAsked++;
    this.send({ action: 'status' });
  }

  private onOpen(): void {
    this.s.line(
      this.s.dim(`connected to ${this.options.url} — type a message, or /status /cancel ID /resume /quit`),
    );
    this.askStatus();
    // Read input once the first status is shown (or after a second), so it comes first.
    this.startInput = () => {
      this.startInput = undefined;
      const rl = createInterface({ input: this.options.input, terminal: false });
      rl.on('line', (raw) => this.onInput(raw));
      rl.on('close', () => {
        this.inputEnded = true;
        this.maybeDone();
      });
    };
    setTimeout(() => this.startInput?.(), 1000).unref();
  }

  /** Each input line: a `/command`, or a message sent with a fresh request id. */
  private onInput(raw: string): void {
    const text = raw.trim();
    if (!text) return;
    if (text === '/quit') this.finish(0);
    else if (text === '/status') this.askStatus();
    else if (text === '/resume') this.send({ action: 'resume' });
    else if (text.startsWith('/cancel'))
      this.send({ action: 'cancel', requestId: text.split(/\s+/)[1] ?? '' });
    else this.sendMessage(text);
  }

  private sendMessage(text: string): void {
    const requestId = randomUUID().slice(0, 8);
    this.s.pending.set(requestId, { text });
    this.s.texts.set(requestId, text);
    this.send({ action: 'sendMessage', requestId, message: text });
  }

  private onMessage(data: string): void {
    let msg: Json;
    try {
      msg = JSON.parse(data);
    } catch {
      this.s.line(this.s.paint('31', `unreadable frame: ${data.slice(0, 80)}`));
      return;
    }
    showFrame(this.s, msg, {
      send: (payload) => this.send(payload),
      askStatus: () => this.askStatus(),
      statusShown: () => this.startInput?.(),
    });
    this.s.drawQueue();
    this.maybeDone();
  }

  private onClose(code: number): void {
    clearInterval(this.ticker);
    this.s.clearLive();
    if (code !== 1000 && this.exitCode === 0 && !(this.inputEnded && this.s.pending.size === 0)) {
      this.s.line(this.s.paint('31', `connection closed (${code})`));
      this.exitCode = 1;
    }
    this.resolve(this.exitCode);
  }
}
