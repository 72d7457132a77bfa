import { describe, expect, it } from 'vitest';
import { identityFromAuthorizer, isTokenExpired } from '../../lambda/core/identity';

describe('identityFromAuthorizer and isTokenExpired', () => {
  it('reads the token expiry as a number or as the string API Gateway may pass on', () => {
    expect(
      identityFromAuthorizer({ userId: 'a', tokenExpiresAtEpochSeconds: 100 }).tokenExpiresAtEpochMs,
    ).toBe(100_000);
    expect(
      identityFromAuthorizer({ userId: 'a', tokenExpiresAtEpochSeconds: '100' }).tokenExpiresAtEpochMs,
    ).toBe(100_000);
    expect(identityFromAuthorizer({ userId: 'a' }).tokenExpiresAtEpochMs).toBeUndefined();
    expect(
      identityFromAuthorizer({ userId: 'a', tokenExpiresAtEpochSeconds: 'soon' }).tokenExpiresAtEpochMs,
    ).toBe(undefined);
  });

  it('counts a token expired from its exp second on, and never one without exp', () => {
    const identity = identityFromAuthorizer({ userId: 'a', tokenExpiresAtEpochSeconds: 100 });
    expect(isTokenExpired(identity, 99_999)).toBe(false);
    expect(isTokenExpired(identity, 100_000)).toBe(true);
    expect(isTokenExpired(identityFromAuthorizer({ userId: 'a' }), Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
