import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { UserStatus } from '../../lambda/core/limiter/decision';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { statusMessage } from '../../lambda/core/status-message';
import { signDevToken } from '../../local/dev-tokens';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { BROWSER, mayRunWith } from '../support/required-tools';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasBrowser = mayRunWith(BROWSER, existsSync(CHROMIUM), { why: `no Chromium at ${CHROMIUM}` });

/**
 * The chat page shows the user's team limits next to the user's own and the global ones (SPEC
 * §9.5): a "Team eng" group in the limits panel, from `status.team`. The page is the local stack's;
 * the `status` it reads comes from a WebSocket server of this test answering with the protocol's
 * own builder (statusMessage), so the page is tested on the message as the server builds it, apart
 * from the limiter's team accounting (test/e2e/teams.test.ts).
 */
describe.skipIf(!hasBrowser)('the chat page with a team (needs Chromium)', () => {
  let stack: LocalStack;
  let browser: Browser;
  let server: WebSocketServer;
  let wsUrl: string;
  const nowMs = Date.now();
  const status: UserStatus = {
    userId: 'tess',
    tier: 'pro',
    policy: DEFAULT_TIER_LIMITS.pro,
    limits: [{ name: 'requestsInFlight', limit: 20, used: 1, remaining: 19, resetAtEpochMs: nowMs }],
    queued: [],
    global: [
      {
        name: 'global.requestsInFlight',
        limit: 50,
        used: 3,
        remaining: 47,
        unit: 'requests',
        resetAtEpochMs: nowMs,
        shadow: false,
      },
    ],
    team: {
      name: 'eng',
      source: 'token',
      limits: [
        {
          name: 'team.requestsInFlight',
          limit: 2,
          used: 1,
          remaining: 1,
          unit: 'requests',
          resetAtEpochMs: nowMs,
          shadow: false,
        },
        {
          name: 'team.dailyTokens',
          limit: 100_000,
          used: 25_000,
          remaining: 75_000,
          unit: 'tokens',
          resetAtEpochMs: nowMs + 3_600_000,
          shadow: false,
        },
      ],
    },
  };

  beforeAll(async () => {
    stack = await startTestStack();
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    wsUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/local`;
    server.on('connection', (socket) => {
      socket.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { action?: string };
        if (frame.action === 'status') socket.send(JSON.stringify(statusMessage(status, Date.now())));
      });
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await stack?.stop();
  });

  it('shows a "Team eng" group with the team totals between the user’s own limits and the global ones', async () => {
    const token = await signDevToken({ userId: 'tess', tier: 'pro', team: 'eng' });
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    await page.goto(`${stack.httpUrl}/#url=${encodeURIComponent(wsUrl)}&token=${token}`);
    await page.getByText('connected', { exact: true }).waitFor();
    const group = page.locator('#gauges .gauge-group[data-group="team"]');
    await group.waitFor();
    expect(await group.locator('h3').textContent()).toBe('Team eng');
    const inFlight = group.locator('.gauge[data-limit="team.requestsInFlight"]');
    expect(await inFlight.locator('.label span').first().textContent()).toBe('Requests in flight');
    expect(await inFlight.locator('.value').textContent()).toBe('1 / 2 left');
    expect(await inFlight.locator('meter').getAttribute('max')).toBe('2');
    const tokens = group.locator('.gauge[data-limit="team.dailyTokens"]');
    expect(await tokens.locator('.value').textContent()).toBe('75,000 / 100,000 left');
    // In order: the user's own, the team's, the stack's.
    const order = await page
      .locator('#gauges > *')
      .evaluateAll((nodes) =>
        nodes.map((n) => (n as HTMLElement).dataset.group ?? (n as HTMLElement).dataset.limit),
      );
    expect(order).toEqual(['requestsInFlight', 'team', 'global']);
    expect(await page.locator('#identity').textContent()).toBe('tess · pro · team eng');
    await page.close();
  }, 60_000);
});
