import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { statusMessage } from '../../lambda/core/status-message';
import { fitToWidth } from '../../local/chat/live-line';
import { runTerminalClient } from '../../local/chat/terminal-client';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { mayRunWith, TMUX } from '../support/required-tools';

type Frame = Record<string, unknown>;

// Terminal escape sequences are what these tests read: control characters in patterns on purpose.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts every control sequence
const CSI = /^\x1b\[([0-9;]*)([A-Za-z])/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: a redraw of the yellow live line
const LIVE_DRAW = /\r\x1b\[2K\x1b\[33mqueue:[^\x1b]*\x1b\[0m/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: colours and carriage returns take no column
const INVISIBLE = /\x1b\[[0-9;]*[A-Za-z]|\r/g;

/** Waits for a condition on output that arrives by itself, bounded, without a fixed sleep. */
async function until(
  condition: () => boolean,
  what: string,
  timeoutMs = 10_000,
  shown: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${shown()}`.trimEnd());
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An output stream that looks like a terminal of `columns` columns to the client. */
function fakeTerminal(columns: number): {
  stream: PassThrough & { columns: number; isTTY: true };
  text: () => string;
} {
  const stream = Object.assign(new PassThrough(), { columns, isTTY: true as const });
  let text = '';
  stream.on('data', (d) => {
    text += String(d);
  });
  return { stream, text: () => text };
}

/**
 * What a terminal `columns` wide shows after `output`, scrollback included: `\r` returns to the
 * left margin, `ESC[2K` erases the cursor's row, colours are ignored, and a character written in
 * the last column wraps at once (the stricter of the two behaviours terminals have).
 */
function screenRows(output: string, columns: number): string[] {
  const rows: string[][] = [[]];
  let col = 0;
  for (let i = 0; i < output.length; i++) {
    const ch = output[i]!;
    if (ch === '\x1b') {
      const m = CSI.exec(output.slice(i));
      if (m?.[2] === 'K' && m[1] === '2') rows[rows.length - 1] = [];
      i += (m?.[0].length ?? 1) - 1;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      rows.push([]);
      col = 0;
    } else {
      if (col >= columns) {
        rows.push([]);
        col = 0;
      }
      rows[rows.length - 1]![col++] = ch;
    }
  }
  return rows.map((r) => Array.from(r, (c) => c ?? ' ').join(''));
}

/**
 * A stand-in server speaking protocol v1: answers `status`, and hands each `sendMessage` to
 * `onMessage` with the requestId the client chose, to send whatever frames a case needs.
 */
async function scriptedServer(
  onMessage: (requestId: string, text: string, send: (frame: Frame) => void, frame: Frame) => void,
  status: Frame = { type: 'status', userId: 'ann', tier: 'free', limits: [], queue: { queued: 0 } },
): Promise<{ url: string; close: () => Promise<void>; onStatus: () => void }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  const scripted = {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/local`,
    close: () => new Promise<void>((r) => server.close(() => r())),
    onStatus: (): void => undefined,
  };
  server.on('connection', (socket) => {
    const send = (frame: Frame) => socket.send(JSON.stringify({ timestamp: Date.now(), ...frame }));
    socket.on('message', (data) => {
      const msg = JSON.parse(String(data)) as Frame;
      if (msg.action === 'status') {
        scripted.onStatus();
        send(status);
      }
      if (msg.action === 'sendMessage') onMessage(String(msg.requestId), String(msg.message), send, msg);
    });
  });
  return scripted;
}

/** Replies to a request at once, the way the echo model would. */
function reply(requestId: string, text: string, send: (frame: Frame) => void): void {
  send({ type: 'message_accepted', requestId });
  send({
    type: 'message_complete',
    requestId,
    text: `Echo: ${text}`,
    usage: { inputTokens: 1, outputTokens: 2 },
  });
}

// One local stack for the file: handlers read their configuration once per process.
let stack: LocalStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** `npm run chat`, driven through its programmatic entry with piped input. */
describe('terminal chat client', () => {
  async function chat(
    lines: string[],
    token: string,
    url = stack.wsUrl,
  ): Promise<{ code: number; output: string }> {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d) => {
      text += String(d);
    });
    const done = runTerminalClient({ url, token, input, output, color: false });
    for (const line of lines) input.write(`${line}\n`);
    input.end();
    const code = await done;
    return { code, output: text };
  }

  it('streams replies and shows what is left of the limits, by their human names', async () => {
    const { userId, token } = await newUser('term');
    const { code, output } = await chat(['hello terminal'], token);
    expect(code).toBe(0);
    expect(output).toContain(`status: ${userId} (free) — left: message rate 25/25, daily tokens`);
    expect(output).not.toContain('messageRate');
    expect(output).toContain('assistant> Echo: hello terminal');
    expect(output).toMatch(/\(\d+ in \+ \d+ out tokens · echo · \$[\d.e-]+\)/);
    // What is left after the reply comes with it (SPEC §9.3): the line, with no status asked.
    const [, input, out] = /\((\d+) in \+ (\d+) out tokens/.exec(output)!;
    const left = (100_000 - Number(input) - Number(out)).toLocaleString('en-US');
    expect(output.trimEnd().split('\n').at(-1)).toBe(
      `after this reply — left: message rate 24/25, daily tokens ${left}/100,000`,
    );
  });

  it('shows the queue line for messages over the burst and waits for them to finish', async () => {
    const { token } = await newUser('termq');
    const { code, output } = await chat(
      Array.from({ length: 27 }, (_, i) => `m${i}`),
      token,
    );
    expect(code).toBe(0);
    expect(output).toMatch(/"m2\d" queued: #1 in line \(\d+ in queue\), ~\d+ s {2}\(\/cancel \w+\)/);
    expect(output).toMatch(/"m2\d" queued: #2 in line/);
    // Why, in the server's sentence, under each queued line.
    expect(output).toMatch(
      /queued: #1 in line .*\n {2}Message rate: 25 of 25 used; one more every 3 s, next at \d\d:\d\d:\d\d UTC\.\n/,
    );
    expect(output).toMatch(/"m2\d": your turn — processing/);
    expect(output.match(/assistant> /g)).toHaveLength(27);
  }, 30_000);

  it('says why a connection is refused', async () => {
    const { code, output } = await chat(['hi'], 'not-a-token');
    expect(code).toBe(1);
    expect(output).toContain('connection refused: HTTP 403 (token rejected: expired or bad signature)');
  });

  it('keeps one conversation per session; /new starts another (SPEC §9.3)', async () => {
    const sent: { text: string; conversationId: unknown }[] = [];
    const server = await scriptedServer((requestId, text, send, frame) => {
      sent.push({ text, conversationId: frame.conversationId });
      reply(requestId, text, send);
    });
    try {
      const { output } = await chat(['one', 'two', '/new', 'three'], 'any', server.url);
      expect(sent.map((s) => s.text)).toEqual(['one', 'two', 'three']);
      const [one, two, three] = sent.map((s) => s.conversationId);
      expect(one).toMatch(/^[0-9a-f-]{36}$/);
      expect(two).toBe(one);
      expect(three).toMatch(/^[0-9a-f-]{36}$/);
      expect(three).not.toBe(one);
      expect(output).toContain('new conversation: the model no longer sees the earlier messages');
    } finally {
      await server.close();
    }
  });

  it('names a refused request by the start of its text and the limit by its human name', async () => {
    const server = await scriptedServer((requestId, _text, send) =>
      send({
        type: 'error',
        requestId,
        code: 'RATE_LIMIT_EXCEEDED',
        message: 'Limit dailyTokens reached.',
        details: { limit: 'dailyTokens', retryAfter: 42 },
      }),
    );
    try {
      const question = 'What is the tallest mountain in Europe, and how tall is it?';
      const { output } = await chat([question], 'any', server.url);
      expect(output).toContain(
        'refused "What is the tallest mountain in…": daily tokens limit reached — retry in 42 s',
      );
      expect(output).not.toMatch(/dailyTokens|\[[0-9a-f]{8}\]/);
    } finally {
      await server.close();
    }
  });

  it('says moved up only when the place in line got smaller, and moved back when it grew', async () => {
    const server = await scriptedServer((requestId, text, send) => {
      send({ type: 'request_queued', requestId, position: 2, totalInQueue: 2, estimatedWaitTime: 6 });
      send({ type: 'queue_position', requestId, position: 3, totalInQueue: 3, estimatedWaitTime: 9 });
      send({ type: 'queue_position', requestId, position: 1, totalInQueue: 2, estimatedWaitTime: 3 });
      send({ type: 'queue_processing_started', requestId });
      reply(requestId, text, send);
    });
    try {
      const { output } = await chat(['where am I'], 'any', server.url);
      expect(output).toContain('"where am I" queued: #2 in line (2 in queue), ~6 s');
      expect(output).toContain('"where am I" moved back: #3 in line (3 in queue), ~9 s');
      expect(output).toContain('"where am I" moved up: #1 in line (2 in queue), ~3 s');
      expect(output.match(/moved up/g)).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('drops a place computed from an older version of the list when it arrives after a newer one (finding 13)', async () => {
    const server = await scriptedServer((requestId, text, send) => {
      // The processor's queue_position (version 1) overtook the Message function's request_queued
      // (version 0), which arrives last and must not move the request back.
      send({
        type: 'queue_position',
        requestId,
        position: 1,
        totalInQueue: 1,
        estimatedWaitTime: 3,
        queueVersion: 1,
      });
      send({
        type: 'request_queued',
        requestId,
        position: 2,
        totalInQueue: 2,
        estimatedWaitTime: 6,
        queueVersion: 0,
      });
      send({
        type: 'queue_position',
        requestId,
        position: 1,
        totalInQueue: 1,
        estimatedWaitTime: 2,
        queueVersion: 1,
      });
      send({ type: 'queue_processing_started', requestId });
      reply(requestId, text, send);
    });
    try {
      const { output } = await chat(['crossed notices'], 'any', server.url);
      expect(output).toContain('#1 in line (1 in queue), ~3 s');
      expect(output).not.toMatch(/#2 in line|moved back/);
    } finally {
      await server.close();
    }
  });

  it('does not put a request back in line when its late request_queued arrives after its processing started (finding 13)', async () => {
    const server = await scriptedServer((requestId, text, send) => {
      send({
        type: 'queue_position',
        requestId,
        position: 1,
        totalInQueue: 1,
        estimatedWaitTime: 3,
        queueVersion: 1,
      });
      send({ type: 'queue_processing_started', requestId });
      // The Message function's notice, computed before the processor moved the list, arrives last.
      send({
        type: 'request_queued',
        requestId,
        position: 2,
        totalInQueue: 2,
        estimatedWaitTime: 6,
        queueVersion: 0,
      });
      reply(requestId, text, send);
    });
    try {
      const { output } = await chat(['late notice'], 'any', server.url);
      expect(output).toContain('your turn');
      expect(output).not.toMatch(/#2 in line/);
    } finally {
      await server.close();
    }
  });

  it('streams a reply from its first chunk or not at all, never from the middle', async () => {
    const ids: string[] = [];
    const server = await scriptedServer((requestId, _text, send) => {
      ids.push(requestId);
      if (ids.length < 2) return;
      const [a, b] = ids as [string, string];
      // A's reply starts while B is in flight too, B finishes, then the rest of A arrives.
      send({ type: 'chunk', requestId: a, text: 'Echo: first ' });
      reply(b, 'second', send);
      send({ type: 'chunk', requestId: a, text: 'half' });
      send({ type: 'message_complete', requestId: a, text: 'Echo: first half', usage: {} });
    });
    try {
      const { output } = await chat(['first', 'second'], 'any', server.url);
      expect(output.match(/^assistant> .*$/gm)).toEqual([
        'assistant> Echo: second',
        'assistant> Echo: first half',
      ]);
    } finally {
      await server.close();
    }
  });

  it('shows what is left once a burst of replies is in, not after each one', async () => {
    let statusAsked = 0;
    const server = await scriptedServer((requestId, text, send) => reply(requestId, text, send));
    server.onStatus = () => statusAsked++;
    try {
      const { output } = await chat(['one', 'two', 'three'], 'any', server.url);
      expect(output.match(/assistant> /g)).toHaveLength(3);
      // One when connected, one when the last reply was in, and that one is shown before exiting.
      expect(statusAsked).toBe(2);
      expect(output.trimEnd().split('\n').at(-1)).toMatch(/^status: /);
    } finally {
      await server.close();
    }
  });

  it('names every limit of SPEC §8 for people in the status line', async () => {
    const names = [
      'messageRate',
      'hourlyMessages',
      'dailyMessages',
      'dailyTokens',
      'requestsInFlight',
      'tokensPerMinute',
      'monthlyTokens',
      'dailyCostUsd',
      'monthlyCostUsd',
      'global.requestsInFlight',
    ];
    const limits = names.map((name) => ({ name, limit: 10, used: 1, remaining: 9, resetAt: 0 }));
    const server = await scriptedServer(() => undefined, {
      type: 'status',
      userId: 'ann',
      tier: 'pro',
      limits,
      queue: { queued: 0 },
    });
    try {
      const { output } = await chat([], 'any', server.url);
      expect(output).toContain(
        'left: message rate 9/10, hourly messages 9/10, daily messages 9/10, daily tokens 9/10, ' +
          'requests in flight 9/10, tokens per minute 9/10, monthly tokens 9/10, daily cost 9/10, ' +
          'monthly cost 9/10, global requests in flight 9/10',
      );
    } finally {
      await server.close();
    }
  });

  it("shows the team's limits and the global ones next to the user's own (SPEC §9.5)", async () => {
    const at = Date.now();
    const shared = <N extends string>(
      name: N,
      limit: number,
      remaining: number,
      unit: 'requests' | 'tokens',
    ) => ({
      name,
      limit,
      used: limit - remaining,
      remaining,
      unit,
      resetAtEpochMs: at,
      shadow: false,
    });
    const server = await scriptedServer(
      () => undefined,
      statusMessage(
        {
          userId: 'tess',
          tier: 'pro',
          policy: DEFAULT_TIER_LIMITS.pro,
          limits: [{ name: 'requestsInFlight', limit: 20, used: 1, remaining: 19, resetAtEpochMs: at }],
          queued: [],
          global: [shared('global.requestsInFlight', 50, 47, 'requests')],
          team: {
            name: 'eng',
            source: 'token',
            limits: [
              shared('team.requestsInFlight', 2, 1, 'requests'),
              shared('team.dailyTokens', 100_000, 75_000, 'tokens'),
            ],
          },
        },
        at,
      ) as unknown as Frame,
    );
    try {
      const { output } = await chat([], 'any', server.url);
      expect(output).toContain(
        'status: tess (pro) — left: requests in flight 19/20 — team eng left: requests in flight 1/2, ' +
          'daily tokens 75,000/100,000 — global left: requests in flight 47/50',
      );
    } finally {
      await server.close();
    }
  });

  it('refuses an unknown /command locally, with the list of commands, and sends //… as a message', async () => {
    const sent: string[] = [];
    const server = await scriptedServer((requestId, text, send) => {
      sent.push(text);
      reply(requestId, text, send);
    });
    try {
      const { code, output } = await chat(['/stauts', '//etc is a folder', 'hello'], 'any', server.url);
      expect(code).toBe(0);
      expect(output).toContain(
        'unknown command /stauts — not sent. Commands: /status, /stop, /cancel ID, /resume, /new, /quit (a message that starts with / is sent as //…)',
      );
      expect(sent).toEqual(['/etc is a folder', 'hello']);
    } finally {
      await server.close();
    }
  });

  it('shows moves in line on the one live line, not one printed line per move (issue 23)', async () => {
    const columns = 100;
    const queued: string[] = [];
    const server = await scriptedServer((requestId, text, send) => {
      if (text !== 'go') {
        queued.push(requestId);
        const position = queued.length;
        send({
          type: 'request_queued',
          requestId,
          position,
          totalInQueue: 5,
          estimatedWaitTime: 3 * position,
        });
        return;
      }
      // Each of the five moves up one place at a time until it is first, then all are answered.
      for (let head = 0; head < queued.length; head++) {
        for (const [i, id] of queued.entries())
          if (i > head)
            send({
              type: 'queue_position',
              requestId: id,
              position: i - head,
              totalInQueue: 5,
              estimatedWaitTime: 3 * (i - head),
            });
      }
      for (const id of queued) reply(id, 'done', send);
      reply(requestId, text, send);
    });
    const terminal = fakeTerminal(columns);
    const input = new PassThrough();
    const done = runTerminalClient({ url: server.url, token: 'any', input, output: terminal.stream });
    try {
      await until(() => terminal.text().includes('status: '), 'the first status');
      input.write('q0\nq1\nq2\nq3\nq4\n');
      await until(() => terminal.text().includes('"q4" queued: #5'), 'five queued');
      input.end('go\n');
      expect(await done).toBe(0);
    } finally {
      await server.close();
    }
    const rows = screenRows(terminal.text(), columns);
    // The server told 10 moves: the screen keeps the five "queued" lines and no line per move.
    expect(rows.filter((r) => / queued: #\d in line/.test(r))).toHaveLength(5);
    expect(rows.filter((r) => /moved up|moved back|still #/.test(r))).toEqual([]);
    expect(rows.filter((r) => r.startsWith('assistant> '))).toHaveLength(6);
  });

  it('redraws the live queue line in place, cut to the width of the terminal', async () => {
    const columns = 40;
    const queued: string[] = [];
    const server = await scriptedServer((requestId, text, send) => {
      if (text === 'finish') {
        for (const id of queued) reply(id, 'done', send);
        return reply(requestId, text, send);
      }
      queued.push(requestId);
      const position = queued.length;
      send({
        type: 'request_queued',
        requestId,
        position,
        totalInQueue: position,
        estimatedWaitTime: 3 * position,
      });
    });
    const terminal = fakeTerminal(columns);
    const input = new PassThrough();
    const done = runTerminalClient({ url: server.url, token: 'any', input, output: terminal.stream });
    try {
      for (let i = 0; i < 5; i++) input.write(`question ${i}\n`);
      // The ticker redraws every 500 ms: wait for a few redraws with all five waiting.
      await until(
        () => (terminal.text().match(/queue: 5 waiting/g)?.length ?? 0) >= 3,
        'three redraws of the queue line with five waiting',
      );
      input.end('finish\n');
      expect(await done).toBe(0);
    } finally {
      await server.close();
    }
    const draws = terminal.text().match(LIVE_DRAW) ?? [];
    expect(draws.length).toBeGreaterThanOrEqual(3);
    for (const draw of draws) {
      const visible = draw.replace(INVISIBLE, '');
      expect(visible).not.toContain('\n');
      expect([...visible].length).toBeLessThan(columns);
    }
    const rows = screenRows(terminal.text(), columns);
    // Every redraw overwrote the last, and printing a line erased it first: no copies are left.
    expect(rows.filter((r) => r.includes('queue:'))).toEqual([]);
    expect(rows).toContain('"question 4" queued: #5 in line (5 in qu');
  });
});

describe('fitToWidth', () => {
  it('leaves a line that fits alone and cuts a longer one to the width, ending with …', () => {
    expect(fitToWidth('queue: 1 waiting', 20)).toBe('queue: 1 waiting');
    expect(fitToWidth('queue: 5 waiting · #1 ~3 s · #2 ~6 s', 20)).toBe('queue: 5 waiting · …');
  });

  it('counts wide characters as two columns and never splits a surrogate pair', () => {
    const cut = fitToWidth('日本語のテキスト😀😀', 9);
    expect(cut).toBe('日本語の…');
  });
});

const hasTmux = mayRunWith(TMUX, spawnSync('tmux', ['-V']).status === 0, { why: 'no tmux on the PATH' });

/** README's demo in a real terminal: `npm run chat` in tmux at 80 columns, 30 lines pasted. */
describe.skipIf(!hasTmux)('npm run chat in a real terminal (needs tmux)', () => {
  const socket = `chat-limiter-test-${randomUUID().slice(0, 8)}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
  });

  it('keeps one live queue line at 80 columns while 30 pasted lines are answered', async () => {
    const { token } = await newUser('tmux');
    // tmux does not always report a pane's exit status: the shell prints it.
    const command = `npx tsx bin/chat.ts --url ${stack.wsUrl} --token ${token}; echo "chat exited: $?"`;
    tmux('new-session', '-d', '-s', 'chat', '-x', '80', '-y', '24', '-c', process.cwd(), command);
    tmux('set-option', '-t', 'chat', 'remain-on-exit', 'on');
    tmux('set-option', '-t', 'chat', 'history-limit', '10000');
    // Rows as the terminal shows them (no -J): a line that wrapped is as many rows as it took.
    const screen = () => tmux('capture-pane', '-p', '-t', 'chat', '-S', '-', '-E', '-');
    await until(() => screen().includes('status: '), 'the client to connect', 30_000, screen);
    const lines = Array.from({ length: 30 }, (_, i) => `pasted question number ${i + 1}`).join('\n');
    execFileSync('tmux', ['-L', socket, 'load-buffer', '-b', 'paste', '-'], { input: `${lines}\n` });
    tmux('paste-buffer', '-b', 'paste', '-t', 'chat');
    // The queue lines appear while the five over the burst wait; sample them as they redraw.
    let queueRowsSeen = 0;
    let worst = '';
    await until(
      () => {
        const shown = screen();
        const queueRows = shown.split('\n').filter((r) => r.startsWith('queue:')).length;
        if (queueRows > queueRowsSeen) [queueRowsSeen, worst] = [queueRows, shown];
        return (shown.match(/assistant> /g)?.length ?? 0) === 30;
      },
      'all 30 replies',
      60_000,
      screen,
    );
    const shown = screen();
    const rows = shown.split('\n');
    expect(tmux('display', '-p', '-t', 'chat', '#{window_width}').trim()).toBe('80');
    // Some requests waited (else there was no queue line to flood the screen with).
    expect(
      rows.some((r) => /"pasted question number \d+" queued: #\d+ in line/.test(r)),
      shown,
    ).toBe(true);
    expect(queueRowsSeen, worst).toBeLessThanOrEqual(1);
    expect(rows.filter((r) => r.startsWith('queue:')).length, shown).toBeLessThanOrEqual(1);
    tmux('send-keys', '-t', 'chat', 'C-d');
    await until(() => screen().includes('chat exited: '), 'chat to exit on Ctrl-D', 10_000, screen);
    expect(screen()).toContain('chat exited: 0');
  }, 120_000);
});
