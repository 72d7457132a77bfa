import { describe, expect, it } from 'vitest';
import { ExpressionWriter } from '../../../lambda/core/limiter/expression';
import { isoWeekNumber, monthNumber, monthStartMs, weekStartMs } from '../../../lambda/core/limiter/windows';

describe('monthNumber and monthStartMs', () => {
  it('count UTC calendar months since January 1970 and find where each starts', () => {
    expect(monthNumber(0)).toBe(0);
    expect(monthNumber(Date.UTC(1970, 11, 31, 23, 59, 59, 999))).toBe(11);
    expect(monthNumber(Date.UTC(2026, 0, 1))).toBe(56 * 12);
    expect(monthNumber(Date.UTC(2026, 1, 28, 12))).toBe(56 * 12 + 1);
    expect(monthStartMs(0)).toBe(0);
    expect(monthStartMs(56 * 12 + 1)).toBe(Date.UTC(2026, 1, 1));
    expect(monthStartMs(56 * 12 + 12)).toBe(Date.UTC(2027, 0, 1));
    // Every month of four years, leap February included: the start is in the month, a ms before is not.
    for (let m = 56 * 12; m < 60 * 12; m++) {
      expect(monthNumber(monthStartMs(m))).toBe(m);
      expect(monthNumber(monthStartMs(m) - 1)).toBe(m - 1);
    }
  });
});

describe('isoWeekNumber and weekStartMs', () => {
  it('count ISO weeks (Monday 00:00 UTC to the next Monday) and find the Monday each starts on', () => {
    // The epoch, a Thursday, is in week 0, which began on Monday 1969-12-29.
    expect(isoWeekNumber(0)).toBe(0);
    expect(weekStartMs(0)).toBe(Date.UTC(1969, 11, 29));
    expect(isoWeekNumber(Date.UTC(1970, 0, 4, 23, 59, 59, 999))).toBe(0); // Sunday
    expect(isoWeekNumber(Date.UTC(1970, 0, 5))).toBe(1); // Monday
    const sunday = Date.UTC(2026, 10, 29, 23, 59, 59, 999);
    expect(isoWeekNumber(sunday + 1)).toBe(isoWeekNumber(sunday) + 1);
    expect(weekStartMs(isoWeekNumber(sunday) + 1)).toBe(Date.UTC(2026, 10, 30));
    // Four years of weeks, across leap days and year ends: each starts on a Monday, a ms before is the week before.
    for (let w = isoWeekNumber(Date.UTC(2026, 0, 1)); w < isoWeekNumber(Date.UTC(2030, 0, 1)); w++) {
      expect(new Date(weekStartMs(w)).getUTCDay()).toBe(1);
      expect(isoWeekNumber(weekStartMs(w))).toBe(w);
      expect(isoWeekNumber(weekStartMs(w) - 1)).toBe(w - 1);
    }
  });
});

describe('ExpressionWriter', () => {
  it('names each attribute once, however often a plan mentions it, and numbers every value', () => {
    const w = new ExpressionWriter();
    const a = w.name('waiting');
    expect(w.name('waiting')).toBe(a);
    const b = w.name('act');
    expect(b).not.toBe(a);
    w.condition(`size(${a}) < ${w.value(10)}`);
    w.condition(`attribute_not_exists(${b})`);
    w.set(`${a} = ${w.value(['r1'])}`);
    w.remove(b);
    expect(w.build()).toEqual({
      update: 'SET #n0 = :v1 REMOVE #n1',
      condition: 'size(#n0) < :v0 AND attribute_not_exists(#n1)',
      names: { '#n0': 'waiting', '#n1': 'act' },
      values: { ':v0': 10, ':v1': ['r1'] },
    });
  });

  it('leaves out the parts a plan does not use', () => {
    const only = new ExpressionWriter();
    only.remove(only.name('wk'));
    expect(only.build()).toEqual({ update: 'REMOVE #n0', condition: '', names: { '#n0': 'wk' }, values: {} });
    const sets = new ExpressionWriter();
    sets.set(`${sets.name('a')} = ${sets.value(1)}`, `${sets.name('b')} = ${sets.value(2)}`);
    expect(sets.build().update).toBe('SET #n0 = :v0, #n1 = :v1');
  });
});
