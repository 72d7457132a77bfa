import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTerminalClient } from '../../local/chat/terminal-client';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';

/** `npm run chat`, driven through its programmatic entry with piped input. */
describe('terminal chat client', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function chat(lines: string[], token: string): Promise<{ code: number; output: string }> {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d) => {
      text += String(d);
    });
    const done = runTerminalClient({ url: stack.wsUrl, token, input, output, color: false });
    for (const line of lines) input.write(`${line}\n`);
    input.end();
    const code = await done;
    return { code, output: text };
  }

  it('streams replies and shows what is left of the limits', async () => {
    const { userId, token } = await newUser('term');
    const { code, output } = await chat(['hello terminal'], token);
    expect(code).toBe(0);
    expect(output).toContain(`status: ${userId} (free) — left: messageRate 25/25`);
    expect(output).toContain('assistant> Echo: hello terminal');
    expect(output).toMatch(/\(\d+ in \+ \d+ out tokens\)/);
  });

  it('shows the queue line for messages over the burst and waits for them to finish', async () => {
    const { token } = await newUser('termq');
    const { code, output } = await chat(
      Array.from({ length: 27 }, (_, i) => `m${i}`),
      token,
    );
    expect(code).toBe(0);
    expect(output).toMatch(/queued: #1 in line \(\d+ in queue\), ~\d+ s/);
    expect(output).toMatch(/queued: #2 in line/);
    expect(output).toContain('your turn — processing');
    expect(output.match(/assistant> /g)).toHaveLength(27);
  }, 30_000);

  it('says why a connection is refused', async () => {
    const { code, output } = await chat(['hi'], 'not-a-token');
    expect(code).toBe(1);
    expect(output).toContain('connection refused: HTTP 403 (token rejected: expired or bad signature)');
  });
});
