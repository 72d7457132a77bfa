import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The project's commands as a person runs them: `tsx bin/<name>.ts` from the project root. */
export const ROOT = process.cwd();
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** tsx runs the script in a child node process: each command gets its own process group. */
export function startCommand(script: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(TSX, [script, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** Kills a command and the node process tsx started for it (SIGKILL is not passed on by tsx). */
export function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Runs a command to its end with `input` on its stdin; killed after `timeoutMs` (set it below the
 * test's own timeout, so a hang fails clearly).
 */
export function runCommand(
  script: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; input?: string; timeoutMs: number },
): Promise<Run> {
  const child = startCommand(script, args, options.env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += String(d);
  });
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  child.stdin!.end(options.input ?? '');
  const timer = setTimeout(() => killGroup(child), options.timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on: bound by the OS, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
