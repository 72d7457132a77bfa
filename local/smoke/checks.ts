import type { AdminResponse, HealthReport } from '../../lambda/core/admin';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';
import { type Frame, SmokeFailure, SmokeSession } from './session';

/**
 * The limit `admin usage` reports on: the first the registry lists (the message bucket), which
 * every tier sets and the smoke's own message has just counted in.
 */
const MESSAGE_LIMIT = LIMIT_KINDS[0]!;

/** Where the checks run: a WebSocket URL, a token and its user, and the admin side of the stack. */
export interface SmokeTarget {
  readonly wsUrl: string;
  readonly token: string;
  readonly userId: string;
  /** The stack's health report (GET /health locally, the admin function's `health` in AWS). */
  health(timeoutMs: number): Promise<HealthReport>;
  /** Runs one admin operation through the admin function. */
  admin(payload: Record<string, unknown>, timeoutMs: number): Promise<AdminResponse>;
}

export interface SmokeSettings {
  /** Longest wait of one check. */
  readonly timeoutMs: number;
  /** Longest wait for the burst: queued requests start one per refill of the user's bucket. */
  readonly burstTimeoutMs: number;
  /** Requests sent at once by the burst check. @default 30 */
  readonly burstSize?: number;
}

/** One check: its name and what it does; it returns a detail for its `ok` line or throws. */
export interface SmokeCheck {
  readonly name: string;
  run(): Promise<string | undefined>;
}

/** Frames that end a request: its reply, or a refusal, failure, expiry or cancellation. */
const ENDINGS = ['message_complete', 'request_failed', 'request_expired', 'request_cancelled', 'error'];

/**
 * The checks, in order (issue 16 item 3): health, connect, a chat reply, a burst that queues,
 * `status`, and the admin `usage` of the smoke user. Each later check uses the connection the
 * `connect` check opened; `close` ends it.
 */
export function smokeChecks(
  target: SmokeTarget,
  settings: SmokeSettings,
): { checks: SmokeCheck[]; close(): void } {
  let session: SmokeSession | undefined;
  const open = () => {
    if (!session) throw new SmokeFailure('not connected');
    return session;
  };
  const { timeoutMs } = settings;
  const checks: SmokeCheck[] = [
    {
      name: 'health',
      run: async () => {
        const report = await target.health(timeoutMs);
        const down = [
          ...Object.entries(report.tables).map(([name, c]) => ({ name: `table ${name}`, ...c })),
          ...Object.entries(report.queues).map(([name, c]) => ({ name: `queue ${name}`, ...c })),
        ].filter((c) => !c.ok);
        if (!report.healthy || down.length > 0)
          throw new SmokeFailure(
            `unhealthy: ${down.map((c) => `${c.name} (${c.error ?? 'no answer'})`).join(', ')}`,
          );
        return `tables and queues answer, DLQ depth ${report.queues.dlq.depth ?? '?'}, breaker ${report.breaker.state}`;
      },
    },
    {
      name: 'connect',
      run: async () => {
        session = await SmokeSession.open(target.wsUrl, target.token, timeoutMs);
        return undefined;
      },
    },
    {
      name: 'chat reply',
      run: async () => {
        const s = open();
        const requestId = `smoke-chat-${Date.now()}`;
        s.send({ action: 'sendMessage', requestId, message: 'smoke check: hello' });
        await s.until(() => s.ofType('message_complete', requestId).length > 0, {
          timeoutMs,
          what: `message_complete for ${requestId}`,
          failure: () => refusal(s.frames, requestId),
        });
        const text = String(s.ofType('message_complete', requestId)[0]!.text ?? '');
        return text ? JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text) : 'text omitted';
      },
    },
    {
      name: 'burst queues',
      run: async () => {
        const s = open();
        const size = settings.burstSize ?? 30;
        const ids = Array.from({ length: size }, (_, i) => `smoke-burst-${Date.now()}-${i}`);
        const mine = new Set(ids);
        for (const requestId of ids)
          s.send({ action: 'sendMessage', requestId, message: `burst ${requestId}` });
        const ended = () =>
          new Set(
            s.frames
              .filter((f) => ENDINGS.includes(f.type) && mine.has(String(f.requestId)))
              .map((f) => f.requestId),
          );
        await s.until(() => ended().size === size, {
          timeoutMs: settings.burstTimeoutMs,
          what: () => `end of all ${size} requests (${ended().size} ended)`,
          failure: () => {
            const failed = s.frames.find((f) => f.type === 'request_failed' && mine.has(String(f.requestId)));
            return failed && `request ${failed.requestId} failed: ${failed.code}: ${failed.message}`;
          },
        });
        const count = (type: string) =>
          s.frames.filter((f) => f.type === type && mine.has(String(f.requestId))).length;
        const queued = count('request_queued');
        if (queued === 0)
          throw new SmokeFailure(
            `none of ${size} requests was queued (all ${count('message_complete')} admitted at once)`,
          );
        const refused = count('error');
        return `${size} sent, ${queued} queued, ${count('message_complete')} replied${refused ? `, ${refused} refused` : ''}`;
      },
    },
    {
      name: 'status',
      run: async () => {
        const s = open();
        const from = s.frames.length;
        s.send({ action: 'status' });
        const find = () => s.frames.slice(from).find((f) => f.type === 'status');
        await s.until(() => find() !== undefined, { timeoutMs, what: 'status answer' });
        const status = find()!;
        if (status.userId !== target.userId)
          throw new SmokeFailure(`status is for ${String(status.userId)}, not ${target.userId}`);
        const limits = (status.limits as unknown[] | undefined)?.length ?? 0;
        return `tier ${String(status.tier)}, ${limits} limits, ${(status.queue as { queued?: number })?.queued ?? '?'} queued`;
      },
    },
    {
      name: 'admin usage',
      run: async () => {
        const response = await target.admin({ operation: 'usage', userId: target.userId }, timeoutMs);
        if (!response.ok) throw new SmokeFailure(`${response.error.code}: ${response.error.message}`);
        const result = response.result as {
          known?: boolean;
          status?: { limits?: { name: string; used: number }[] };
        };
        if (result.known === false)
          throw new SmokeFailure(`the admin function does not know ${target.userId}`);
        const rate = result.status?.limits?.find((l) => l.name === MESSAGE_LIMIT.name);
        return `${target.userId}: ${rate ? `${MESSAGE_LIMIT.name} used ${rate.used}` : 'known'}`;
      },
    },
  ];
  return { checks, close: () => session?.close() };
}

/** An error or failure for `requestId`, as a reason to stop waiting. */
function refusal(frames: readonly Frame[], requestId: string): string | undefined {
  const frame = frames.find(
    (f) => f.requestId === requestId && ['error', 'request_failed', 'request_expired'].includes(f.type),
  );
  return frame && `${frame.type}: ${String(frame.code ?? '')} ${String(frame.message ?? '')}`.trim();
}

/** `12 ms` below a second, `18.2 s` above. */
export function formatElapsed(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Runs the checks in order, printing `ok  NAME (time): detail` or `FAIL NAME: what`; stops at the
 * first failure. Resolves with the name of the check that failed, or undefined when all passed.
 */
export async function runSmokeChecks(
  checks: readonly SmokeCheck[],
  out: (line: string) => void,
  clock: () => number = () => performance.now(),
): Promise<string | undefined> {
  for (const check of checks) {
    const startMs = clock();
    try {
      const detail = await check.run();
      out(`ok  ${check.name} (${formatElapsed(clock() - startMs)})${detail ? `: ${detail}` : ''}`);
    } catch (err) {
      if (!(err instanceof SmokeFailure)) throw err;
      out(`FAIL ${check.name}: ${err.message}`);
      return check.name;
    }
  }
  return undefined;
}
