import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { FUNCTIONS, type FunctionKey } from '../lambda/core/resources';
import { type BenchPart, type BenchRow, percentile } from './report';

const RUNS = 9;

/** A function's budget: bundle size and cold module load. */
export interface BundleTarget {
  readonly sizeKb: number;
  readonly loadMs: number;
}

/**
 * The functions on the connection path run on every connect, so their cold start is felt by every
 * client (issue 13); the others hold the limiter and the services (issue 21). Reported against,
 * never asserted: timings vary by machine, and a loaded machine reads slower.
 */
export const CONNECTION_PATH_TARGET: BundleTarget = { sizeKb: 250, loadMs: 80 };
export const DEFAULT_TARGET: BundleTarget = { sizeKb: 500, loadMs: 120 };

export function bundleTarget(key: FunctionKey): BundleTarget {
  return key === 'authorizer' || key === 'connect' || key === 'disconnect'
    ? CONNECTION_PATH_TARGET
    : DEFAULT_TARGET;
}

/** `within target ≤ …` or `OVER target ≤ …`, the note every row carries. */
export function againstTarget(value: number, limit: number, unit: string): string {
  return `${value <= limit ? 'within' : 'OVER'} target ≤ ${limit} ${unit}`;
}

/** The five largest contributors to a bundle, by package or by source folder, in KiB. */
function heaviest(inputs: Record<string, { bytesInOutput: number }>): Record<string, number> {
  const byOwner = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
    const owner = pkg ?? path.split('/').slice(0, 3).join('/');
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + bytesInOutput);
  }
  return Object.fromEntries(
    [...byOwner]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([owner, bytes]) => [owner, Math.round(bytes / 102.4) / 10]),
  );
}

/** Milliseconds a fresh `node` process takes to require these modules (the project's node_modules). */
function timeRequire(modules: readonly string[]): number {
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `const t=process.hrtime.bigint();for(const m of ${JSON.stringify(modules)})require(m);console.log(Number(process.hrtime.bigint()-t)/1e6)`,
    ],
    {
      cwd: process.cwd(),
      env: {
        ...process.env,
        AWS_REGION: 'us-east-1',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    },
  );
  return Number(String(out).trim());
}

/**
 * Each function bundled as the CDK stack bundles it (esbuild, minified, CommonJS, node22, AWS SDK
 * external), its size, and the time a fresh `node` process takes to load it: the module-load part
 * of a cold start. The load includes requiring the AWS SDK clients the bundle names (from
 * node_modules here, from the runtime's copy in Lambda); `details` lists them per function, and
 * the peer column is those clients loaded alone in the same run: the part of the load that is the
 * SDK's, not this project's code.
 */
export const bundlesBench: BenchPart = {
  name: 'bundles',
  description: 'bundle size and cold module-load time per function (fresh node process)',
  async run() {
    // Inside the project, so a bundle's `require('@aws-sdk/…')` resolves like the Lambda runtime's.
    mkdirSync(join('node_modules', '.cache'), { recursive: true });
    const dir = mkdtempSync(join('node_modules', '.cache', 'bundles-'));
    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = {};
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const outfile = resolve(dir, `${key}.cjs`);
      const { metafile } = await build({
        metafile: true,
        entryPoints: [FUNCTIONS[key].entry],
        outfile,
        bundle: true,
        minify: true,
        keepNames: true, // as the stack bundles them (lib/constructs/functions.ts)
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        logLevel: 'silent',
        // As NodejsFunction does for Node.js 18+: the runtime ships the AWS SDK v3.
        external: ['@aws-sdk/*'],
      });
      const sizeKb = statSync(outfile).size / 1024;
      const requires = [
        ...new Set(
          Object.values(metafile.outputs).flatMap((o) =>
            o.imports.filter((i) => i.external && !i.path.startsWith('node:')).map((i) => i.path),
          ),
        ),
      ].sort();
      // Alternated, so a busy moment weighs on both alike: the bundle, then its SDK clients alone.
      const loads: number[] = [];
      const sdkLoads: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        loads.push(timeRequire([outfile]));
        sdkLoads.push(timeRequire(requires));
      }
      const load = percentile(loads, 50);
      const sdkLoad = percentile(sdkLoads, 50);
      const target = bundleTarget(key);
      rows.push({
        metric: `${key}: bundle`,
        value: sizeKb,
        unit: 'KiB',
        note: againstTarget(sizeKb, target.sizeKb, 'KiB'),
      });
      rows.push({
        metric: `${key}: cold module load (median of ${RUNS})`,
        value: load,
        unit: 'ms',
        peer: { name: 'its AWS SDK clients alone', value: sdkLoad, ratio: load / sdkLoad },
        note: `${againstTarget(load, target.loadMs, 'ms')}; ours ≈ ${Math.max(0, load - sdkLoad).toFixed(0)} ms`,
      });
      const inputs = Object.values(metafile.outputs)[0]?.inputs ?? {};
      details[key] = { sizeKb, loads, sdkLoads, requires, heaviestKb: heaviest(inputs) };
    }
    const over = rows.filter((r) => r.note?.startsWith('OVER')).map((r) => r.metric);
    if (over.length) console.log(`\nbundles: ${over.length} row(s) OVER target: ${over.join('; ')}`);
    // Load times read slower on a busy machine: say how busy it was, so a reader can tell.
    const machine = { loadAverage1m: loadavg()[0] ?? 0, cpus: availableParallelism() };
    if (machine.loadAverage1m > machine.cpus)
      console.log(
        `bundles: load average ${machine.loadAverage1m.toFixed(1)} on ${machine.cpus} CPUs: load times read high`,
      );
    return { rows, details: { ...details, machine } };
  },
};
