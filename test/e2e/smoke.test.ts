import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { closedPort, type Run, runCommand } from '../support/commands';
import { newUser, startTestStack } from '../support/local-stack';

// `npm run smoke` as a person runs it, against a local stack and against nothing at all.

/** Runs `npm run smoke` with no PORT set; killed after `timeoutMs`, before the test's own timeout. */
function smoke(args: readonly string[], timeoutMs: number): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PORT;
  return runCommand('bin/smoke.ts', args, { env, timeoutMs });
}

describe('npm run smoke', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('passes every check against a running stack, one line per check, and exits 0', async () => {
    const { userId, token } = await newUser('smoke');
    const result = await smoke(['--url', stack.wsUrl, '--token', token], 80_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`smoke: ${stack.wsUrl} as ${userId} (--url)`);
    expect(lines.slice(1, -1).map((l) => /^(ok {2}|FAIL )(.+?) \(/.exec(l)?.slice(1, 3))).toEqual([
      ['ok  ', 'health'],
      ['ok  ', 'connect'],
      ['ok  ', 'chat reply'],
      ['ok  ', 'burst queues'],
      ['ok  ', 'status'],
      ['ok  ', 'admin usage'],
    ]);
    expect(result.stdout).toContain('chat reply');
    expect(result.stdout).toContain('"Echo: smoke check: hello"');
    expect(result.stdout).toMatch(/ok {2}burst queues \([\d.]+ s\): 30 sent, [1-9]\d* queued, 30 replied/);
    expect(result.stdout).toMatch(
      new RegExp(`ok {2}admin usage \\(\\d+ ms\\): ${userId}: messageRate used \\d+`),
    );
    expect(lines.at(-1)).toBe('smoke: all 6 checks passed');
  }, 90_000);

  it('fails fast and clearly against a port where nothing listens', async () => {
    const port = await closedPort();
    const { token } = await newUser('smoke-down');
    const startedMs = Date.now();
    const result = await smoke(
      ['--url', `ws://127.0.0.1:${port}/local`, '--token', token, '--timeout', '5'],
      20_000,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `FAIL health: nothing answers at http://127.0.0.1:${port}/health (connection refused)`,
    );
    expect(result.stdout).not.toContain('ok  ');
    expect(result.stderr).toContain('smoke: failed at "health"');
    // Well inside the kill timer: it did not wait for any timeout.
    expect(Date.now() - startedMs).toBeLessThan(15_000);
  }, 25_000);

  it('says what is wrong with bad arguments and exits 2', async () => {
    const result = await smoke(['--url', 'wss://example.com/prod'], 20_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--url wss://… needs --stack NAME or --function ADMIN_FUNCTION');
  }, 25_000);
});
