import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateTokens } from '../../lambda/core/tokens';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const LIMITS = { tiers: { free: { requestsInFlight: 1, messagesPerMinute: 10_000, burst: 1_000 } } };
/** 40 words, one echoed every 100 ms: about 4 s of streaming. */
const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

/** SPEC §9.3 on the chat page: a streaming reply has a Stop button that stops it. */
describe.skipIf(!hasBrowser)('the Stop button of a streaming reply (needs Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startTestStack({ LIMITS_CONFIG: JSON.stringify(LIMITS), ECHO_DELAY_MS: '100' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('stops the reply: the text so far stays, marked stopped with the tokens charged, and the slot is free', async () => {
    const { token } = await newUser('browser-stop');
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    await page.getByText('connected', { exact: true }).waitFor();
    await page.getByLabel('Message', { exact: true }).fill(LONG);
    await page.keyboard.press('Enter');

    const bubble = page.locator('li.assistant').first();
    const stop = bubble.getByRole('button', { name: 'Stop' });
    await stop.waitFor();
    await expect.poll(() => bubble.textContent()).toContain('word2');
    await stop.click();

    const meta = bubble.locator('.meta');
    await meta.waitFor();
    const metaText = (await meta.textContent())!;
    const text = (await bubble.textContent())!.slice(0, -metaText.length);
    expect(text.startsWith('Echo: word0 word1 word2')).toBe(true);
    expect(text.length).toBeLessThan(`Echo: ${LONG}`.length);
    expect(metaText.split(' · ').slice(0, 2)).toEqual([
      'stopped',
      `${estimateTokens(LONG)} in + ${estimateTokens(text)} out tokens`,
    ]);
    expect(await bubble.getByRole('button').count()).toBe(0);
    expect(await bubble.evaluate((li) => li.classList.contains('streaming'))).toBe(false);
    await page.screenshot({ path: join(ARTIFACTS, 'chat-stopped.png') });

    // The one in-flight slot is free: the next message is answered, not queued.
    await page.getByLabel('Message', { exact: true }).fill('after the stop');
    await page.keyboard.press('Enter');
    await page.locator('li.assistant').nth(1).locator('.meta').waitFor();
    expect(await page.locator('li.assistant').nth(1).textContent()).toContain('Echo: after the stop');
    expect(await page.locator('#log li.notice', { hasText: 'Queued' }).count()).toBe(0);
    // Nothing was added to the stopped reply after it ended.
    expect(await bubble.textContent()).toBe(text + metaText);
  }, 60_000);
});
