import type {
  AdminRequest,
  HealthCheck,
  HealthReport,
  QueueHealthCheck,
  UserAdminRequest,
} from '../core/admin';
import { describeError } from '../core/errors';
import type { UserStatus } from '../core/limiter/decision';
import { requestCancelled } from '../core/protocol';
import { type AuditReport, auditItem } from '../core/queue/audit';
import { statusMessage } from '../core/status-message';
import type {
  AdminLimiterPort,
  ConnectionDirectory,
  ConnectionSender,
  HealthProbePort,
  HealthQueue,
  HealthTable,
  LogPort,
  ReplyStorePort,
} from './ports';
import { ReplyChannel } from './reply-channel';
import { dropContent } from './shared/request-content';

export type { AdminLimiterPort, HealthProbePort, HealthQueue, HealthTable } from './ports';

export interface AdminDeps {
  readonly limiter: AdminLimiterPort;
  readonly health: HealthProbePort;
  readonly store: ReplyStorePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly log: LogPort;
  readonly now: () => number;
  /** How long one health probe may take before it counts as not answering. @default 3000 */
  readonly healthProbeTimeoutMs?: number;
  /** The queue's cap, for `audit`. @default not checked */
  readonly maxQueuedPerUser?: number;
}

/**
 * Admin operations (SPEC §5). Each one is logged as an audit record with the user's state before
 * and after, and takes effect on the user's very next decision: policy writes bump the limiter
 * item's policy version, which every decision's condition checks.
 */
export class AdminService {
  constructor(private readonly deps: AdminDeps) {}

  async run(request: AdminRequest): Promise<unknown> {
    if (request.operation === 'health') return this.health();
    if (request.operation === 'top') {
      const { limiter, now, log } = this.deps;
      const top = await limiter.top(request.by, request.limit, now(), request.team);
      log.info('admin action', {
        audit: true,
        operation: 'top',
        by: request.by,
        limit: request.limit,
        ...(request.team ? { team: request.team } : {}),
      });
      return { by: request.by, ...top };
    }
    if (request.operation === 'team-usage') {
      const { limiter, now, log } = this.deps;
      const usage = await limiter.teamUsage(request.team, now(), { members: true });
      log.info('admin action', { audit: true, operation: 'team-usage', team: request.team });
      return usage;
    }
    if (request.operation === 'audit') return this.audit(request.userId);
    return this.runForUser(request);
  }

  /** `audit`: the user's item against the invariants (lambda/core/queue/audit.ts); read-only. */
  async audit(userId: string): Promise<AuditReport> {
    const { limiter, now, log } = this.deps;
    const nowMs = now();
    const view = await limiter.view(userId, undefined, nowMs, { fresh: true });
    const report = auditItem(userId, view, nowMs, {
      maxQueuedPerUser: this.deps.maxQueuedPerUser,
      sweepAfterEpochMs: view.snap.sweepAfterEpochMs,
    });
    log.info('admin action', {
      audit: true,
      operation: 'audit',
      target: userId,
      ok: report.ok,
      findings: report.findings.map((f) => f.code),
    });
    return report;
  }

  /**
   * Probes every table and queue at once, each bounded by its own timeout so a store that hangs
   * answers `health` within seconds. Any failure of a probe is the answer here (the resource did
   * not answer), so every error is caught and reported, none rethrown.
   */
  async health(): Promise<HealthReport> {
    const { health, now } = this.deps;
    const timed = async <T>(probe: () => Promise<T>): Promise<HealthCheck & { value?: T }> => {
      const startMs = now();
      try {
        const value = await withTimeout(probe(), this.deps.healthProbeTimeoutMs ?? 3000);
        return { ok: true, latencyMs: now() - startMs, value };
      } catch (err) {
        const error = describeError(err);
        return { ok: false, latencyMs: now() - startMs, error };
      }
    };
    const queue = async (name: HealthQueue): Promise<QueueHealthCheck> => {
      const { value, ...check } = await timed(() => health.queueDepth(name));
      return value === undefined ? check : { ...check, depth: value };
    };
    const table = async (name: HealthTable): Promise<HealthCheck> => {
      const { value: _, ...check } = await timed(() => health.probeTable(name));
      return check;
    };
    const [limits, connections, requests, requestQueue, dlq] = await Promise.all([
      table('limits'),
      table('connections'),
      table('requests'),
      queue('requests'),
      queue('dlq'),
    ]);
    const report: HealthReport = {
      healthy: [limits, connections, requests, requestQueue, dlq].every((c) => c.ok),
      checkedAtEpochMs: now(),
      tables: { limits, connections, requests },
      queues: { requests: requestQueue, dlq },
      breaker: { state: health.breakerState(), scope: 'admin function instance' },
    };
    this.deps.log.info('admin action', { audit: true, operation: 'health', healthy: report.healthy });
    return report;
  }

  private async runForUser(request: UserAdminRequest): Promise<unknown> {
    const before = await this.snapshot(request.userId, request.operation === 'usage' && !!request.history);
    const result = await this.apply(request, before.history);
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
      // Where the tier comes from: the record (set-tier), the last token admitted, or the default.
      tierSource: after.tierSource,
      // An admin sees the user's active override and when it ends (`usage` prints it).
      override: after.summary.override,
      // The user's team (set by `set-team`) and its limits' totals (SPEC §9.4), when it has one.
      ...(after.team ? { team: after.team } : {}),
    };
  }

  /** The operation's write (none for `usage`); returns what it adds to the answer. */
  private async apply(
    request: UserAdminRequest,
    history: NonNullable<UserStatus['history']>,
  ): Promise<unknown> {
    const { limiter, now } = this.deps;
    let result: unknown;
    switch (request.operation) {
      case 'reset': {
        await limiter.reset(request.userId, request.scope, now());
        // An active request nothing can settle any more blocks the user's queue: reset ends it.
        const ended = await limiter.endStuckActive(request.userId);
        if (ended) result = { endedActive: ended };
        break;
      }
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
      case 'set-team':
        await limiter.setTeam(request.userId, request.team);
        break;
      case 'usage':
        if (request.history) {
          const days = request.days ?? 30;
          result = { history: history.slice(-days) };
        }
        break;
      case 'purge-queue': {
        const purged = await this.purge(request.userId);
        const ended = await limiter.endStuckActive(request.userId);
        result = ended ? { purged, endedActive: ended } : { purged };
        break;
      }
    }
    return result;
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
      await dropContent(this.deps, userId, request);
      if (!request) continue;
      const channel = new ReplyChannel(userId, request.connectionId, this.deps);
      await channel.deliver(requestCancelled(requestId, now()));
    }
    return purged;
  }

  private async snapshot(userId: string, history = false) {
    const nowMs = this.deps.now();
    // An admin has no token: the tier in effect is the record's, else the last token's.
    const status = await this.deps.limiter.status(userId, undefined, nowMs, {
      claimFromLastToken: true,
      history,
    });
    return {
      tierSource: status.tierSource,
      message: statusMessage(status, nowMs),
      known: status.known ?? true,
      summary: summarize(status),
      history: status.history ?? [],
      team: status.team,
    };
  }
}

/** Rejects with a TimeoutError when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`no answer within ${ms} ms`);
      err.name = 'TimeoutError';
      reject(err);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function summarize(status: UserStatus): Record<string, unknown> {
  return {
    tier: status.tier,
    ...(status.team ? { team: status.team.name } : {}),
    override: status.override ?? null,
    used: Object.fromEntries(status.limits.map((l) => [l.name, l.used])),
    queued: status.queued.length,
  };
}
