import { describe, expect, it } from 'vitest';
import { ExpressionWriter } from '../../../lambda/core/limiter/expression';
import {
  historyRecord,
  planHistory,
  storedHistoryOf,
  usageHistory,
} from '../../../lambda/core/limiter/history';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';

const DAY = 86_400_000;
const TODAY = 20_000;
const NOW = TODAY * DAY + 3_600_000;
/** A user item last active on day 19,998, with a held day, and a first-design `hist`. */
const item = {
  pk: 'user#u',
  td: TODAY - 2,
  tu: 70,
  cd: TODAY - 2,
  cu: 9,
  dw: TODAY - 2,
  dc: 2,
  nq19998: 1,
  hd: { d: TODAY - 5, t: 10, c: 1, m: 1, q: 0 },
  hist: { [TODAY - 40]: { t: 1, c: 1, m: 1, q: 0 }, [TODAY - 9]: { t: 30, c: 3, m: 3, q: 3 } },
};

describe('planHistory', () => {
  it('holds the day that closed in the item (`hd`), never in `hist`, and hands the store that day and the one held before', () => {
    const w = new ExpressionWriter();
    const write = planHistory(w, snapshotFromItem(item), NOW);
    expect(write).toEqual({
      closed: { day: TODAY - 2, tokens: 70, costMicroUsd: 9, messages: 2, queued: 1 },
      previous: { day: TODAY - 5, tokens: 10, costMicroUsd: 1, messages: 1, queued: 0 },
    });
    const plan = w.build();
    const named = (attr: string) => Object.keys(plan.names).find((k) => plan.names[k] === attr);
    expect(plan.update).toContain(`SET ${named('hd')} = `);
    // The first design's days past 35 are dropped; the attribute is never added to.
    expect(plan.update).toContain(`${named('hist')}.${named(String(TODAY - 40))}`);
    expect(plan.update).not.toContain(`${named('hist')}.${named(String(TODAY - 9))}`);
    expect(plan.update).toContain(`REMOVE`);
  });

  it('plans nothing on a day that has not closed', () => {
    const w = new ExpressionWriter();
    expect(planHistory(w, snapshotFromItem({ ...item, td: TODAY }), NOW)).toBeUndefined();
  });
});

describe('usageHistory', () => {
  it('reads history items, the day they carry, the held day, the first design and today, newest last', () => {
    const stored = storedHistoryOf([
      // Day −3's item; it carries day −4 (whose own item was lost) and a stale copy of day −3's.
      { d: TODAY - 3, t: 40, c: 4, m: 4, q: 0, p: { d: TODAY - 4, t: 20, c: 2, m: 2, q: 1 } },
      { d: TODAY - 6, t: 99, c: 9, m: 9, q: 9, p: { d: TODAY - 3, t: 1, c: 1, m: 1, q: 1 } },
    ]);
    const days = usageHistory(
      snapshotFromItem({ ...item, td: TODAY, tu: 5, cd: TODAY, cu: 1, dw: TODAY, dc: 1 }),
      NOW,
      10,
      stored,
    );
    expect(days.map((d) => [d.date.slice(5), d.tokens, d.messages, d.queued])).toEqual([
      ['09-25', 30, 3, 3],
      ['09-26', 0, 0, 0],
      ['09-27', 0, 0, 0],
      ['09-28', 99, 9, 9],
      ['09-29', 10, 1, 0],
      ['09-30', 20, 2, 1],
      ['10-01', 40, 4, 0],
      ['10-02', 0, 0, 1],
      ['10-03', 0, 0, 0],
      ['10-04', 5, 1, 0],
    ]);
  });

  it('stores a history item as the day and the one held before it, under the short names', () => {
    expect(
      historyRecord({
        closed: { day: 7, tokens: 1, costMicroUsd: 2, messages: 3, queued: 4 },
        previous: { day: 5, tokens: 0, costMicroUsd: 0, messages: 0, queued: 0 },
      }),
    ).toEqual({ d: 7, t: 1, c: 2, m: 3, q: 4, p: { d: 5, t: 0, c: 0, m: 0, q: 0 } });
  });
});
