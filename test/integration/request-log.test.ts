import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRequestLog, REQUESTS_PATH } from '../../local/request-log';

const body = async (log: LocalRequestLog) =>
  (await log.routes[REQUESTS_PATH]!({ method: 'GET', url: new URL('http://x/'), body: '' })).body as {
    lines: Record<string, unknown>[];
  };

/** The local stack's request log: what the functions print, kept, and on disk with DATA_DIR. */
describe('LocalRequestLog', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the request lines printed while tapped, appends them to its file, and reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'request-log-'));
    dirs.push(dir);
    const file = join(dir, 'requests.jsonl');
    const log = new LocalRequestLog(file);
    const untap = log.tapStdout();
    const settled = {
      level: 'INFO',
      message: 'request settled',
      userId: 'u',
      requestId: 'r',
      inputTokens: 3,
      outputTokens: 4,
    };
    try {
      process.stdout.write(`${JSON.stringify(settled)}\n`);
      process.stdout.write(`${JSON.stringify({ level: 'INFO', message: 'connected', userId: 'u' })}\n`);
      process.stdout.write('not json at all\n');
    } finally {
      untap();
    }
    process.stdout.write(`${JSON.stringify({ ...settled, requestId: 'after' })}\n`);
    expect((await body(log)).lines).toEqual([settled]);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(settled)}\n`);
    // A restart with the same DATA_DIR reads them back.
    expect((await body(new LocalRequestLog(file))).lines).toEqual([settled]);
  });
});
