import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HARNESS_LIMITS, type World } from './world';

/**
 * The self-healing sweep (issue 20, item 3), built on another branch (`lambda/services/sweep-service.ts`
 * with `lambda/adapters/sweep-index.ts`). When both files exist the harness loads them at run time
 * and runs one sweep per `sweep()` command and per drain minute, on its own function instance (its
 * limiter, clock and ports, with the same faults as every function); when they do not, it drains
 * without a sweep and says so once per process, so a reader knows the "nothing orphaned" invariant
 * was checked after draining with time advanced past every lease, not after a sweep.
 *
 * Loaded by path rather than imported, so this branch compiles without them; the shape used is
 * `new SweepService({ limiter, index, queue, store, sender, directory, events, metrics, log,
 * settings, now }).run(nowMs)` and `new SweepIndex(client, tableName)`.
 */
export type SweepHook = (w: World) => Promise<void>;

const SERVICE = new URL('../../../lambda/services/sweep-service.ts', import.meta.url);
const INDEX = new URL('../../../lambda/adapters/sweep-index.ts', import.meta.url);

interface SweepModules {
  readonly SweepService: new (deps: Record<string, unknown>) => { run(nowMs: number): Promise<unknown> };
  readonly DEFAULT_SWEEP_SETTINGS: unknown;
  readonly SweepIndex: new (client: unknown, tableName: string) => unknown;
}

let loading: Promise<SweepModules | undefined> | undefined;

function load(): Promise<SweepModules | undefined> {
  loading ??= (async () => {
    if (!existsSync(fileURLToPath(SERVICE)) || !existsSync(fileURLToPath(INDEX))) {
      console.info('harness: no sweep on this branch (lambda/services/sweep-service.ts absent); drain only');
      return undefined;
    }
    const service = (await import(SERVICE.href)) as Partial<SweepModules>;
    const index = (await import(INDEX.href)) as Partial<SweepModules>;
    if (typeof service.SweepService !== 'function' || typeof index.SweepIndex !== 'function') {
      throw new Error('harness: the sweep modules exist but do not export SweepService / SweepIndex');
    }
    console.info('harness: the sweep runs on every sweep() command and each drain minute');
    return {
      SweepService: service.SweepService,
      DEFAULT_SWEEP_SETTINGS: service.DEFAULT_SWEEP_SETTINGS,
      SweepIndex: index.SweepIndex,
    };
  })();
  return loading;
}

/** The sweep of this branch, or undefined (said once) when it has none. */
export async function sweepHook(): Promise<SweepHook | undefined> {
  const modules = await load();
  if (!modules) return undefined;
  return async (w) => {
    const s = w.sweeper;
    await s.invoke(undefined, undefined, () =>
      new modules.SweepService({
        limiter: s.limiter,
        index: new modules.SweepIndex(s.dynamo, w.tables.limits),
        queue: s.queue,
        store: s.store,
        sender: s.sender,
        directory: s.directory,
        events: { publish: async () => undefined },
        metrics: { count: () => undefined, milliseconds: () => undefined },
        log: s.log,
        settings: modules.DEFAULT_SWEEP_SETTINGS,
        now: () => s.clock(),
        prices: (id: string) => HARNESS_LIMITS.models.find((m) => m.id === id),
      }).run(s.clock()),
    );
  };
}
