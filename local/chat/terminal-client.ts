import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { isConnectionRefused } from '../discovery';
import { backoffMs, judgeRequests, type StatusLike } from '../web/reconnect.js';
import { commandOf, unknownCommand } from './commands';
import { showFrame } from './frames';
import type { TerminalOutput } from './live-line';
import { ChatScreen } from './screen';
import { listenForInterrupts, stopCommand } from './stop';
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
  /** Where Ctrl-C comes from (`SIGINT`): the process in `npm run chat`. @default none */
  readonly interrupts?: import('node:events').EventEmitter;
}

type Json = Record<string, unknown>;

/** How long until a request that may be a reply in flight is judged again. */
const UNSURE_RECHECK_MS = 5000;

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

/**
 * One session of the terminal client: its input, its requests and their screen, over as many
 * connections as it takes. A connection that drops is opened again with backoff (1, 2, 4 … 30 s,
 * like the page); each reconnect asks `resume` and `status` and judges the requests of earlier
 * connections by it (reconnect.js): the ones the server no longer has are said to be lost.
 */
class TerminalSession {
  private readonly s: ChatScreen;
  private ws: WebSocket | undefined;
  private readonly ticker: NodeJS.Timeout;
  private inputEnded = false;
  private startInput: (() => void) | undefined;
  private exitCode = 0;
  private finished = false;
  private resolved = false;
  /** Connections opened so far, and failures in a row since the last one opened. */
  private connections = 0;
  private attempts = 0;
  private retry: NodeJS.Timeout | undefined;
  /** Messages typed while no connection was open: sent once one is. */
  private readonly outbox: Json[] = [];
  /** The connection (1, 2, …) each request was sent on. */
  private readonly sentOn = new Map<string, number>();
  /** Requests that had a frame on this connection. */
  private heard = new Set<string>();
  /** The first status after a reconnect judges the requests of earlier connections. */
  private judging = false;
  /** Requests that may be replies in flight: judged again by a later status. */
  private unsure = new Set<string>();
  private readonly lost = new Set<string>();
  private readonly interrupts: ReturnType<typeof listenForInterrupts>;

  constructor(
    private readonly options: TerminalClientOptions,
    private readonly resolve: (code: number) => void,
  ) {
    const out = options.output as TerminalOutput;
    this.s = new ChatScreen(out, options.color ?? Boolean((out as Writable & { isTTY?: boolean }).isTTY));
    this.ticker = setInterval(() => this.s.drawQueue(), 500);
    const send = (p: Json) => this.send(p);
    this.interrupts = listenForInterrupts(this.s, options.interrupts, send, () => this.finish(130));
    this.connect();
  }

  private connect(): void {
    const { url, token } = this.options;
    const ws = new WebSocket(`${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
    this.ws = ws;
    let opened = false;
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode;
      this.s.line(this.s.paint('31', `connection refused: HTTP ${status}${refusalHint(status)}`));
      // This token will not do (401, 403), or nothing was ever connected: retrying cannot help.
      if (this.connections === 0 || status === 401 || status === 403) this.finish(1);
      else ws.terminate();
    });
    ws.on('error', (err) => {
      if (this.finished || this.connections > 0) return; // the close that follows tries again
      const unreachable =
        this.options.unreachable && isConnectionRefused(err) ? this.options.unreachable : undefined;
      this.s.line(this.s.paint('31', unreachable ?? `connection error: ${err.message}`));
      this.finish(1);
    });
    ws.on('open', () => {
      opened = true;
      this.onOpen();
    });
    ws.on('close', (code) => this.onClose(ws, opened, code));
    ws.on('message', (data) => this.onMessage(String(data)));
  }

  private finish(code: number): void {
    this.exitCode = code;
    this.finished = true;
    this.interrupts.stop();
    clearInterval(this.ticker);
    clearTimeout(this.retry);
    const ws = this.ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) ws.close(1000);
    else this.done();
  }

  private done(): void {
    if (this.resolved) return;
    this.resolved = true;
    this.s.clearLive();
    this.resolve(this.exitCode);
  }

  private maybeDone(): void {
    const { pending, statusAsked } = this.s;
    if (this.inputEnded && pending.size === 0 && statusAsked === 0 && this.options.exitWhenDone !== false)
      this.finish(0);
  }

  private send(payload: Json): void {
    this.ws?.send(JSON.stringify(payload));
  }

  private askStatus(): void {
    this.s.statusAsked++;
    this.send({ action: 'status' });
  }

  private onOpen(): void {
    this.connections++;
    this.attempts = 0;
    this.heard = new Set();
    this.s.statusAsked = 0;
    if (this.connections > 1) {
      this.s.line(this.s.dim(`reconnected to ${this.options.url}`));
      this.judging = [...this.s.pending.keys()].some((id) => this.sentOn.has(id));
      // Replies kept while no connection was open, then what the server holds now.
      this.send({ action: 'resume' });
      this.askStatus();
      for (const payload of this.outbox.splice(0)) this.sendNow(payload);
      return;
    }
    this.s.line(
      this.s.dim(
        `connected to ${this.options.url} — type a message or /status /stop /cancel ID /resume /new /quit`,
      ),
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

  /** Each input line: a `/command`, or a message sent with a fresh request id (commands.ts). */
  private onInput(raw: string): void {
    const command = commandOf(raw);
    if (command.kind === 'quit') this.finish(0);
    else if (command.kind === 'status') this.askStatus();
    else if (command.kind === 'resume') this.send({ action: 'resume' });
    else if (command.kind === 'stop') stopCommand(this.s, (p) => this.send(p));
    else if (command.kind === 'new') this.newConversation();
    else if (command.kind === 'cancel') this.send({ action: 'cancel', requestId: command.requestId });
    else if (command.kind === 'unknown') this.s.line(this.s.paint('31', unknownCommand(command.name)));
    else if (command.kind === 'message') this.sendMessage(command.text);
  }

  private sendMessage(text: string): void {
    const requestId = randomUUID().slice(0, 8);
    this.interrupts.sent();
    this.s.pending.set(requestId, { text });
    this.s.texts.set(requestId, text);
    const payload = { action: 'sendMessage', requestId, message: text, conversationId: this.conversationId };
    if (this.ws?.readyState === WebSocket.OPEN) this.sendNow(payload);
    else {
      this.outbox.push(payload);
      this.s.line(this.s.dim(`  (not connected: ${this.s.name(requestId)} goes out once reconnected)`));
    }
  }

  /** One conversation per session (SPEC §9.3); `/new` starts another, without the earlier turns. */
  private conversationId = randomUUID();
  private newConversation(): void {
    this.conversationId = randomUUID();
    this.s.line(this.s.dim('  new conversation: the model no longer sees the earlier messages'));
  }

  private sendNow(payload: Json): void {
    this.sentOn.set(String(payload.requestId), this.connections);
    this.send(payload);
  }

  private onMessage(data: string): void {
    let msg: Json;
    try {
      msg = JSON.parse(data);
    } catch {
      this.s.line(this.s.paint('31', `unreadable frame: ${data.slice(0, 80)}`));
      return;
    }
    const id = typeof msg.requestId === 'string' ? msg.requestId : undefined;
    if (id) this.heard.add(id);
    // Said to be lost, yet the server speaks of it (a kept reply from `resume`): it goes on.
    if (id && this.lost.delete(id)) {
      this.s.pending.set(id, { text: this.s.texts.get(id) ?? id });
      this.s.outOfLine.delete(id);
    }
    showFrame(this.s, msg, {
      send: (payload) => this.send(payload),
      askStatus: () => this.askStatus(),
      statusShown: () => this.startInput?.(),
    });
    if (msg.type === 'status') this.judge(msg);
    this.s.drawQueue();
    this.maybeDone();
  }

  /** After a reconnect: what the server still lists as waiting, and what it lost. */
  private judge(status: Json): void {
    const earlier = [...this.s.pending.keys()].filter((id) => (this.sentOn.get(id) ?? 0) < this.connections);
    const ids = this.judging ? earlier : earlier.filter((id) => this.unsure.has(id));
    if (!this.judging && ids.length === 0) return;
    this.judging = false;
    const { waiting, lost, unsure } = judgeRequests(ids, this.heard, status as StatusLike);
    for (const [id, position] of waiting) {
      const entry = this.s.pending.get(id);
      if (entry?.queue) entry.queue = { ...entry.queue, position, queueVersion: undefined };
    }
    if (lost.length > 0) {
      for (const id of lost) {
        this.s.pending.delete(id);
        this.s.outOfLine.add(id);
        this.lost.add(id);
      }
      const them = lost.length === 1 ? 'it' : `these ${lost.length}`;
      this.s.line(
        this.s.paint(
          '31',
          `lost: ${lost.map((id) => this.s.name(id)).join(', ')} — the server no longer has ${them} (it restarted?); send again if you need ${lost.length === 1 ? 'it' : 'them'}`,
        ),
      );
    }
    this.unsure = new Set(unsure);
    if (this.unsure.size > 0) setTimeout(() => this.askStatus(), UNSURE_RECHECK_MS).unref();
  }

  private onClose(ws: WebSocket, opened: boolean, code: number): void {
    if (this.finished) {
      if (ws === this.ws) this.done();
      return;
    }
    if (ws !== this.ws) return;
    // Nothing more to send or to wait for: the session was over anyway.
    if (this.inputEnded && this.s.pending.size === 0 && this.outbox.length === 0) {
      this.finish(0);
      return;
    }
    this.s.clearLive();
    const delayMs = backoffMs(this.attempts++);
    const when = `reconnecting in ${Math.round(delayMs / 1000)} s`;
    if (opened) this.s.line(this.s.paint('31', `connection closed (${code}) — ${when}`));
    else this.s.line(this.s.dim(`  still no connection — ${when}`));
    this.retry = setTimeout(() => this.connect(), delayMs);
  }
}
