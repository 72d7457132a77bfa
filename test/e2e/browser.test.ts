import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = existsSync(CHROMIUM);
const ARTIFACTS = join(process.cwd(), 'test-artifacts');

if (!hasBrowser) {
  const message = `browser tests NOT RUN: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.REQUIRE_BROWSER === '1') throw new Error(message);
  console.warn(message);
}

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

  async function openChat(width = 1100): Promise<Page> {
    const { token } = await newUser('browser');
    const p = await browser.newPage({ viewport: { width, height: 800 } });
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

  it('stays usable at phone width', async () => {
    page = await openChat(390);
    const composer = await page.locator('#composer').boundingBox();
    expect(composer!.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'chat-phone.png'), fullPage: true });
  });
});
