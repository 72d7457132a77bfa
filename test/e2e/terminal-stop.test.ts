import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateTokens } from '../../lambda/core/tokens';
import { runTerminalClient } from '../../local/chat/terminal-client';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';

const LIMITS = { tiers: { free: { requestsInFlight: 1, messagesPerMinute: 10_000, burst: 1_000 } } };
/** 40 words, one echoed every 100 ms: about 4 s of streaming. */
const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

/** Waits for output that arrives by itself, bounded, without a fixed sleep. */
async function until(condition: () => boolean, shown: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms; output:\n${shown()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** SPEC §9.3 in `npm run chat`: `/stop`, and Ctrl-C once while a reply streams. */
describe('stopping a reply in the terminal client', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ LIMITS_CONFIG: JSON.stringify(LIMITS), ECHO_DELAY_MS: '100' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function session() {
    const { token } = await newUser('term-stop');
    const input = new PassThrough();
    const output = new PassThrough();
    const interrupts = new EventEmitter();
    let text = '';
    output.on('data', (d) => {
      text += String(d);
    });
    const done = runTerminalClient({ url: stack.wsUrl, token, input, output, color: false, interrupts });
    return { input, interrupts, done, output: () => text };
  }

  /** The streamed reply's line and its usage line, once the stopped reply is in. */
  function stoppedReply(output: string): { streamed: string; meta: string } {
    const streamed = output.match(/^assistant> (Echo: .*)$/m)![1]!;
    const meta = output.match(/^ {2}\((stopped · .*)\)$/m)![1]!;
    return { streamed, meta };
  }

  it('/stop stops the streaming reply; it ends stopped, charged for the words shown', async () => {
    const chat = await session();
    chat.input.write('/stop\n');
    await until(() => chat.output().includes('(no reply is streaming: nothing to stop)'), chat.output);
    chat.input.write(`${LONG}\n`);
    await until(() => chat.output().includes('Echo: word0 word1 word2'), chat.output);
    chat.input.write('/stop\n');
    await until(() => chat.output().includes('(stopped · '), chat.output);
    const { streamed, meta } = stoppedReply(chat.output());
    expect(streamed.startsWith('Echo: word0 word1 word2')).toBe(true);
    expect(streamed.length).toBeLessThan(`Echo: ${LONG}`.length);
    expect(chat.output().match(/^assistant> /gm)).toHaveLength(1);
    expect(meta.split(' · ').slice(0, 2)).toEqual([
      'stopped',
      `${estimateTokens(LONG)} in + ${estimateTokens(streamed)} out tokens`,
    ]);
    // The one in-flight slot is free: the next message is answered at once, not queued.
    chat.input.write('after the stop\n');
    chat.input.end();
    expect(await chat.done).toBe(0);
    expect(chat.output()).toContain('assistant> Echo: after the stop');
    expect(chat.output()).not.toMatch(/in line/);
  }, 30_000);

  it('Ctrl-C once stops the streaming reply and the session goes on; again, it quits with 130', async () => {
    const chat = await session();
    chat.input.write(`${LONG}\n`);
    await until(() => chat.output().includes('Echo: word0 word1 word2'), chat.output);
    chat.interrupts.emit('SIGINT');
    await until(() => chat.output().includes('(stopped · '), chat.output);
    expect(chat.output().match(/^assistant> /gm)).toHaveLength(1);
    const { streamed, meta } = stoppedReply(chat.output());
    expect(meta.split(' · ')[1]).toBe(`${estimateTokens(LONG)} in + ${estimateTokens(streamed)} out tokens`);
    chat.interrupts.emit('SIGINT');
    expect(await chat.done).toBe(130);
    expect(chat.interrupts.listenerCount('SIGINT')).toBe(0);
  }, 30_000);
});
