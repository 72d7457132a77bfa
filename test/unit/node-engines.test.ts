import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** semver, as npm itself checks `engines` (a locked dependency of the toolchain; no types needed here). */
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const ROOT = process.cwd();
const json = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));

/**
 * Issue 23 item 9: the Node.js versions the README and package.json state are the ones every
 * dependency accepts, so `npm install` on the oldest of them warns no `EBADENGINE`.
 */
describe('the supported Node.js versions', () => {
  const range = json('package.json').engines.node as string;
  const oldest = semver.minVersion(range)!.version;

  it('satisfy every locked package that npm installs on Linux', () => {
    const packages = json('package-lock.json').packages as Record<
      string,
      { engines?: { node?: string }; optional?: boolean; os?: string[] }
    >;
    const refusing = Object.entries(packages)
      .filter(([, p]) => p.engines?.node && !(p.optional && p.os && !p.os.includes('linux')))
      .filter(([, p]) => !semver.satisfies(oldest, p.engines!.node!))
      .map(([path, p]) => `${path} (${p.engines!.node})`);
    expect(oldest).toBe('22.13.0');
    expect(refusing).toEqual([]);
  });

  it('are the ones the README states, and include the Lambda runtime', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('Requirements: Node.js 22.13 or newer');
    expect(readFileSync(join(ROOT, 'lib/constructs/functions.ts'), 'utf8')).toContain('Runtime.NODEJS_22_X');
    expect(semver.satisfies('22.13.0', range)).toBe(true);
    // Node 20 is past its end of life; cookie@2 (fauxqs → fastify → light-my-request) refuses it.
    expect(semver.satisfies('20.20.2', range)).toBe(false);
    expect(
      semver.satisfies('20.20.2', json('package-lock.json').packages['node_modules/cookie'].engines.node),
    ).toBe(false);
  });
});
