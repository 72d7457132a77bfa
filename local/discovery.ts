import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { LOCAL_STAGE } from '../lambda/core/resources';
import { LocalError } from './errors';

/**
 * How the local commands (`npm run admin`, `chat`, `token`) find the `npm start` that is running,
 * whatever its `PORT` (SPEC §8 v3): `npm start` leaves a small state file with its port and pid
 * while it runs; the commands read it and check that the pid is alive. `--endpoint`/`--url` or
 * `PORT` always win, and when nothing is found the commands say exactly what to set instead of
 * trying a default port, so they never act silently on some other stack.
 */

/** Where the state file lives. @default `.chat-limiter/` at the root of this checkout */
export const STATE_DIR_ENV = 'CHAT_LIMITER_STATE_DIR';

const stateSchema = z.object({
  pid: z.number().int().positive(),
  port: z.number().int().min(1).max(65_535),
  httpUrl: z.string(),
  wsUrl: z.string(),
  /** Whether tokens must be signed with the stack's own `JWT_SECRET` (never the secret itself). */
  jwtSecret: z.enum(['development', 'custom']),
  startedAt: z.string(),
});

export type LocalStackState = z.infer<typeof stateSchema>;

/** The running local stack a command talks to, and how it was found (for messages). */
export interface LocalTarget {
  /** `http://localhost:PORT`: the Lambda Invoke API and `@connections`. */
  readonly httpUrl: string;
  /** `ws://localhost:PORT/local`. */
  readonly wsUrl: string;
  /** `--endpoint`, `PORT=3002`, or `npm start (pid 123, .chat-limiter/local.json)`. */
  readonly source: string;
  /** Present when found through the state file. */
  readonly state?: LocalStackState;
}

/** Nothing says where a local stack runs: the message says what to set. */
export class LocalStackNotFoundError extends LocalError {}

export function stateFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env[STATE_DIR_ENV] || fileURLToPath(new URL('../.chat-limiter', import.meta.url));
  return join(dir, 'local.json');
}

/** Written by `npm start` once it accepts connections; atomic, so a reader never sees half a file. */
export function writeLocalState(state: LocalStackState, env: NodeJS.ProcessEnv = process.env): string {
  const file = stateFilePath(env);
  mkdirSync(join(file, '..'), { recursive: true });
  // A second `npm start` of this checkout takes the file over; it gives it back when it stops.
  try {
    const previous = readState(file);
    if (previous && previous.pid !== state.pid && isAlive(previous.pid)) displaced = previous;
  } catch {
    // an unreadable file is simply replaced
  }
  const partial = `${file}.${state.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(partial, file);
  return file;
}

/**
 * Removed by `npm start` on exit, only if the file is still its own: a second `npm start` of the
 * same checkout may have replaced it, and that one is still running.
 */
export function removeLocalState(pid: number = process.pid, env: NodeJS.ProcessEnv = process.env): void {
  const file = stateFilePath(env);
  let owner: number | undefined;
  try {
    owner = readState(file)?.pid;
  } catch {
    return; // not a state file this process wrote: leave it for whoever did
  }
  if (owner !== pid) return;
  if (displaced && isAlive(displaced.pid)) writeLocalState(displaced, env);
  else rmSync(file, { force: true });
}

/** The state of a `npm start` still running that this one's state file replaced. */
let displaced: LocalStackState | undefined;

export interface FindOptions {
  /** `--endpoint http://localhost:3002` (admin) or the origin of `--url` (chat): used as given. */
  readonly endpoint?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** How to point this command at a stack by hand, e.g. `--endpoint http://localhost:PORT`. */
  readonly flag: string;
  readonly isAlive?: (pid: number) => boolean;
}

/** `--endpoint`, else `PORT`, else the state file of a live `npm start`; else throws what to set. */
export function findLocalStack(options: FindOptions): LocalTarget {
  const env = options.env ?? process.env;
  if (options.endpoint) return targetFromUrl(options.endpoint, options.flag.split(' ')[0]!);
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      throw new LocalStackNotFoundError(`PORT must be a port number (1-65535), got '${env.PORT}'`);
    return { ...urlsFor(`http://localhost:${port}`), source: `PORT=${port}` };
  }
  const file = stateFilePath(env);
  const shown = displayPath(file);
  const howTo =
    `Start it with \`npm start\` (in another terminal), or point this command at a running one:\n` +
    `  set PORT to the port \`npm start\` printed (PORT=3002 npm run …), or pass ${options.flag}`;
  let state: LocalStackState | undefined;
  try {
    state = readState(file);
  } catch (err) {
    throw new LocalStackNotFoundError(`${shown} is unreadable (${(err as Error).message}).\n${howTo}`);
  }
  if (!state) throw new LocalStackNotFoundError(`no local stack is running (no ${shown}).\n${howTo}`);
  if (!(options.isAlive ?? isAlive)(state.pid)) {
    throw new LocalStackNotFoundError(
      `no local stack is running: ${shown} names npm start pid ${state.pid} on port ${state.port}, ` +
        `which is no longer running.\n${howTo}`,
    );
  }
  return { httpUrl: state.httpUrl, wsUrl: state.wsUrl, source: `npm start, pid ${state.pid}`, state };
}

/** The message for a refused connection: where it went and why that address was chosen. */
export function unreachableMessage(target: LocalTarget): string {
  const where = `nothing answers at ${target.httpUrl} (from ${target.source}): is \`npm start\` running there?`;
  if (target.state) return `${where} It may have just stopped; start it again with \`npm start\`.`;
  const drop = target.source.startsWith('PORT=') ? 'unset PORT' : `leave out ${target.source}`;
  return `${where} To use the \`npm start\` of this checkout wherever it runs, ${drop}.`;
}

/** Whether an error is a refused TCP connection (no stack listening), through any wrapper. */
export function isConnectionRefused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
    if (e instanceof AggregateError && e.errors.some(isConnectionRefused)) return true;
  }
  return false;
}

function targetFromUrl(endpoint: string, flag: string): LocalTarget {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new LocalStackNotFoundError(
      `${flag} must be a URL such as http://localhost:3002, got '${endpoint}'`,
    );
  }
  return { ...urlsFor(url.origin), source: flag };
}

function urlsFor(origin: string): { httpUrl: string; wsUrl: string } {
  const http = new URL(origin);
  const ws = http.protocol === 'https:' ? 'wss:' : 'ws:';
  return { httpUrl: http.origin, wsUrl: `${ws}//${http.host}/${LOCAL_STAGE}` };
}

function readState(file: string): LocalStackState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return stateSchema.parse(JSON.parse(text));
}

/** Signal 0 checks that the process exists; EPERM means it exists but belongs to someone else. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
    throw err;
  }
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

/**
 * Why a development token signed with this environment's secret would be refused by the local
 * stack it is for, or undefined when it would not (or when that stack's secret is not known).
 */
export function tokenSecretMismatch(
  target: LocalTarget | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const state = target?.state;
  if (!state) return undefined;
  const stack = `the running \`npm start\` (pid ${state.pid}, port ${state.port})`;
  if (state.jwtSecret === 'custom' && !env.JWT_SECRET)
    return `${stack} signs tokens with its own JWT_SECRET: set JWT_SECRET to the same value here`;
  if (state.jwtSecret === 'development' && env.JWT_SECRET)
    return `${stack} uses the development secret, but JWT_SECRET is set here: unset it`;
  return undefined;
}
