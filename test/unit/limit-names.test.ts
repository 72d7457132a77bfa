import { describe, expect, it } from 'vitest';
import { adminFlagUsage, LIMIT_KINDS, LIMIT_LABELS } from '../../lambda/core/limiter/kinds/registry';
import { describeLimitWarning, humanizeLimitNames, limitName, replyMeta } from '../../local/limit-names';

describe('how people read limits', () => {
  const midnight = new Date(2026, 10, 30, 0, 0).getTime(); // local midnight, as the clients show it

  it('says a limit_warning as a sentence, in the limit’s unit', () => {
    expect(
      describeLimitWarning({
        limit: 'dailyMessages',
        remaining: 4,
        limitValue: 20,
        unit: 'messages',
        resetAt: midnight,
      }),
    ).toBe('Daily messages: 4 of 20 messages left until 00:00.');
    expect(
      describeLimitWarning({
        limit: 'dailyCostUsd',
        remaining: 0.00155,
        limitValue: 0.01,
        unit: 'usd',
        resetAt: midnight,
      }),
    ).toBe('Daily cost: $0.00155 of $0.01 left until 00:00.');
    expect(
      describeLimitWarning({
        limit: 'monthlyTokens',
        remaining: 180_000,
        limitValue: 1_000_000,
        unit: 'tokens',
        resetAt: midnight,
      }),
    ).toBe('Monthly tokens: 180,000 of 1,000,000 tokens left until 00:00.');
  });

  it("names a model's account quota by its model, in the global list", () => {
    expect(limitName('global.model.anthropic.claude-3-haiku-20240307-v1:0.requestsPerMinute')).toBe(
      'global model anthropic.claude-3-haiku-20240307-v1:0 account quota (requests a minute)',
    );
    expect(limitName('global.model.echo.tokensPerMinute')).toBe(
      'global model echo account quota (tokens a minute)',
    );
    // A user's own tokens-per-minute limit keeps its label.
    expect(limitName('tokensPerMinute')).toBe(LIMIT_LABELS.tokensPerMinute);
  });

  it('says what a reply cost and on which model, and a soft landing', () => {
    expect(
      replyMeta({ model: 'echo', usage: { inputTokens: 250, outputTokens: 180, costUsd: 0.000158 } }),
    ).toBe('250 in + 180 out tokens · echo · $0.000158');
    expect(
      replyMeta({
        model: 'small',
        fallbackFrom: 'large',
        usage: { inputTokens: 1, outputTokens: 2, costUsd: 0 },
      }),
    ).toBe('1 in + 2 out tokens · small (instead of large) · $0');
  });

  it('names limits in server text', () => {
    expect(humanizeLimitNames('Limit global.dailyTokens reached; messageRate too')).toBe(
      'Limit global daily tokens reached; message rate too',
    );
    expect(humanizeLimitNames('Limit team.requestsInFlight reached.')).toBe(
      'Limit team requests in flight reached.',
    );
    expect(limitName('team.dailyCostUsd')).toBe('team daily cost');
  });

  it('derives every label and admin flag from the kinds, in status order', () => {
    expect(Object.entries(LIMIT_LABELS)).toEqual(LIMIT_KINDS.map((k) => [k.name, k.label]));
    expect(LIMIT_LABELS.dailyCostUsd).toBe('daily cost');
    expect(adminFlagUsage()).toContain('[--daily-cost USD]');
    expect(adminFlagUsage()).toContain('[--concurrent N]');
    expect(adminFlagUsage()).toHaveLength(LIMIT_KINDS.length);
  });
});
