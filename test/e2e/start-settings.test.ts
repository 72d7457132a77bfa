import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STATE_DIR_ENV } from '../../local/discovery';
import { runCommand } from '../support/commands';

/**
 * SPEC §9.5 "Local configuration is checked": every variable of `npm start` is validated before
 * anything starts, like LIMITS_CONFIG (commands.test.ts): exit 2, one line naming the variable.
 */
const stateDir = mkdtempSync(join(tmpdir(), 'chat-limiter-settings-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

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
    [{ MAX_QUEUE_WAIT_SECONDS: '1.5' }, 'MAX_QUEUE_WAIT_SECONDS: an integer ≥ 0 (default 900), got "1.5"'],
    [
      { CONNECT_LIMIT_PER_MINUTE: 'many' },
      'CONNECT_LIMIT_PER_MINUTE: an integer ≥ 1 (default 20), got "many"',
    ],
    [{ LIMITS_CONFIG: '[]' }, 'LIMITS_CONFIG: invalid limits configuration: a JSON object'],
    [{ DYNAMODB_ENDPOINT: 'localhost:8000' }, 'DYNAMODB_ENDPOINT: an http(s) URL, got "localhost:8000"'],
  ] as const)('stops before anything starts: %j', async (variable, message) => {
    const result = await startWith(variable);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    // One line: `npm start: invalid configuration: NAME: what it allows, got "value"`.
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(message);
  });
});
