import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import { STATE_DIR_ENV } from '../../local/discovery';
import { killGroup, runCommand, startCommand } from '../support/commands';
import { TestClient } from '../support/ws-client';

/**
 * SPEC §9.5 "Local configuration is checked": every variable of `npm start` is validated before
 * anything starts, like LIMITS_CONFIG (commands.test.ts): exit 2, one line naming the variable.
 */
const stateDir = mkdtempSync(join(tmpdir(), 'chat-limiter-settings-'));
const dataDir = mkdtempSync(join(tmpdir(), 'chat-limiter-data-'));
afterAll(() => {
  for (const dir of [stateDir, dataDir]) rmSync(dir, { recursive: true, force: true });
});

function startWith(extra: Record<string, string>) {
  const env: NodeJS.ProcessEnv = { ...process.env, [STATE_DIR_ENV]: stateDir, PORT: '0', ...extra };
  return runCommand('bin/local.ts', [], { env, timeoutMs: 25_000 });
}

describe('npm start with a bad environment variable', () => {
  it.concurrent.each([
    [{ MODEL: 'gpt4' }, 'MODEL: echo or bedrock (default echo), got "gpt4"'],
    [{ MODEL: 'bedrock' }, 'BEDROCK_MODEL_ID is required'],
    [{ MAX_QUEUED_PER_USER: 'ten' }, 'MAX_QUEUED_PER_USER: an integer ≥ 0 (default 10), got "ten"'],
    [{ MAX_QUEUED_PER_USER: '-1' }, 'MAX_QUEUED_PER_USER: an integer ≥ 0 (default 10), got "-1"'],
    [{ LIMITER_FAIL_POLICY: 'maybe' }, 'LIMITER_FAIL_POLICY: open or closed (default open), got "maybe"'],
    [{ ECHO_DELAY_MS: '-3' }, 'ECHO_DELAY_MS: an integer ≥ 0 (default 20), got "-3"'],
    [{ MAX_MESSAGE_CHARS: '0' }, 'MAX_MESSAGE_CHARS: an integer ≥ 1 (default 8000), got "0"'],
    [{ CONVERSATION_TURNS: 'all' }, 'CONVERSATION_TURNS: an integer ≥ 0 (default 20), got "all"'],
    [
      { CONVERSATION_TTL_SECONDS: '30' },
      'CONVERSATION_TTL_SECONDS: an integer ≥ 60 (default 86400), got "30"',
    ],
    [{ MAX_QUEUE_WAIT_SECONDS: '1.5' }, 'MAX_QUEUE_WAIT_SECONDS: an integer ≥ 0 (default 900), got "1.5"'],
    [
      { CONNECT_LIMIT_PER_MINUTE: 'many' },
      'CONNECT_LIMIT_PER_MINUTE: an integer ≥ 1 (default 20), got "many"',
    ],
    [{ LIMITS_CONFIG: '[]' }, 'LIMITS_CONFIG: invalid limits configuration: a JSON object'],
    [{ DYNAMODB_ENDPOINT: 'localhost:8000' }, 'DYNAMODB_ENDPOINT: an http(s) URL, got "localhost:8000"'],
    [{ DATA_DIR: join(stateDir, 'a-file') }, 'DATA_DIR: a directory (created if missing), got a file'],
    [
      { DATA_DIR: stateDir, DYNAMODB_ENDPOINT: 'http://127.0.0.1:1' },
      'with DYNAMODB_ENDPOINT set, leave it unset',
    ],
  ] as const)('stops before anything starts: %j', async (variable, message) => {
    writeFileSync(join(stateDir, 'a-file'), '');
    const result = await startWith(variable);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    // One line: `npm start: invalid configuration: NAME: what it allows, got "value"`.
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(message);
  });
});

/** SPEC §9.5 "Restarts are honest": the banner says where the data lives; DATA_DIR keeps the tables. */
/** `hello` and its echo, in tokens as the echo model counts them. */
const EXPECTED_TOKENS = 5;

describe('npm start with DATA_DIR, across a restart', () => {
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    [STATE_DIR_ENV]: stateDir,
    PORT: '0',
    DATA_DIR: dataDir,
  });
  let stack: ChildProcess | undefined;
  afterAll(() => {
    if (stack) killGroup(stack);
  });

  /** Starts `npm start` and resolves with its port and banner once it says `ready:`. */
  function start(): Promise<{ port: number; banner: string }> {
    const child = startCommand('bin/local.ts', [], env());
    stack = child;
    let out = '';
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d) => {
        out += String(d);
        const ready = /^ready: ws:\/\/localhost:(\d+)\/local$/m.exec(out);
        if (ready) resolve({ port: Number(ready[1]), banner: out });
      });
      child.on('exit', (code) => reject(new Error(`npm start exited (${code}) before ready:\n${out}`)));
    });
  }
  async function stop(): Promise<void> {
    const child = stack!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    stack = undefined;
  }
  const admin = async (port: number, ...args: string[]) => {
    const run = await runCommand(
      'bin/admin.ts',
      [...args, '--endpoint', `http://localhost:${port}`, '--json'],
      {
        env: env(),
        timeoutMs: 20_000,
      },
    );
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout).result;
  };

  it('keeps usage, tier and top across a stop and a start', async () => {
    const first = await start();
    expect(first.banner).toContain(`storage:   tables in ${dataDir} (DATA_DIR); queues in memory`);
    const client = await TestClient.connect(
      `ws://localhost:${first.port}/local`,
      await signDevToken({ userId: 'kept', tier: 'pro' }),
    );
    await client.request({ action: 'sendMessage', requestId: 'k1', message: 'hello' }, 'message_complete');
    client.close();
    await stop();

    const second = await start();
    const usage = await admin(second.port, 'usage', 'kept');
    expect(usage.known).toBe(true);
    expect([usage.status.tier, usage.tierSource]).toEqual(['pro', 'last token']);
    const tokens = usage.status.limits.find((l: { name: string }) => l.name === 'dailyTokens').used;
    const top = await admin(second.port, 'top');
    expect(
      top.users.map((u: { userId: string; messages: number; tokens: number }) => [
        u.userId,
        u.messages,
        u.tokens,
      ]),
    ).toEqual([['kept', 1, tokens]]);
    expect(tokens).toBe(EXPECTED_TOKENS);
    await stop();
  }, 60_000);
});

describe('npm start without DATA_DIR', () => {
  it('says its data lives in memory', async () => {
    const { DATA_DIR: _unset, ...rest } = process.env;
    const child = startCommand('bin/local.ts', [], { ...rest, [STATE_DIR_ENV]: stateDir, PORT: '0' });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d) => {
          out += String(d);
          if (out.includes('ready:')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      expect(out).toContain(
        'storage:   in memory: usage, tiers and queues are lost when this stops (DATA_DIR=PATH keeps the tables)',
      );
    } finally {
      killGroup(child);
    }
  }, 30_000);
});
