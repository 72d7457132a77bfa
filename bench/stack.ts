import { randomUUID } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';
import WebSocket from 'ws';
import { signDevToken } from '../local/dev-tokens';
import { startEmulators } from '../local/emulators';
import { type LocalStack, startLocalStack } from '../local/stack';

/**
 * One local stack for every bench part of the run (handlers read their configuration once per
 * process). Free tier as shipped, for queue measurements; enterprise with limits out of the way,
 * for throughput. DynamoDB traffic goes through a counting proxy, so calls per message are
 * measured end to end without touching the handlers.
 */
export interface BenchStack {
  readonly stack: LocalStack;
  /** DynamoDB operations seen since the last reset, by operation. */
  dynamoCalls(): Record<string, number>;
  resetDynamoCalls(): void;
  stop(): Promise<void>;
}

let shared: Promise<BenchStack> | undefined;

/** Stops the shared stack if a part started it. */
export async function stopBenchStack(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = undefined;
}

export function benchStack(): Promise<BenchStack> {
  shared ??= start();
  return shared;
}

async function start(): Promise<BenchStack> {
  const emulators = await startEmulators();
  const counts: Record<string, number> = {};
  const proxy = await countingProxy(emulators.dynamodbEndpoint, (op) => {
    counts[op] = (counts[op] ?? 0) + 1;
  });
  const stack = await startLocalStack({
    port: 0,
    dynamodbEndpoint: proxy.endpoint,
    sqsEndpoint: emulators.sqsEndpoint,
    prefix: `bench-${randomUUID().slice(0, 6)}`,
    serveWebPage: false,
    // The local TTL reaper (Scans, standing in for DynamoDB's own TTL process, which AWS does not
    // bill as calls) and the minute sweep are upkeep, not the decisions measured here.
    ttlSweepIntervalMs: 0,
    runSweep: false,
    environment: {
      ECHO_DELAY_MS: '0',
      // dynalite serves a few hundred operations a second from this one process; a burst of
      // 1,500 messages queues up inside it. With the default 2 s some calls would time out and
      // be refused as busy (never admitted), which is not what these benchmarks measure.
      LIMITER_TIMEOUT_MS: '20000',
      CONNECT_LIMIT_PER_MINUTE: '100000',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      LIMITS_CONFIG: JSON.stringify({
        tiers: { enterprise: { messagesPerMinute: 1_000_000, burst: 0, dailyTokens: 1_000_000_000 } },
      }),
    },
  });
  return {
    stack,
    dynamoCalls: () => ({ ...counts }),
    resetDynamoCalls: () => {
      for (const k of Object.keys(counts)) delete counts[k];
    },
    stop: async () => {
      await stack.stop();
      await proxy.stop();
      await emulators.stop();
    },
  };
}

/** A TCP proxy that counts DynamoDB operations by their `X-Amz-Target` header. */
async function countingProxy(target: string, onOperation: (op: string) => void) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString('latin1').matchAll(/x-amz-target: DynamoDB_\d+\.(\w+)/gi))
        onOperation(match[1]!);
    });
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) s.on('error', () => undefined).on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export type Frame = { type: string; timestamp: number; requestId?: string } & Record<string, unknown>;

/** A bench client: connects, records frames with local receive times, resolves per request. */
export async function benchClient(
  url: string,
  tier?: 'enterprise',
): Promise<{
  userId: string;
  socket: WebSocket;
  frames: { at: number; frame: Frame }[];
  waitFor(predicate: (f: Frame) => boolean, timeoutMs: number): Promise<number>;
}> {
  const userId = `bench-${randomUUID().slice(0, 8)}`;
  const token = await signDevToken({ userId, tier });
  const socket = new WebSocket(`${url}?token=${token}`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const frames: { at: number; frame: Frame }[] = [];
  const waiters: { predicate: (f: Frame) => boolean; resolve: (at: number) => void }[] = [];
  socket.on('message', (data) => {
    const at = performance.now();
    const frame = JSON.parse(String(data)) as Frame;
    frames.push({ at, frame });
    for (const w of [...waiters]) {
      if (w.predicate(frame)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(at);
      }
    }
  });
  return {
    userId,
    socket,
    frames,
    waitFor: (predicate, timeoutMs) =>
      new Promise((resolve, reject) => {
        const done = frames.find((f) => predicate(f.frame));
        if (done) return resolve(done.at);
        const timer = setTimeout(() => reject(new Error('bench wait timed out')), timeoutMs);
        waiters.push({
          predicate,
          resolve: (at) => {
            clearTimeout(timer);
            resolve(at);
          },
        });
      }),
  };
}

/** Frames that end a request: a reply, a failure, an expiry, a cancel or a refusal. */
export const TERMINAL_TYPES: ReadonlySet<string> = new Set([
  'message_complete',
  'request_failed',
  'request_expired',
  'request_cancelled',
  'error',
]);

/** How many of the given requests did not end with exactly one terminal frame. */
export function countNotEndingOnce(
  clients: readonly { frames: readonly { frame: Frame }[] }[],
  requestIdsOf: (frames: readonly { frame: Frame }[]) => Iterable<string>,
): number {
  let count = 0;
  for (const c of clients) {
    for (const id of requestIdsOf(c.frames)) {
      const ends = c.frames.filter(
        (f) => f.frame.requestId === id && TERMINAL_TYPES.has(f.frame.type),
      ).length;
      if (ends !== 1) count++;
    }
  }
  return count;
}
