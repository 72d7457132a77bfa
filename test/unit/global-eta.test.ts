import { describe, expect, it } from 'vitest';
import {
  type GlobalWait,
  globalAdmissionEpochMs,
  globalWaitReason,
  globalWaitSeconds,
  holdEstimateMs,
} from '../../lambda/core/queue/global-eta';

const NOW = 1_000_000;
const wait = (over: Partial<GlobalWait>): GlobalWait => ({
  name: 'global.requestsInFlight',
  limit: 2,
  requestsAhead: 0,
  usersAhead: 0,
  holdersAdmittedAtEpochMs: [NOW - 500, NOW - 100],
  holdMs: undefined,
  turnEveryMs: undefined,
  ...over,
});

describe('globalAdmissionEpochMs', () => {
  it('counts one turn every turnEveryMs from the last admission, for the requests ahead and the own place', () => {
    // 4 ahead + position 1 = the 5th turn: 5 × 600 ms after the admission at NOW − 100.
    const w = wait({ requestsAhead: 4, turnEveryMs: 600 });
    expect(globalAdmissionEpochMs(w, 1, NOW)).toBe(NOW + 2900);
    expect(globalWaitSeconds(w, 1, NOW)).toBe(3);
    expect(globalWaitSeconds(w, 3, NOW)).toBe(5); // the 7th turn: 4,100 ms
  });

  it('admits at once while a slot is free and nobody is ahead', () => {
    const w = wait({ holdersAdmittedAtEpochMs: [NOW - 100], turnEveryMs: 600 });
    expect(globalAdmissionEpochMs(w, 1, NOW)).toBe(NOW);
    // The 2nd turn waits for one turnover after the last admission.
    expect(globalAdmissionEpochMs(w, 2, NOW)).toBe(NOW + 500);
  });

  it('without a turnover seen, frees each slot a hold after its admission, then every hold', () => {
    const w = wait({ requestsAhead: 1, holdMs: 1000, holdersAdmittedAtEpochMs: [NOW - 400, NOW - 200] });
    expect(globalAdmissionEpochMs(w, 1, NOW)).toBe(NOW + 800); // 2nd turn: the second slot frees
    expect(globalAdmissionEpochMs(w, 2, NOW)).toBe(NOW + 1600); // 3rd: the first slot again
  });

  it('steps through thousands of turns in whole rounds', () => {
    const w = wait({ requestsAhead: 5000, holdMs: 1000, holdersAdmittedAtEpochMs: [] });
    // Two free slots: turns 1-2 now, then two every second: the 5,001st at 2,500 s.
    expect(globalAdmissionEpochMs(w, 1, NOW)).toBe(NOW + 2_500_000);
  });
});

describe('holdEstimateMs', () => {
  it('takes the hold seen, else the oldest holder’s age, at least a second', () => {
    expect(holdEstimateMs(wait({ holdMs: 750 }), NOW)).toBe(750);
    expect(holdEstimateMs(wait({ holdersAdmittedAtEpochMs: [NOW - 3000, NOW - 10] }), NOW)).toBe(3000);
    expect(holdEstimateMs(wait({}), NOW)).toBe(1000);
  });
});

describe('globalWaitReason', () => {
  it('names the limit, its use and the line ahead', () => {
    expect(globalWaitReason(wait({ usersAhead: 3 }))).toBe(
      'Global limit global.requestsInFlight: 2 of 2 in use across all users; 3 users are ahead of you in line. Your request is queued and will run automatically.',
    );
    expect(globalWaitReason(wait({ holdersAdmittedAtEpochMs: [NOW] }))).toBe(
      'Global limit global.requestsInFlight: 1 of 2 in use across all users; you are next in line. Your request is queued and will run automatically.',
    );
  });
});
