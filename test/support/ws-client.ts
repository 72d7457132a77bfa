import WebSocket from 'ws';

export type ServerFrame = { type: string; timestamp: number } & Record<string, unknown>;

/**
 * A real WebSocket client for end-to-end tests: records every frame and waits for the ones a test
 * expects, bounded by a timeout (never a fixed sleep).
 */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  private waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  closeCode: number | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      try {
        this.frames.push(JSON.parse(String(data)));
      } catch {
        this.frames.push({ type: '__unparsed', timestamp: Date.now(), raw: String(data) });
      }
      this.check();
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      this.check();
    });
  }

  /** Opens a connection; rejects with the HTTP status when the handshake is refused. */
  static connect(url: string, token?: string): Promise<TestClient> {
    const full = token === undefined ? url : `${url}?token=${encodeURIComponent(token)}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(full);
      socket.once('open', () => resolve(new TestClient(socket)));
      socket.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode }));
        socket.terminate();
      });
      socket.once('error', reject);
    });
  }

  /** The status a refused handshake answered with (undefined if it was accepted). */
  static async refusal(url: string, token?: string): Promise<number | undefined> {
    try {
      const client = await TestClient.connect(url, token);
      client.close();
      return undefined;
    } catch (err) {
      return (err as { status?: number }).status;
    }
  }

  send(payload: unknown): void {
    this.socket.send(typeof payload === 'string' ? payload : JSON.stringify(payload));
  }

  ofType(type: string, requestId?: string): ServerFrame[] {
    return this.frames.filter(
      (f) => f.type === type && (requestId === undefined || f.requestId === requestId),
    );
  }

  /** Resolves with the first frame (from `from` on) matching, or rejects after `timeoutMs`. */
  async next(
    predicate: (frame: ServerFrame) => boolean,
    options: { timeoutMs?: number; from?: number } = {},
  ): Promise<ServerFrame> {
    const from = options.from ?? 0;
    const find = () => this.frames.slice(from).find(predicate);
    await this.until(() => find() !== undefined, options.timeoutMs);
    return find()!;
  }

  /** Waits until `condition` holds, re-checked on every frame; rejects after `timeoutMs`. */
  until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate: condition,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out after ${timeoutMs} ms; frames: ${JSON.stringify(this.frames.slice(-5))}`),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Sends a request and waits for the reply of the given type. */
  async request(
    payload: Record<string, unknown> | string,
    type: string,
    timeoutMs?: number,
  ): Promise<ServerFrame> {
    const from = this.frames.length;
    this.send(payload);
    return this.next((f) => f.type === type, { from, timeoutMs });
  }

  close(): void {
    this.socket.close(1000);
  }

  private check(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate()) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve();
      }
    }
  }
}

/** `status` reads the store: it answers once the breaker let a probe through and closed. */
export async function waitUntilStatusAnswers(client: TestClient): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const from = client.frames.length;
    client.send({ action: 'status' });
    const answer = await client.next((f) => f.type === 'status' || f.type === 'error', { from });
    if (answer.type === 'status') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the limiter never answered status again');
}

/** Resolves once the wall clock reaches `epochMs` (a `retryAfter` the server told), within 10 s. */
export async function untilTime(epochMs: number): Promise<void> {
  const ms = Math.min(10_000, Math.max(0, epochMs - Date.now()));
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Frames of several clients: re-checked every 20 ms until `condition` holds or `timeoutMs` passes. */
export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
