import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, type FunctionKey } from '../../lambda/core/resources';
import { DEV_JWT_SECRET } from '../../local/dev-tokens';

/**
 * Bundles a function entry the way the CDK stack does (NodejsFunction: esbuild, CJS, node22, with a
 * source map) and returns everything that would be uploaded. The map matters: its sourcesContent
 * holds every bundled source file whole, so a constant tree-shaken out of the code still ships
 * there (the secret did, in the authorizer's index.js.map, while it lived in jwt-verifier.ts).
 */
async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    outfile: 'bundle/index.js',
    bundle: true,
    minify: true,
    sourcemap: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    write: false,
    logLevel: 'silent',
    external: ['@aws-sdk/*'],
  });
  const names = result.outputFiles.map((f) => f.path.split('/').pop()).sort();
  expect(names).toEqual(['index.js', 'index.js.map']);
  return result.outputFiles.map((f) => f.text).join('\n');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the development JWT secret', () => {
  it('is not in the authorizer bundle', async () => {
    const code = await bundle(FUNCTIONS.authorizer.entry);
    expect(code).toContain('HS256'); // the verifier is really in there
    expect(code).not.toContain(DEV_JWT_SECRET);
  }, 60_000);

  it.each(Object.keys(FUNCTIONS).filter((k) => k !== 'authorizer') as FunctionKey[])(
    'is not in the %s bundle either',
    async (key) => {
      expect(await bundle(FUNCTIONS[key].entry)).not.toContain(DEV_JWT_SECRET);
    },
    60_000,
  );

  it('is not reachable from Lambda code: nothing under lambda/ imports local/', () => {
    const offenders = sourceFiles('lambda').filter((file) =>
      /from\s+['"](\.\.\/)+local\//.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
});
