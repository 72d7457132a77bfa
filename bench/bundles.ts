import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { FUNCTIONS, type FunctionKey } from '../lambda/core/resources';
import { type BenchPart, type BenchRow, percentile } from './report';

const RUNS = 9;

/**
 * Issue 13's targets for the functions on the connection path, which run on every connect: their
 * cold start is felt by every client. Reported against, never asserted (timings vary by machine).
 */
const CONNECTION_PATH_TARGETS: Partial<Record<FunctionKey, { sizeKb: number; loadMs: number }>> = {
  authorizer: { sizeKb: 250, loadMs: 80 },
  connect: { sizeKb: 250, loadMs: 80 },
  disconnect: { sizeKb: 250, loadMs: 80 },
};

/**
 * Each function bundled as the CDK stack bundles it (esbuild, minified, CommonJS, node22, AWS SDK
 * external), its size, and the time a fresh `node` process takes to load it: the module-load part
 * of a cold start. The load includes requiring the AWS SDK clients the bundle names (from
 * node_modules here, from the runtime's copy in Lambda); `details` lists them per function.
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
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        logLevel: 'silent',
        // As NodejsFunction does for Node.js 18+: the runtime ships the AWS SDK v3.
        external: ['@aws-sdk/*'],
      });
      const sizeKb = statSync(outfile).size / 1024;
      const loads: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const out = execFileSync(
          process.execPath,
          [
            '-e',
            `const t=process.hrtime.bigint();require(${JSON.stringify(outfile)});console.log(Number(process.hrtime.bigint()-t)/1e6)`,
          ],
          {
            env: {
              ...process.env,
              AWS_REGION: 'us-east-1',
              AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
            },
          },
        );
        loads.push(Number(String(out).trim()));
      }
      const load = percentile(loads, 50);
      const target = CONNECTION_PATH_TARGETS[key];
      const against = (value: number, limit: number | undefined, unit: string) =>
        limit === undefined ? undefined : `${value <= limit ? 'within' : 'OVER'} target ≤ ${limit} ${unit}`;
      rows.push({
        metric: `${key}: bundle`,
        value: sizeKb,
        unit: 'KiB',
        note: against(sizeKb, target?.sizeKb, 'KiB'),
      });
      rows.push({
        metric: `${key}: cold module load (median of ${RUNS})`,
        value: load,
        unit: 'ms',
        note: against(load, target?.loadMs, 'ms'),
      });
      const requires = Object.values(metafile.outputs).flatMap((o) =>
        o.imports.filter((i) => i.external && !i.path.startsWith('node:')).map((i) => i.path),
      );
      details[key] = { sizeKb, loads, requires: [...new Set(requires)].sort() };
    }
    return { rows, details };
  },
};
