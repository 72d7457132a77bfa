import type { AdminRequest } from '../core/admin';
import type { LimitOverride, ResetScope, Tier, UserStatus } from '../core/limiter/types';
import { requestCancelled } from '../core/protocol';
import { statusMessage } from './chat-service';
import type { ConnectionDirectory, ConnectionSender, LimiterPort, LogPort, ReplyStorePort } from './ports';
import { ReplyChannel } from './reply-channel';

/** What the admin operations need of the limiter besides the chat path. */
export interface AdminLimiterPort extends LimiterPort {
  reset(userId: string, scope: ResetScope, nowMs: number): Promise<void>;
  setTier(userId: string, tier: Tier | null): Promise<unknown>;
  setOverride(userId: string, override: LimitOverride): Promise<unknown>;
  clearOverride(userId: string): Promise<unknown>;
}

export interface AdminDeps {
  readonly limiter: AdminLimiterPort;
  readonly store: ReplyStorePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly log: LogPort;
  readonly now: () => number;
}

/**
 * Admin operations (SPEC §5). Each one is logged as an audit record with the user's state before
 * and after, and takes effect on the user's very next decision: policy writes bump the limiter
 * item's policy version, which every decision's condition checks.
 */
export class AdminService {
  constructor(private readonly deps: AdminDeps) {}

  async run(request: AdminRequest): Promise<unknown> {
    const { limiter, now } = this.deps;
    const before = await this.snapshot(request.userId);
    let result: unknown;
    switch (request.operation) {
      case 'reset':
        await limiter.reset(request.userId, request.scope, now());
        break;
      case 'set-tier':
        await limiter.setTier(request.userId, request.tier);
        break;
      case 'set-override':
        await limiter.setOverride(request.userId, {
          limits: request.limits,
          expiresAtEpochMs: request.expiresAtEpochMs,
        });
        break;
      case 'clear-override':
        await limiter.clearOverride(request.userId);
        break;
      case 'usage':
        break;
      case 'purge-queue':
        result = { purged: await this.purge(request.userId) };
        break;
    }
    const after = request.operation === 'usage' ? before : await this.snapshot(request.userId);
    this.deps.log.info('admin action', {
      audit: true,
      operation: request.operation,
      target: request.userId,
      input: request,
      before: before.summary,
      after: after.summary,
    });
    return {
      ...(result as object),
      known: before.known,
      status: after.message,
      // An admin sees the user's active override and when it ends (`usage` prints it).
      override: after.summary.override,
    };
  }

  /** Cancels every waiting request of the user; each sender is told `request_cancelled`. */
  private async purge(userId: string): Promise<string[]> {
    const { limiter, now } = this.deps;
    const { snap } = await limiter.view(userId, undefined, now());
    const purged: string[] = [];
    for (const requestId of snap.waiting) {
      const request = snap.queued[requestId];
      // The processor may have admitted it since the read: then it is not waiting any more.
      const { removed } = await limiter.removeWaiting(userId, requestId);
      if (!removed) continue;
      purged.push(requestId);
      if (!request) continue;
      const channel = new ReplyChannel(userId, request.connectionId, this.deps);
      await channel.deliver(requestCancelled(requestId, now()));
    }
    return purged;
  }

  private async snapshot(userId: string) {
    const nowMs = this.deps.now();
    const status = await this.deps.limiter.status(userId, undefined, nowMs);
    return { message: statusMessage(status, nowMs), known: status.known ?? true, summary: summarize(status) };
  }
}

function summarize(status: UserStatus): Record<string, unknown> {
  return {
    tier: status.tier,
    override: status.override ?? null,
    used: Object.fromEntries(status.limits.map((l) => [l.name, l.used])),
    queued: status.queued.length,
  };
}
