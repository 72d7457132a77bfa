import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { FUNCTIONS, type FunctionKey } from '../lambda/core/resources';
import { type BenchPart, type BenchRow, percentile } from './report';

const RUNS = 5;

/**
 * Each function bundled as the CDK stack bundles it (esbuild, minified, CommonJS, node22, AWS SDK
 * external), its
 * size, and the time a fresh `node` process takes to load it: the module-load part of a cold start.
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
      await build({
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
      rows.push({ metric: `${key}: bundle`, value: sizeKb, unit: 'KiB' });
      rows.push({ metric: `${key}: cold module load (median of ${RUNS})`, value: load, unit: 'ms' });
      details[key] = { sizeKb, loads };
    }
    return { rows, details };
  },
};
