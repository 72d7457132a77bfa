import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { startTestStack } from '../support/local-stack';
import { burst } from '../support/many-users';

/** SPEC §2 v2 "Global limits": an hourly global limit through the local stack, many users at once. */
describe('a global hourly limit, end to end', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify({
        tiers: { free: { messagesPerMinute: 6_000, burst: 100 } },
        global: { hourlyMessages: 7, shards: 2 },
      }),
      // Requests may wait at most a minute: the next hour is always further off (else, late in an
      // hour, a refused request would be queued for it).
      MAX_QUEUE_WAIT_SECONDS: '60',
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('admits exactly the hourly global limit across 5 users × 10 frames, and refuses the rest by it', async () => {
    // Not across an hour's end (the count would start again): within 90 s of one, wait it out.
    const untilHour = 3_600_000 - (Date.now() % 3_600_000);
    if (untilHour < 90_000) await new Promise((resolve) => setTimeout(resolve, untilHour + 1000));
    const { first, clients } = await burst(stack.wsUrl, 5, 2, 10);
    expect(first.filter((f) => f.type === 'message_accepted')).toHaveLength(7);
    const refused = first.filter((f) => f.type === 'error');
    expect(refused).toHaveLength(43);
    // The next hour is further off than MAX_QUEUE_WAIT (60 s here): refused, not queued, and told why.
    for (const f of refused) {
      expect(f).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit: 'global.hourlyMessages' } });
    }
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    expect(status.global).toEqual([
      expect.objectContaining({
        name: 'global.hourlyMessages',
        used: 7,
        limit: 7,
        remaining: 0,
        unit: 'messages',
      }),
    ]);
    for (const c of clients) c.close();
  }, 180_000);
});
