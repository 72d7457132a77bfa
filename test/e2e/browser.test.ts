import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });
const ARTIFACTS = join(process.cwd(), 'test-artifacts');

/** The chat page in headless Chromium against the local stack. */
describe.skipIf(!hasBrowser)('chat page in a real browser (needs Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startTestStack({ ECHO_DELAY_MS: '5' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** The frames each page sent over its WebSockets, in order. */
  const sent = new WeakMap<Page, string[]>();

  async function openChat(width = 1100, height = 800): Promise<Page> {
    const { token } = await newUser('browser');
    const p = await browser.newPage({ viewport: { width, height } });
    const frames: string[] = [];
    sent.set(p, frames);
    p.on('websocket', (ws) => ws.on('framesent', (f) => frames.push(String(f.payload))));
    await p.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    await p.getByText('connected', { exact: true }).waitFor();
    return p;
  }

  it('sends a message and shows the streamed reply and the token gauge moving', async () => {
    page = await openChat();
    await page.locator('.gauge[data-limit="dailyTokens"] .value').waitFor();
    const before = await page.locator('.gauge[data-limit="dailyTokens"] .value').textContent();
    await page.getByLabel('Message', { exact: true }).fill('hello from the browser');
    await page.keyboard.press('Enter');
    await page.locator('li.assistant .meta').first().waitFor();
    expect(await page.locator('li.assistant').first().textContent()).toContain(
      'Echo: hello from the browser',
    );
    await expect
      .poll(() => page.locator('.gauge[data-limit="dailyTokens"] .value').textContent())
      .not.toBe(before);
    // The gauges moved on the limits message_complete carries (SPEC §9.3): the page asked for
    // status once, when it connected, and not again after the reply.
    const statusAsks = sent.get(page)!.filter((f) => JSON.parse(f).action === 'status');
    expect(statusAsks).toHaveLength(1);
    await page.screenshot({ path: join(ARTIFACTS, 'chat-reply.png'), fullPage: true });
  });

  it('queues 30 quick messages, counts positions down to zero, and cancels one', async () => {
    page = await openChat();
    await page.evaluate(() => {
      const box = document.getElementById('message') as HTMLTextAreaElement;
      const form = document.getElementById('composer') as HTMLFormElement;
      for (let i = 0; i < 30; i++) {
        box.value = `quick ${i}`;
        form.requestSubmit();
      }
    });
    await page.locator('#queue li').nth(4).waitFor();
    expect(await page.locator('#queue li').count()).toBe(5);
    await page.screenshot({ path: join(ARTIFACTS, 'chat-queue.png') });
    // Notices name a request by what was typed and a limit by its human name.
    const notices = await page.locator('#log li.notice').allTextContents();
    expect(
      notices.some((n) =>
        /^Queued “quick \d+”: #1 in line, about \d+ s\. Message rate: 25 of 25 used; one more every 3 s, next at \d\d:\d\d:\d\d UTC\.$/.test(
          n,
        ),
      ),
    ).toBe(true);
    expect(await page.locator('body').textContent()).not.toMatch(/messageRate|dailyTokens/);
    expect(await page.locator('.gauge[data-limit="messageRate"] .label span').first().textContent()).toBe(
      'Message rate',
    );
    // Cancel the last one in line with the keyboard-reachable button.
    await page
      .locator('#queue li')
      .last()
      .getByRole('button', { name: /Cancel/ })
      .click();
    await page.getByText(/cancelled\./).waitFor();
    await expect.poll(() => page.locator('#queue li').count(), { timeout: 30_000, interval: 250 }).toBe(0);
    await expect.poll(() => page.locator('li.assistant .meta').count(), { timeout: 10_000 }).toBe(29);
  }, 60_000);

  it('keeps the message box on screen at phone width, with five requests in line', async () => {
    const [width, height] = [390, 844];
    page = await openChat(width, height);
    const onScreen = async () => {
      const box = (await page.locator('#message').boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(width);
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.y + box.height).toBeLessThanOrEqual(height);
      // Nothing wider than the screen: no sideways scrolling.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
    };
    await onScreen();
    await page.evaluate(() => {
      const box = document.getElementById('message') as HTMLTextAreaElement;
      const form = document.getElementById('composer') as HTMLFormElement;
      for (let i = 0; i < 30; i++) {
        box.value = `a longer question, number ${i}, to fill the line`;
        form.requestSubmit();
      }
    });
    await page.locator('#queue li').nth(4).waitFor();
    await onScreen();
    await page.screenshot({ path: join(ARTIFACTS, 'chat-phone.png') });
  }, 30_000);

  it('has an icon: the page links one and /favicon.ico answers', async () => {
    page = await openChat();
    const href = await page.locator('link[rel="icon"]').first().getAttribute('href');
    const linked = await page.request.get(new URL(href!, stack.httpUrl).href);
    expect(linked.status()).toBe(200);
    expect(linked.headers()['content-type']).toBe('image/svg+xml');
    const ico = await page.request.get(`${stack.httpUrl}/favicon.ico`);
    expect(ico.status()).toBe(200);
    // An ICO file: reserved 0, type 1 (icon), then at least one image.
    expect([...(await ico.body()).subarray(0, 4)]).toEqual([0, 0, 1, 0]);
  });
});
