import { LiveLine, type TerminalOutput } from './live-line';

/** Requests still waiting for a terminal message, and what the queue said about each. */
export interface Pending {
  readonly text: string;
  queue?: { position: number; queueVersion?: number; total: number; etaAtMs: number };
}

/** How a request is named on screen: the start of its text, which is what the person typed. */
const NAME_CHARS = 32;

/**
 * What the terminal client knows of its session (requests in flight, replies streamed or shown)
 * and how it writes: whole lines, an inline streamed reply, and the live queue line.
 */
export class ChatScreen {
  readonly pending = new Map<string, Pending>();
  /** The text of every request sent in this session, to name it in whatever comes back. */
  readonly texts = new Map<string, string>();
  readonly completed = new Set<string>();
  /** Requests whose reply has started to arrive, streamed or not. */
  readonly started = new Set<string>();
  /** Requests that left the line (processing started, or ended): a place told for them is late. */
  readonly outOfLine = new Set<string>();
  /** The request whose reply is being written inline now. */
  streaming: string | undefined;
  /** `status` asked for and not answered yet: the last one is shown before exiting. */
  statusAsked = 0;
  private readonly live: LiveLine;

  constructor(
    private readonly out: TerminalOutput,
    readonly color: boolean,
  ) {
    this.live = new LiveLine(out, (text) => this.paint('33', text));
  }

  paint(code: string, text: string): string {
    return this.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  dim(text: string): string {
    return this.paint('2', text);
  }

  write(text: string): void {
    this.out.write(text);
  }

  /** A whole line, after the live line is cleared and any streamed reply ended. */
  line(text: string): void {
    this.live.clear();
    if (this.streaming) this.write('\n');
    this.streaming = undefined;
    this.write(`${text}\n`);
  }

  /** Starts writing `id`'s reply inline. */
  startStreaming(id: string): void {
    this.live.clear();
    this.write(this.paint('36', 'assistant> '));
    this.streaming = id;
  }

  /** Ends `id`'s inline reply, if it is the one streaming; says whether it was. */
  endStreaming(id: string | undefined): boolean {
    if (this.streaming !== id) return false;
    this.streaming = undefined;
    this.write('\n');
    return true;
  }

  clearLive(): void {
    this.live.clear();
  }

  /** A request as the person sees it: `"What is the capital of…"`, or `request 1f2e…`. */
  name(id: string | undefined): string {
    const text = id === undefined ? undefined : this.texts.get(id);
    if (text === undefined) return id === undefined ? 'request' : `request ${id}`;
    const chars = [...text];
    return JSON.stringify(chars.length > NAME_CHARS ? `${chars.slice(0, NAME_CHARS - 1).join('')}…` : text);
  }

  /** The live queue line: this session's waiting requests, soonest first, as wide as the window. */
  drawQueue(): void {
    if (!this.color || this.streaming) return;
    const queued = [...this.pending.values()].flatMap((p) => (p.queue ? [p.queue] : []));
    if (queued.length === 0) {
      this.live.clear();
      return;
    }
    const parts = queued
      .sort((a, b) => a.position - b.position)
      .map((q) => `#${q.position} ~${Math.max(0, Math.ceil((q.etaAtMs - Date.now()) / 1000))} s`);
    this.live.draw(`queue: ${queued.length} waiting · ${parts.join(' · ')}`);
  }
}
