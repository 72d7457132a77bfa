import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { runTerminalClient } from '../../local/chat/terminal-client';
import { newUser } from '../support/local-stack';
import { type RestartableStack, startRestartableStack } from '../support/restartable-stack';

/** Waits for output that arrives by itself, bounded, without a fixed sleep. */
async function until(condition: () => boolean, what: string, shown: () => string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${shown()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `npm run chat` across a crash and restart of `npm start` (issue 23 item 4, SPEC §9.5). */
describe('terminal client across a restart of the stack', () => {
  let stack: RestartableStack;

  beforeAll(async () => {
    // A free user's bucket holds one message (then one a minute): the next ones wait in line.
    // Each word of a reply comes 4 s after the one before: the restart finds the first one (five
    // words) half streamed.
    stack = await startRestartableStack({
      ECHO_DELAY_MS: '4000',
      CONNECT_LIMIT_PER_MINUTE: '10000',
      LIMITS_CONFIG: JSON.stringify({ tiers: { free: { messagesPerMinute: 1, burst: 0 } } }),
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('reconnects with backoff, says which requests the server lost, and chats on', async () => {
    const { token } = await newUser('term-restart');
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d) => {
      text += String(d);
    });
    const shown = () => text;
    const done = runTerminalClient({ url: stack.wsUrl, token, input, output, color: false });
    await until(() => text.includes('status: '), 'the first status', shown);
    input.write('t0 a b c d\nt1 x\nt2 x\nt3 x\n');
    await until(() => text.includes('"t3 x" queued: #3 in line'), 'three in line', shown);

    stack.crash();
    await until(() => text.includes('connection closed (1006) — reconnecting in 1 s'), 'the drop', shown);
    // Typed while no connection is open: kept, and sent once there is one.
    input.write('offline x\n');
    await until(() => text.includes('(not connected: "offline x" goes out once reconnected)'), 'held', shown);
    await stack.start();
    await until(() => text.includes('lost: '), 'what was lost', shown);
    expect(text).toContain(`reconnected to ${stack.wsUrl}`);
    const lost = text.split('\n').filter((l) => l.startsWith('lost: '));
    expect(lost).toEqual([
      'lost: "t0 a b c d", "t1 x", "t2 x", "t3 x" — the server no longer has these 4 (it restarted?); send again if you need them',
    ]);
    input.end();
    // The held message is answered by the new server, then the client exits as it would have.
    expect(await done).toBe(0);
    expect(text).toContain('assistant> Echo: offline x');
    expect(text.match(/assistant> /g)).toHaveLength(1);
  }, 90_000);

  it('stops, saying why, when the server refuses the token on a reconnect', async () => {
    // A server that takes the first handshake, drops that connection once the client asked its
    // status, and refuses every later handshake as a stack with another secret would (403).
    let handshakes = 0;
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (_info, accept) => (handshakes++ === 0 ? accept(true) : accept(false, 403)),
    });
    await new Promise((r) => server.once('listening', r));
    server.on('connection', (socket) => socket.on('message', () => socket.terminate()));
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d) => {
      text += String(d);
    });
    try {
      const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/local`;
      const code = await runTerminalClient({ url, token: 'any', input, output, color: false });
      expect(code).toBe(1);
      expect(handshakes).toBe(2);
      expect(text.split('\n').slice(1, 3)).toEqual([
        'connection closed (1006) — reconnecting in 1 s',
        'connection refused: HTTP 403 (token rejected: expired or bad signature)',
      ]);
    } finally {
      input.end();
      await new Promise((r) => server.close(r));
    }
  });
});
