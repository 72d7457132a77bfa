import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ConfigError } from '../../lambda/core/errors';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';

/** An admin's tier or override change is refused when a user's item could pass its size bound (issue 22). */
describe('the item size bound on an admin change', () => {
  let limiter: DynamoLimiter;

  beforeAll(async () => {
    const dynamo = localDynamoClient(inject('dynamodbEndpoint'));
    const resources = await createLocalResources(
      dynamo,
      localSqsClient(inject('sqsEndpoint')),
      `size-${randomUUID().slice(0, 8)}`,
    );
    limiter = new DynamoLimiter({
      client: dynamo,
      tableName: resources.tables.limits,
      tiers: parseTierLimits({}),
    });
  });

  it('refuses an override whose rate lets a user without a tier hold too many replies, and writes nothing', async () => {
    const user = `u-${randomUUID()}`;
    const change = limiter.setOverride(user, { limits: { messagesPerMinute: 1_000 } });
    await expect(change).rejects.toBeInstanceOf(ConfigError);
    await expect(change).rejects.toThrow(/^override\.free: .* set requestsInFlight \(at most 219\)/);
    expect((await limiter.view(user, undefined, Date.now())).snap.override).toBeUndefined();
  });

  it('takes the same override with an in-flight cap, and checks a later tier change against it', async () => {
    const user = `u-${randomUUID()}`;
    await limiter.setOverride(user, { limits: { messagesPerMinute: 1_000, requestsInFlight: 200 } });
    expect((await limiter.view(user, undefined, Date.now())).snap.override?.limits.requestsInFlight).toBe(
      200,
    );
    await limiter.setTier(user, 'enterprise');
    await limiter.clearOverride(user);
    // Enterprise's own cap (100) holds without it; an override lifting it past the bound does not.
    await expect(limiter.setOverride(user, { limits: { requestsInFlight: 5_000 } })).rejects.toThrow(
      /^override\.enterprise: .* lower requestsInFlight/,
    );
  });
});
