import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });

/**
 * The page keeps one conversation per tab and "New chat" starts another (SPEC §9.3), in headless
 * Chromium against the local stack. "turn 0N" is 2 input tokens; its echo reply 4 output tokens.
 */
describe.skipIf(!hasBrowser)('conversations on the chat page (needs Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startTestStack({ ECHO_DELAY_MS: '5' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function ask(page: Page, text: string, nth: number): Promise<string> {
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.keyboard.press('Enter');
    const meta = page.locator('li.assistant .meta').nth(nth);
    await meta.waitFor();
    return (await meta.textContent()) ?? '';
  }

  it('carries the earlier turns within a tab, and none after New chat', async () => {
    const { token } = await newUser('browser-conv');
    const page = await browser.newPage();
    const frames: string[] = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => frames.push(String(f.payload))));
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(stack.wsUrl)}&token=${token}`);
    await page.getByText('connected', { exact: true }).waitFor();

    expect(await ask(page, 'turn 01', 0)).toContain('2 in + 4 out tokens');
    expect(await ask(page, 'turn 02', 1)).toContain('8 in + 4 out tokens');
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByText('New chat: the model no longer sees the earlier messages.').waitFor();
    expect(await ask(page, 'turn 03', 2)).toContain('2 in + 4 out tokens');

    const ids = frames
      .map((f) => JSON.parse(f) as { action: string; conversationId?: string })
      .filter((f) => f.action === 'sendMessage')
      .map((f) => f.conversationId);
    expect(ids).toHaveLength(3);
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[2]).not.toBe(ids[0]);
    await page.close();
  });
});
