import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });

/**
 * The chat page shows the stack's global limits beside the user's own (SPEC §9.5): a "Global"
 * group in the limits panel, from `status`, in headless Chromium against the local stack.
 */
describe.skipIf(!hasBrowser)('the chat page with global limits (needs Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({ global: { requestsInFlight: 2 } }),
      ECHO_DELAY_MS: '5',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('shows a Global group with the stack-wide requests in flight next to the user’s own limits', async () => {
    const { token } = await newUser('browser-global');
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    await page.getByText('connected', { exact: true }).waitFor();
    const group = page.locator('#gauges .gauge-group[data-group="global"]');
    await group.waitFor();
    expect(await group.locator('h3').textContent()).toBe('Global (all users)');
    const gauge = group.locator('.gauge[data-limit="global.requestsInFlight"]');
    expect(await gauge.locator('.label span').first().textContent()).toBe('Requests in flight');
    expect(await gauge.locator('.value').textContent()).toBe('2 / 2 left');
    expect(await gauge.locator('meter').getAttribute('max')).toBe('2');
    expect(await gauge.locator('.reset').textContent()).toMatch(/^full again /);
    // Beside the user's own: those gauges stay, outside the group.
    expect(await page.locator('#gauges > .gauge[data-limit="messageRate"]').count()).toBe(1);
    expect(await page.locator('#gauges > .gauge').count()).toBeGreaterThanOrEqual(2);
    await page.close();
  }, 60_000);
});
