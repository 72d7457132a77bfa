import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  advanceStackClock,
  ClockError,
  parseDurationMs,
  parseInstant,
  readStackClock,
  resetStackClock,
  stackClock,
  startStackClockAt,
} from '../../lambda/core/clock';
import { parseAdvance, parseLocalClock, renderClock } from '../../local/clock';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.useRealTimers();
  resetStackClock();
});

describe('the stack clock', () => {
  it('starts at an instant and runs at real speed from there', () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-03T08:00:00Z') });
    startStackClockAt(Date.parse('2026-01-31T23:59:50Z'));
    expect(new Date(stackClock()).toISOString()).toBe('2026-01-31T23:59:50.000Z');
    vi.advanceTimersByTime(15_000);
    expect(new Date(stackClock()).toISOString()).toBe('2026-02-01T00:00:05.000Z');
    expect(readStackClock().offsetMs).toBe(
      Date.parse('2026-01-31T23:59:50Z') - Date.parse('2026-12-03T08:00:00Z'),
    );
  });

  it('moves forward by a duration, never back', () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-31T23:59:50Z') });
    advanceStackClock(parseDurationMs('3d')!);
    expect(new Date(stackClock()).toISOString()).toBe('2026-02-03T23:59:50.000Z');
    expect(() => advanceStackClock(-1)).toThrow(ClockError);
    expect(new Date(stackClock()).toISOString()).toBe('2026-02-03T23:59:50.000Z');
  });

  it('cannot be set in a Lambda execution environment: there it is the machine clock', () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'chat-limiter-message');
    expect(() => startStackClockAt(0)).toThrow(/cannot be set in AWS/);
    expect(() => advanceStackClock(1000)).toThrow(/cannot be set in AWS/);
    expect(readStackClock().offsetMs).toBe(0);
  });
});

describe('LOCAL_CLOCK and --advance', () => {
  it.each([
    ['2026-01-31T23:59:50Z', '2026-01-31T23:59:50.000Z'],
    ['2026-01-31T23:59:50.250Z', '2026-01-31T23:59:50.250Z'],
    ['2026-02-01T01:59:50+02:00', '2026-01-31T23:59:50.000Z'],
    ['2026-01-31T23:59Z', '2026-01-31T23:59:00.000Z'],
  ])('reads %s as %s', (text, iso) => {
    expect(new Date(parseInstant(text)!).toISOString()).toBe(iso);
  });

  it.each([
    'yesterday',
    '2026-01-31',
    '2026-01-31T23:59:50',
    '2026-02-30T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '1769903990',
  ])('refuses %s as an instant, naming LOCAL_CLOCK', (text) => {
    expect(parseInstant(text)).toBeUndefined();
    expect(parseLocalClock(text)).toEqual(
      expect.objectContaining({ message: expect.stringContaining('LOCAL_CLOCK') }),
    );
  });

  it('leaves the machine clock when LOCAL_CLOCK is unset or empty', () => {
    expect(parseLocalClock(undefined)).toBeUndefined();
    expect(parseLocalClock('')).toBeUndefined();
  });

  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['3d', 259_200_000],
    ['1d12h', 129_600_000],
    ['500ms', 500],
  ])('reads --advance %s as %i ms', (text, ms) => {
    expect(parseAdvance(text)).toBe(ms);
  });

  it.each([
    ['-3d', /only moves forward/],
    ['3', /a duration such as/],
    ['soon', /a duration such as/],
    ['400d', /at most 366d/],
  ])('refuses --advance %s', (text, message) => {
    const result = parseAdvance(text);
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toMatch(message);
  });

  it('prints the clock with its offset from the machine clock', () => {
    expect(renderClock({ now: '2026-02-01T23:59:50.000Z', nowMs: 0, offsetMs: 86_400_000 + 3_723_000 })).toBe(
      '2026-02-01T23:59:50.000Z (stack clock; offset 90123000 ms: 1d 1h 2m 3s ahead of this machine’s clock)',
    );
  });
});
