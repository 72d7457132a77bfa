import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AdminDeps, AdminService, type HealthProbePort } from '../../lambda/services/admin-service';

/** `health` in the admin service: probes as values, each bounded by its timeout. */
describe('AdminService health', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function service(health: HealthProbePort, log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() }) {
    const unused = {} as never;
    const deps: AdminDeps = {
      limiter: unused,
      store: unused,
      sender: unused,
      directory: unused,
      health,
      log,
      now: () => Date.now(),
      healthProbeTimeoutMs: 3000,
    };
    return { admin: new AdminService(deps), log };
  }

  it('reports every table and queue answering, with the DLQ depth and the breaker, as healthy', async () => {
    const depths = { requests: 4, dlq: 2 };
    const { admin, log } = service({
      probeTable: async () => undefined,
      queueDepth: async (queue) => depths[queue],
      breakerState: () => 'open',
    });
    const report = await admin.run({ operation: 'health' });
    expect(report).toMatchObject({
      healthy: true,
      tables: { limits: { ok: true }, connections: { ok: true }, requests: { ok: true } },
      queues: { requests: { ok: true, depth: 4 }, dlq: { ok: true, depth: 2 } },
      breaker: { state: 'open', scope: 'admin function instance' },
    });
    expect(log.info).toHaveBeenCalledWith('admin action', {
      audit: true,
      operation: 'health',
      healthy: true,
    });
  });

  it('reports a probe that hangs as not answering once its timeout passes, and the rest as they are', async () => {
    vi.useFakeTimers();
    const { admin } = service({
      probeTable: (table) => (table === 'requests' ? new Promise(() => undefined) : Promise.resolve()),
      queueDepth: async (queue) => {
        if (queue === 'dlq')
          throw Object.assign(new Error('Access to the resource is denied'), { name: 'AccessDenied' });
        return 0;
      },
      breakerState: () => 'closed',
    });
    const pending = admin.run({ operation: 'health' });
    await vi.advanceTimersByTimeAsync(3000);
    const report = await pending;
    expect(report).toMatchObject({
      healthy: false,
      tables: {
        limits: { ok: true },
        requests: { ok: false, latencyMs: 3000, error: 'TimeoutError: no answer within 3000 ms' },
      },
      queues: {
        requests: { ok: true, depth: 0 },
        dlq: { ok: false, error: 'AccessDenied: Access to the resource is denied' },
      },
    });
    expect((report as { queues: { dlq: object } }).queues.dlq).not.toHaveProperty('depth');
  });
});
