import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_DIR_ENV } from '../../local/discovery';
import { killGroup, startCommand } from './commands';

/**
 * `npm start` as a person runs it (its own process, its own embedded emulators, data in memory),
 * behind a TCP proxy on 127.0.0.1 whose address stays the same across restarts, so a client can
 * reconnect to the stack that replaced the one it knew (issue 23: clients after a restart).
 *
 * `crash()` kills the stack's process group (SIGKILL: nothing is flushed, every connection drops
 * without a close frame, 1006, and every request it held is gone with its emulators); until
 * `start()` has a new stack ready, the proxy resets whatever connects, as a dead port would.
 */
export interface RestartableStack {
  readonly httpUrl: string;
  readonly wsUrl: string;
  crash(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableStack(environment: Record<string, string>): Promise<RestartableStack> {
  const stateDir = mkdtempSync(join(tmpdir(), 'chat-limiter-restart-'));
  const env: NodeJS.ProcessEnv = { ...process.env, ...environment, PORT: '0', [STATE_DIR_ENV]: stateDir };
  let child: ChildProcess | undefined;
  let target: number | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (target === undefined) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    // Either side gone: the other goes too (a crashed server's peer sees its connection reset).
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  const crash = (): void => {
    target = undefined;
    if (child) killGroup(child);
    child = undefined;
    for (const s of sockets) s.destroy();
  };
  const start = async (): Promise<void> => {
    const started = startCommand('bin/local.ts', [], env);
    child = started;
    let out = '';
    target = await new Promise<number>((resolve, reject) => {
      started.stdout!.on('data', (d) => {
        out += String(d);
        const ready = /^ready: ws:\/\/localhost:(\d+)\/local$/m.exec(out);
        if (ready) resolve(Number(ready[1]));
      });
      started.stderr!.on('data', (d) => {
        out += String(d);
      });
      started.on('exit', (code) => reject(new Error(`npm start exited (${code}) before ready:\n${out}`)));
    });
  };
  await start();
  return {
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/local`,
    crash,
    start,
    stop: async () => {
      crash();
      await new Promise((resolve) => server.close(resolve));
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
