import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminResponse } from '../../lambda/core/admin';
import { renderAdminResponse } from '../../local/admin/admin-cli';
import { type LocalStackState, STATE_DIR_ENV } from '../../local/discovery';
import { closedPort, killGroup, ROOT, type Run, runCommand, startCommand } from '../support/commands';

/**
 * Every `npm run` command as a person runs it: spawned with tsx from a shell environment that has
 * no PORT, no JWT_SECRET and no SDK opt-out (the commands must not need the test's settings).
 */
const stateDir = mkdtempSync(join(tmpdir(), 'chat-limiter-state-'));

function personEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [STATE_DIR_ENV]: stateDir, ...extra };
  for (const name of ['PORT', 'JWT_SECRET', 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'])
    if (!(name in extra)) delete env[name];
  return env;
}

/** Runs a command to its end in a person's environment (killed after `timeoutMs`), with `input` on its stdin. */
function run(
  script: string,
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return runCommand(script, args, {
    env: personEnv(options.env),
    input: options.input,
    timeoutMs: options.timeoutMs ?? 25_000,
  });
}

const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>;
/** Every `npm run` command that is a program of bin/ (start, token, chat, admin, bench, smoke …). */
const COMMANDS = Object.entries(scripts).flatMap(([name, command]) => {
  const m = /^tsx (bin\/[\w-]+\.ts)$/.exec(command);
  return m ? [{ name, script: m[1]!, invocation: name === 'start' ? 'npm start' : `npm run ${name}` }] : [];
});

afterAll(() => {
  rmSync(stateDir, { recursive: true, force: true });
});

describe('every npm run command', () => {
  it('is found in package.json', () => {
    expect(COMMANDS.map((c) => c.name)).toEqual(
      expect.arrayContaining(['start', 'token', 'chat', 'admin', 'bench']),
    );
  });

  it.concurrent.each(COMMANDS)(
    '$invocation --help prints its usage and exits 0',
    async ({ script, invocation }) => {
      const result = await run(script, ['--help']);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout.startsWith(`usage: ${invocation}`)).toBe(true);
    },
  );

  it.concurrent.each(COMMANDS)(
    '$invocation with an unknown option says so and exits 2',
    async ({ script }) => {
      const result = await run(script, ['--no-such-option']);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain("'--no-such-option'");
    },
  );
});

describe('npm start with a bad LIMITS_CONFIG', () => {
  it.concurrent.each([
    ['{"tiers":{"gold":{}}}', /Unrecognized key: "gold"/],
    ['{"tiers":{"free":{"dailyCostUsd":-1}}}', /tiers\.free\.dailyCostUsd/],
    ['{"tiers":{"free":{"models":["gpt"]}}}', /tiers\.free\.models\[0\]: unknown model "gpt"/],
    ['{not json', /not JSON/],
    // A user's item could pass the size bound (issue 22).
    ['{"tiers":{"pro":{"requestsInFlight":5000}}}', /tiers\.pro: .* lower requestsInFlight/],
  ] as const)('stops before anything starts: %s', async (config, message) => {
    const result = await run('bin/local.ts', [], { env: { LIMITS_CONFIG: config, PORT: '0' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).not.toContain('ready:');
  });
});

describe('bad arguments', () => {
  it.concurrent.each([
    ['token', [], /--user is required/],
    ['token', ['--user', 'ann', '--tier', 'gold'], /--tier must be free, pro or enterprise/],
    ['token', ['--user', 'ann', '--expires', 'soon'], /--expires must be a positive number of seconds/],
    [
      'token',
      ['--user', 'ann', '--team', 'eng team'],
      /--team must be 1 to 64 of letters, digits, _ \. and -/,
    ],
    ['chat', ['--tier', 'gold'], /--tier must be free, pro or enterprise/],
    ['chat', ['--team', 'a'.repeat(65)], /--team must be 1 to 64 of letters, digits, _ \. and -/],
    ['chat', ['--url', 'localhost:3001'], /--url must be a ws:\/\/ or wss:\/\/ URL/],
    ['admin', [], /an operation is required: reset, set-tier/],
    ['admin', ['frobnicate', 'ann'], /unknown operation: frobnicate/],
    ['admin', ['usage'], /usage needs a userId/],
    ['admin', ['usage', 'ann', '--tier', 'pro'], /--tier does not apply to usage/],
    ['admin', ['set-tier', 'ann'], /set-tier needs --tier free\|pro\|enterprise/],
    ['admin', ['reset', 'ann'], /reset needs --scope messages\|tokens\|cost\|all/],
    ['admin', ['set-override', 'ann', '--limits', '{x'], /--limits is not JSON/],
    ['admin', ['set-override', 'ann', '--burst', '1', '--expires', 'soon'], /--expires: not a duration/],
    [
      'bench',
      ['nope'],
      /unknown part\(s\): nope; the parts are limiter, global, gateway, queue, load, bundles/,
    ],
  ] as const)('npm run %s %j says what is wrong and exits 2', async (name, args, message) => {
    const result = await run(`bin/${name}.ts`, args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('npm run token --team signs the team claim (SPEC §9.4)', async () => {
    const result = await run('bin/token.ts', ['--user', 'ann', '--team', 'eng.ops-1', '--secret', 's3cret']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const payload = JSON.parse(
      Buffer.from(result.stdout.trim().split('.')[1]!, 'base64url').toString('utf8'),
    );
    expect(payload).toMatchObject({ sub: 'ann', team: 'eng.ops-1' });
    expect('tier' in payload).toBe(false);
  });

  it('npm start with a PORT that is not a port says so before starting anything', async () => {
    const result = await run('bin/local.ts', [], { env: { PORT: 'abc' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("PORT must be a port number (0-65535, 0 picks a free one), got 'abc'");
  });
});

/** SPEC §8 v3: the local commands reach the `npm start` that runs, whatever its PORT. */
describe('local commands find the running npm start', () => {
  let stack: ChildProcess;
  let port: number;
  const stateFile = join(stateDir, 'local.json');

  beforeAll(async () => {
    // Its own embedded emulators and a free port, as a person's `PORT=0 npm start` would.
    stack = startCommand('bin/local.ts', [], personEnv({ PORT: '0' }));
    let out = '';
    port = await new Promise<number>((resolve, reject) => {
      stack.stdout!.on('data', (d) => {
        out += String(d);
        const ready = /^ready: ws:\/\/localhost:(\d+)\/local$/m.exec(out);
        if (ready) resolve(Number(ready[1]));
      });
      stack.on('exit', (code) => reject(new Error(`npm start exited (${code}) before ready:\n${out}`)));
    });
  }, 60_000);

  afterAll(() => {
    if (stack) killGroup(stack);
  });

  it('npm start leaves its port and pid in a git-ignored state file', () => {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalStackState;
    expect(state).toMatchObject({
      port,
      httpUrl: `http://localhost:${port}`,
      wsUrl: `ws://localhost:${port}/local`,
      jwtSecret: 'development',
    });
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('.chat-limiter/');
  });

  it('admin reaches it without PORT, and prints no AWS SDK notice', async () => {
    const result = await run('bin/admin.ts', ['usage', 'finder']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('usage finder: ok (user not seen before)');
  });

  it('chat reaches it without PORT and signs a token it accepts', async () => {
    const result = await run('bin/chat.ts', ['--user', 'finder-chat'], { input: 'hello from the shell\n' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`connected to ws://localhost:${port}/local`);
    expect(result.stdout).toContain('assistant> Echo: hello from the shell');
  });

  it('token prints only the token', async () => {
    const result = await run('bin/token.ts', ['--user', 'finder']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  });

  it('PORT wins over the running stack, and a refused connection says where it went and why', async () => {
    const other = await closedPort();
    const admin = await run('bin/admin.ts', ['usage', 'finder'], { env: { PORT: String(other) } });
    expect(admin.code).toBe(1);
    expect(admin.stderr).toContain(`nothing answers at http://localhost:${other} (from PORT=${other})`);
    expect(admin.stderr).toContain('unset PORT');
    expect(admin.stderr).not.toContain('ECONNREFUSED');
    const chat = await run('bin/chat.ts', [], { env: { PORT: String(other) } });
    expect(chat.code).toBe(1);
    expect(chat.stdout).toContain(`nothing answers at http://localhost:${other} (from PORT=${other})`);
  });

  it('--endpoint wins over PORT', async () => {
    const result = await run('bin/admin.ts', ['usage', 'finder', '--endpoint', `http://localhost:${port}`], {
      env: { PORT: String(await closedPort()) },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('usage finder: ok');
  });

  it('once npm start stops, its state file is gone and the commands say exactly what to set', async () => {
    const exited = new Promise((r) => stack.once('exit', r));
    stack.kill('SIGTERM');
    await exited;
    expect(existsSync(stateFile)).toBe(false);
    const result = await run('bin/admin.ts', ['usage', 'finder']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no local stack is running (no ');
    expect(result.stderr).toContain('Start it with `npm start`');
    expect(result.stderr).toContain('set PORT to the port `npm start` printed');
    expect(result.stderr).toContain('--endpoint http://localhost:PORT');
  });
});

describe('a state file left behind', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function stateDirWith(state: Partial<LocalStackState>): string {
    const dir = mkdtempSync(join(tmpdir(), 'chat-limiter-left-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'local.json'),
      JSON.stringify({
        pid: process.pid,
        port: 1,
        httpUrl: 'http://localhost:1',
        wsUrl: 'ws://localhost:1/local',
        jwtSecret: 'development',
        startedAt: new Date().toISOString(),
        ...state,
      }),
    );
    return dir;
  }

  it('by an npm start that was killed is recognised by its dead pid', async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    const dir = stateDirWith({ pid: gone.pid!, port: 3999 });
    const result = await run('bin/admin.ts', ['usage', 'ann'], { env: { [STATE_DIR_ENV]: dir } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `names npm start pid ${gone.pid} on port 3999, which is no longer running`,
    );
  });

  it('by an npm start with its own JWT_SECRET makes token ask for that secret', async () => {
    const dir = stateDirWith({ jwtSecret: 'custom' });
    const refused = await run('bin/token.ts', ['--user', 'ann'], { env: { [STATE_DIR_ENV]: dir } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'signs tokens with its own JWT_SECRET: set JWT_SECRET to the same value',
    );
    const signed = await run('bin/token.ts', ['--user', 'ann'], {
      env: { [STATE_DIR_ENV]: dir, JWT_SECRET: 'the-same-secret' },
    });
    expect(signed.code).toBe(0);
  });
});

describe('npm run admin output', () => {
  const nowMs = Date.UTC(2026, 0, 15, 10, 0, 0);
  const usage = (override: unknown): AdminResponse => ({
    ok: true,
    operation: 'usage',
    userId: 'ann',
    result: {
      known: true,
      override,
      status: {
        tier: 'free',
        limits: [{ name: 'messageRate', limit: 5, used: 1, remaining: 4, resetAt: nowMs + 12_000 }],
        queue: { queued: 0 },
      },
    },
  });

  it('shows an active override and when it expires', () => {
    const text = renderAdminResponse(
      usage({ limits: { messagesPerMinute: 5, burst: 0 }, expiresAtEpochMs: nowMs + 7_140_000 }),
      nowMs,
    );
    expect(text).toContain(
      'override: messagesPerMinute 5, burst 0 (expires 2026-01-15T11:59:00.000Z, in 1 h 59 min)',
    );
  });

  it('says where the tier comes from', () => {
    const from = (tierSource: string) => {
      const response = usage(null) as Extract<AdminResponse, { ok: true }>;
      return renderAdminResponse(
        { ...response, result: { ...(response.result as object), tierSource } },
        nowMs,
      );
    };
    expect(from('last token')).toContain('tier: free (from the last token seen)   queued: 0');
    expect(from('record')).toContain('tier: free (set by an admin)   queued: 0');
    expect(from('default')).toContain('tier: free (default: no record, no token seen)   queued: 0');
  });

  it('says when there is no override, and when one has expired', () => {
    expect(renderAdminResponse(usage(null), nowMs)).toContain('override: none');
    expect(
      renderAdminResponse(usage({ limits: { burst: 0 }, expiresAtEpochMs: nowMs - 1 }), nowMs),
    ).toContain('override: burst 0 (expired 2026-01-15T09:59:59.999Z, no longer applies)');
  });
});
