import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';

/** `npm run smoke` as a person runs it, against a local stack and against nothing at all. */
const ROOT = process.cwd();
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

function smoke(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PORT;
  const child = spawn(TSX, ['bin/smoke.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += String(d);
  });
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  // Killed (with the node process tsx started) before the test's own timeout, so a hang fails clearly.
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
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
