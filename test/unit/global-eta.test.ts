import { describe, expect, it } from 'vitest';
import {
  bindingWait,
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
    // The 2nd turn is one turnover after the last admission (NOW + 500), but the user's 2nd request
    // runs after its 1st, admitted now, has held its slot: a hold (the holder's age, at least 1 s).
    expect(globalAdmissionEpochMs(w, 2, NOW)).toBe(NOW + 1000);
    // Another user's request on the 2nd turn is not behind that one.
    expect(globalAdmissionEpochMs({ ...w, requestsAhead: 1 }, 1, NOW)).toBe(NOW + 500);
  });

  it('without a turnover seen, frees each slot a hold after its admission, then every hold', () => {
    const w = wait({ requestsAhead: 1, holdMs: 1000, holdersAdmittedAtEpochMs: [NOW - 400, NOW - 200] });
    expect(globalAdmissionEpochMs(w, 1, NOW)).toBe(NOW + 800); // 2nd turn: the second slot frees
    // The 3rd turn (the first slot again) is at NOW + 1,600, but the user's own 1st request holds
    // a slot from NOW + 800 for a hold: its 2nd goes at NOW + 1,800.
    expect(globalAdmissionEpochMs(w, 2, NOW)).toBe(NOW + 1800);
    expect(globalAdmissionEpochMs({ ...w, requestsAhead: 2 }, 1, NOW)).toBe(NOW + 1600);
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

describe('a team in-flight limit (SPEC §9.5: ETAs hold when a team limit binds)', () => {
  // Team eng: 2 in flight, both held since NOW − 3 s and NOW − 2 s, no hold seen end yet (so a
  // hold is at least the oldest holder's age, 3 s); 3 requests of other members ahead in line.
  const team = wait({
    name: 'team.requestsInFlight',
    team: 'eng',
    requestsAhead: 3,
    usersAhead: 1,
    holdersAdmittedAtEpochMs: [NOW - 3000, NOW - 2000],
  });

  it("counts the replies ahead at the team's slots, then one hold per request of the user's own", () => {
    // Turns 4..13 over two slots turning over every 3 s (from NOW and NOW + 1 s): the 4th turn at
    // NOW + 4 s; the user's own requests then one hold (3 s) after another.
    expect(Array.from({ length: 10 }, (_, i) => globalWaitSeconds(team, i + 1, NOW))).toEqual([
      4, 7, 10, 13, 16, 19, 22, 25, 28, 31,
    ]);
  });

  it('names the team in the reason', () => {
    expect(globalWaitReason(team)).toBe(
      'Team limit team.requestsInFlight of team eng: 2 of 2 in use across the team; 1 user is ahead of you in line. Your request is queued and will run automatically.',
    );
  });

  it('of a global and a team wait, the one that lets the head go last binds', () => {
    const global = wait({ holdMs: 1000, holdersAdmittedAtEpochMs: [NOW - 400, NOW - 200] }); // NOW + 600
    expect(bindingWait([global, team], NOW)).toBe(team);
    expect(bindingWait([global, undefined], NOW)).toBe(global);
    expect(bindingWait([undefined, undefined], NOW)).toBeUndefined();
    expect(bindingWait([{ ...global, requestsAhead: 20 }, team], NOW)?.name).toBe('global.requestsInFlight');
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
