import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../local/dev-tokens';
import { newUser } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';
import { type RestartableStack, startRestartableStack } from '../support/restartable-stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });

/**
 * The chat page across a restart of `npm start` (issue 23, SPEC §9.5), and what it says when the
 * server refuses its token or has not sent a status for a while; headless Chromium.
 */
describe.skipIf(!hasBrowser)('chat page across restarts, refusals and time (needs Chromium)', () => {
  let stack: RestartableStack;
  let browser: Browser;

  beforeAll(async () => {
    // Each word of a reply comes 4 s after the one before: a restart finds a reply of six words
    // half streamed. A free user's bucket holds one message (then one a minute): the next five
    // wait in line for minutes. A pro user's holds 20, one back every 3 s. Connections all come
    // from 127.0.0.1 through the proxy.
    const limits = {
      tiers: { free: { messagesPerMinute: 1, burst: 0 }, pro: { messagesPerMinute: 20, burst: 0 } },
    };
    [stack, browser] = await Promise.all([
      startRestartableStack({
        ECHO_DELAY_MS: '4000',
        CONNECT_LIMIT_PER_MINUTE: '10000',
        LIMITS_CONFIG: JSON.stringify(limits),
      }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function openChat(token: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    return page;
  }

  async function sendAll(page: Page, texts: string[]): Promise<void> {
    await page.evaluate((all) => {
      const box = document.getElementById('message') as HTMLTextAreaElement;
      const form = document.getElementById('composer') as HTMLFormElement;
      for (const text of all) {
        box.value = text;
        form.requestSubmit();
      }
    }, texts);
  }

  const pill = (page: Page) => page.locator('#connection');
  const ids = (page: Page, selector: string) =>
    page.locator(selector).evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.requestId!).sort());

  it('after a restart, rebuilds the queue from the new server and marks what it lost, then chats on', async () => {
    const { token } = await newUser('restart');
    const page = await openChat(token);
    await pill(page).getByText('connected', { exact: true }).waitFor();
    // One passes the bucket and starts streaming; five wait in line.
    await sendAll(
      page,
      Array.from({ length: 6 }, (_, i) => `r${i} a b c d e`),
    );
    await page.locator('#queue li').nth(4).waitFor();
    await page.locator('li.assistant.streaming').waitFor();

    stack.crash();
    await expect.poll(() => pill(page).textContent()).toBe('reconnecting');
    // What the page showed when the server went away: nothing more can arrive for these.
    const queued = await ids(page, '#queue li');
    const streaming = await ids(page, 'li.assistant.streaming');
    expect(queued).toHaveLength(5);
    expect(streaming).toHaveLength(1);

    await stack.start();
    await pill(page).getByText('connected', { exact: true }).waitFor({ timeout: 30_000 });
    // The new server lists nothing waiting: the panel is empty at once, not after the old ETAs.
    await expect.poll(() => page.locator('#queue li').count(), { timeout: 5000 }).toBe(0);
    expect(await page.locator('#queue-empty').isVisible()).toBe(true);
    // Every request it no longer has is marked lost, once: the half-streamed bubbles stop their
    // spinner, and the waiting ones say so on the message.
    expect(await ids(page, 'li.assistant.lost')).toEqual(streaming);
    expect(await ids(page, 'li.user.lost')).toEqual(queued);
    expect(await page.locator('li.assistant.streaming').count()).toBe(0);
    expect(await page.locator('.lost-label').count()).toBe(6);
    expect(await page.locator('li.assistant.lost').textContent()).toMatch(
      /^Echo: Lost: the server no longer has this request/,
    );

    // And the page chats on with the new server (replies take 4 s per word here).
    await sendAll(page, ['after']);
    await page.locator('li.assistant .meta').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('li.assistant:has(.meta)').textContent()).toContain('Echo: after');
    expect(await page.locator('.lost-label').count()).toBe(6);
    await page.close();
  }, 90_000);

  it('says the token was refused and stops retrying, instead of reconnecting forever', async () => {
    const wrong = await signDevToken({ userId: 'mallory', secret: 'not-the-stack-secret' });
    const page = await browser.newPage();
    let handshakes = 0;
    page.on('websocket', () => handshakes++);
    // The page's timers on a fake clock: whatever retry it would schedule can be run at once.
    await page.clock.install();
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${wrong}`);
    await pill(page).getByText('refused', { exact: true }).waitFor({ timeout: 10_000 });
    await page.clock.runFor(120_000);
    expect(await pill(page).textContent()).toBe('refused');
    expect(handshakes).toBe(1);
    expect(await page.locator('li.refusal').allTextContents()).toEqual([
      'The server refused the connection: the token was rejected (wrong secret, malformed or expired), ' +
        'or too many connection attempts came from this address. Check the token and Connect again.',
    ]);
    expect(await page.locator('#settings').getAttribute('open')).toBe('');
    await page.close();
  }, 30_000);

  it('moves the message-rate gauge as the bucket refills, with no status asked after the replies', async () => {
    const { token } = await newUser('refill', 'pro');
    const page = await browser.newPage();
    let statuses = 0;
    page.on('websocket', (ws) =>
      ws.on('framereceived', (f) => {
        if (String(f.payload).includes('"type":"status"')) statuses++;
      }),
    );
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    const gauge = page.locator('.gauge[data-limit="messageRate"] .value');
    await expect.poll(() => gauge.textContent()).toBe('20 / 20 left');
    // 20 back to back empty the bucket (one message comes back every 3 s). The page asks for a
    // status once, when it connects; each reply's message_complete carries the limits after it.
    await sendAll(
      page,
      Array.from({ length: 20 }, (_, i) => `g${i} x`),
    );
    await expect.poll(() => page.locator('li.assistant .meta').count(), { timeout: 30_000 }).toBe(20);
    await expect.poll(() => statuses, { timeout: 5000 }).toBe(1);
    const shown = Number((await gauge.textContent())!.split(' ')[0]);
    expect(shown).toBeLessThan(20);
    // No status comes: the gauge moves by itself, one message per 3 s.
    await expect
      .poll(() => gauge.textContent(), { timeout: 4500, interval: 100 })
      .toBe(`${shown + 1} / 20 left`);
    expect(statuses).toBe(1);
    await page.close();
  }, 60_000);
});
