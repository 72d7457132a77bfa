import { beforeAll, describe, expect, it } from 'vitest';
import { ConversationStore } from '../../lambda/adapters/conversation-store';
import { fitHistory, turnSortKey } from '../../lambda/core/conversation';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const T0_SECONDS = T0 / 1000;

describe('ConversationStore on the emulator', () => {
  let res: TestResources;
  let store: ConversationStore;
  beforeAll(async () => {
    res = await createTestResources('conversation');
    store = new ConversationStore(res.dynamo, res.tables.requests);
  });

  const turn = (i: number) => ({ user: `q${i}`, assistant: `a${i}` });

  it('reads the newest turns newest first, leaves out expired ones, and reads a range back oldest first', async () => {
    for (let i = 1; i <= 5; i++) {
      // Turn 1 expired a second before T0 (DynamoDB has not removed it yet); the rest live an hour.
      const ttl = i === 1 ? T0_SECONDS - 1 : T0_SECONDS + 3600;
      await store.putTurn('ann', 'c', turnSortKey(T0 - 10_000 + i * 1000, `r${i}`), turn(i), ttl);
    }
    const newest = await store.recentTurns('ann', 'c', 3, T0);
    expect(newest.map((t) => t.user)).toEqual(['q5', 'q4', 'q3']);
    const all = await store.recentTurns('ann', 'c', 20, T0);
    expect(all.map((t) => t.user)).toEqual(['q5', 'q4', 'q3', 'q2']);
    const range = await store.turnsBetween('ann', 'c', newest[2]!.sk, newest[0]!.sk);
    expect(range.map((t) => [t.user, t.assistant])).toEqual([
      ['q3', 'a3'],
      ['q4', 'a4'],
      ['q5', 'a5'],
    ]);
  });

  it("one user's conversation id finds nothing of another's; a retry writes the same item", async () => {
    const sk = turnSortKey(T0, 'same');
    await store.putTurn('bob', 'shared', sk, turn(1), T0_SECONDS + 60);
    await store.putTurn('bob', 'shared', sk, turn(1), T0_SECONDS + 60);
    expect(await store.recentTurns('bob', 'shared', 20, T0)).toEqual([{ sk, user: 'q1', assistant: 'a1' }]);
    expect(await store.recentTurns('eve', 'shared', 20, T0)).toEqual([]);
  });
});

describe('fitHistory', () => {
  // Each turn: "q1" (1 token) + "a1" (1 token) = 2 tokens.
  const newestFirst = [5, 4, 3, 2, 1].map((i) => ({ sk: `s${i}`, user: `q${i}`, assistant: `a${i}` }));

  it('keeps at most maxTurns, the newest, oldest first', () => {
    expect(fitHistory(newestFirst, 2, 1, undefined).map((t) => t.sk)).toEqual(['s4', 's5']);
  });

  it('stops at the first turn past the input cap, never taking an older one', () => {
    // prompt 1 + 2 + 2 = 5 fits a cap of 6; the third turn would make 7.
    expect(fitHistory(newestFirst, 20, 1, 6).map((t) => t.sk)).toEqual(['s4', 's5']);
    expect(fitHistory(newestFirst, 20, 1, 2)).toEqual([]);
  });
});
