import WebSocket from 'ws';
import { errorMessage } from '../error-message';
import { LocalError } from '../errors';

/** A server message as it arrives: `type`, `timestamp` and the fields of its type. */
export type Frame = { readonly type: string } & Readonly<Record<string, unknown>>;

/** A check that did not pass; the message says what went wrong. */
export class SmokeFailure extends LocalError {}

/**
 * One WebSocket connection of the smoke check: records every frame and waits for conditions on
 * them, each wait bounded by a timeout (a stack that stops answering fails the check, never hangs).
 */
export class SmokeSession {
  readonly frames: Frame[] = [];
  private readonly waiters = new Set<() => void>();
  private closed: { code: number; reason: string } | undefined;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      try {
        this.frames.push(JSON.parse(String(data)) as Frame);
      } catch {
        this.frames.push({ type: 'unparsed', raw: String(data) });
      }
      for (const wake of this.waiters) wake();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const wake of this.waiters) wake();
    });
    socket.on('error', () => undefined);
  }

  /** Opens the connection; fails with the refusal's status, or with what the network said. */
  static open(url: string, token: string, timeoutMs: number): Promise<SmokeSession> {
    const full = `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(full, { handshakeTimeout: timeoutMs });
      socket.once('open', () => resolve(new SmokeSession(socket)));
      socket.once('unexpected-response', (_req, res) => {
        const hint =
          res.statusCode === 401 || res.statusCode === 403 ? ' (is the token for this stack?)' : '';
        reject(new SmokeFailure(`the handshake was refused with HTTP ${res.statusCode}${hint}`));
        socket.terminate();
      });
      socket.once('error', (err) => reject(new SmokeFailure(describeNetworkError(err, url))));
    });
  }

  send(payload: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(payload));
  }

  /** Frames of one type, optionally of one request. */
  ofType(type: string, requestId?: string): Frame[] {
    return this.frames.filter(
      (f) => f.type === type && (requestId === undefined || f.requestId === requestId),
    );
  }

  /**
   * Waits until `condition` returns true (re-checked on every frame). `failure` may return a
   * reason to stop at once (an error frame, say). Fails with `what` after `timeoutMs`.
   */
  until(
    condition: () => boolean,
    options: { timeoutMs: number; what: string | (() => string); failure?: () => string | undefined },
  ): Promise<void> {
    const what = () => (typeof options.what === 'string' ? options.what : options.what());
    return new Promise((resolve, reject) => {
      const check = () => {
        const failed = options.failure?.();
        if (failed) return finish(new SmokeFailure(failed));
        if (condition()) return finish();
        if (this.closed)
          finish(
            new SmokeFailure(
              `the connection closed (${this.closed.code} ${this.closed.reason}) before ${what()}`,
            ),
          );
      };
      const timer = setTimeout(
        () => finish(new SmokeFailure(`no ${what()} within ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.socket.close(1000);
  }
}

/** `nothing answers at …` for a refused connection; the network's own words otherwise. */
export function describeNetworkError(err: unknown, where: string): string {
  const codes: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code) codes.push(code);
    if (e instanceof AggregateError)
      for (const inner of e.errors) codes.push(String((inner as NodeJS.ErrnoException).code));
  }
  if (codes.includes('ECONNREFUSED')) return `nothing answers at ${where} (connection refused)`;
  if (codes.includes('ENOTFOUND')) return `${where}: host not found`;
  const message = errorMessage(err);
  return `${where}: ${message}${codes.length ? ` (${codes[0]})` : ''}`;
}
