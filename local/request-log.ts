import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalRoute } from './gateway';

/**
 * The local stack's request log (SPEC §9.4): the functions' own structured log lines about
 * requests — the message handler's `sendMessage` (who, when, tier, model) and the reply runner's
 * `request settled` (the tokens it used) — taken from what they print, as CloudWatch Logs takes
 * them in AWS. No contents: those lines carry ids, tiers and counts only. Kept in memory, and
 * appended to a file when the stack keeps its data on disk (`DATA_DIR`), so a restart keeps them.
 *
 *   GET /local-stack/requests → { lines: [...] }   (`npm run admin -- export-traffic` reads it)
 */
export const REQUESTS_PATH = '/local-stack/requests';

/** The log lines kept: the request's arrival and its settle. */
export const REQUEST_LOG_MESSAGES: ReadonlySet<string> = new Set(['sendMessage', 'request settled']);

/** How many lines the stack keeps in memory (the oldest go first). */
export const KEPT_REQUEST_LINES = 500_000;

export type RequestLogLine = Readonly<Record<string, unknown>>;

export class LocalRequestLog {
  private readonly lines: RequestLogLine[] = [];

  /** @param file where the lines also go (and are read back from at start), if anywhere */
  constructor(private readonly file?: string) {
    if (file && existsSync(file)) {
      for (const raw of readFileSync(file, 'utf8').split('\n')) this.take(raw, false);
    }
  }

  /** The route of {@link REQUESTS_PATH}. */
  get routes(): Readonly<Record<string, LocalRoute>> {
    return {
      [REQUESTS_PATH]: async ({ method }) =>
        method === 'GET'
          ? { status: 200, body: { lines: this.lines } }
          : { status: 405, body: { message: 'GET' } },
    };
  }

  /**
   * Reads what this process prints (the handlers run in it, and Powertools writes each log line to
   * stdout) and keeps the request lines. Returns what puts stdout back.
   */
  tapStdout(): () => void {
    const stdout = process.stdout;
    const original = stdout.write;
    const write = (chunk: unknown, ...rest: unknown[]): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      if (text.includes('"message"')) for (const raw of text.split('\n')) this.take(raw, true);
      return (original as (...args: unknown[]) => boolean).call(stdout, chunk, ...rest);
    };
    stdout.write = write as typeof stdout.write;
    return () => {
      if (stdout.write === write) stdout.write = original;
    };
  }

  private take(raw: string, append: boolean): void {
    if (!raw.startsWith('{')) return;
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch {
      return; // not a structured log line: not ours to keep
    }
    if (typeof line !== 'object' || line === null) return;
    const message = (line as RequestLogLine).message;
    if (typeof message !== 'string' || !REQUEST_LOG_MESSAGES.has(message)) return;
    this.lines.push(line as RequestLogLine);
    if (this.lines.length > KEPT_REQUEST_LINES) this.lines.shift();
    if (append && this.file) appendFileSync(this.file, `${raw}\n`);
  }
}

/** The stack's request log, reading stdout from now on (in `dataDir` too, when given) until `stop`. */
export function startRequestLog(dataDir?: string): {
  readonly routes: LocalRequestLog['routes'];
  readonly stop: () => void;
} {
  const log = new LocalRequestLog(dataDir === undefined ? undefined : join(dataDir, 'requests.jsonl'));
  return { routes: log.routes, stop: log.tapStdout() };
}
