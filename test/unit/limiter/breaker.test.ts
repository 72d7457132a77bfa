import { describe, expect, it } from 'vitest';
import { type BreakerState, StoreBreaker } from '../../../lambda/core/limiter/breaker';

/** A breaker on a clock the test moves by hand, with every state change recorded. */
function breakerAt(startMs: number, options: ConstructorParameters<typeof StoreBreaker>[0] = {}) {
  let nowMs = startMs;
  const changes: BreakerState[] = [];
  const breaker = new StoreBreaker({
    clock: () => nowMs,
    onChange: (state) => changes.push(state),
    ...options,
  });
  return {
    breaker,
    changes,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe('StoreBreaker', () => {
  it('never asks for a probe while the store has been silent for less than the silence, however many faults', () => {
    const { breaker, advance } = breakerAt(1_000_000, { silenceMs: 3000, minFaults: 3 });
    for (let i = 0; i < 50; i++) {
      expect(breaker.recordFault()).toBe(false);
      advance(59); // 50 faults in 2,950 ms
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.allowsCall()).toBe(true);
  });

  it('asks for a probe once the silence has lasted exactly silenceMs, and only with minFaults in it', () => {
    const { breaker, advance } = breakerAt(0, { silenceMs: 3000, minFaults: 3 });
    expect(breaker.recordFault()).toBe(false);
    expect(breaker.recordFault()).toBe(false);
    advance(2999);
    expect(breaker.recordFault()).toBe(false); // 3 faults, 2,999 ms of silence
    advance(1);
    expect(breaker.recordFault()).toBe(true); // 4 faults, 3,000 ms

    const few = breakerAt(0, { silenceMs: 3000, minFaults: 3 });
    few.advance(10_000);
    expect(few.breaker.recordFault()).toBe(false); // a long silence, one fault
    expect(few.breaker.recordFault()).toBe(false);
    expect(few.breaker.recordFault()).toBe(true);
  });

  it('counts the silence from a fresh instance’s start, not from the epoch', () => {
    const { breaker } = breakerAt(Date.UTC(2026, 10, 24), { silenceMs: 3000, minFaults: 1 });
    expect(breaker.recordFault()).toBe(false);
  });

  it('starts the silence again at any answer, and forgets the faults before it', () => {
    const { breaker, advance } = breakerAt(0, { silenceMs: 3000, minFaults: 3 });
    for (let i = 0; i < 3; i++) breaker.recordFault();
    advance(2900);
    breaker.recordAnswer();
    advance(2999);
    expect(breaker.recordFault()).toBe(false);
    advance(1);
    // 3,000 ms since the answer but only 2 faults since it: not yet.
    expect(breaker.recordFault()).toBe(false);
    expect(breaker.recordFault()).toBe(true);
  });

  it('uses 3 s and 3 faults by default', () => {
    const { breaker, advance } = breakerAt(0);
    for (let i = 0; i < 3; i++) expect(breaker.recordFault()).toBe(false);
    advance(2999);
    expect(breaker.recordFault()).toBe(false);
    advance(1);
    expect(breaker.recordFault()).toBe(true);
  });

  it('tells a change of state only when there is one, with its cause', () => {
    const seen: [BreakerState, { readonly cause?: string }][] = [];
    const breaker = new StoreBreaker({
      clock: () => 0,
      onChange: (state, detail) => seen.push([state, detail]),
    });
    breaker.recordAnswer(); // closed already: nothing to tell
    breaker.open('TimeoutError: no answer');
    breaker.recordAnswer();
    breaker.recordAnswer();
    expect(seen).toEqual([
      ['open', { cause: 'TimeoutError: no answer' }],
      ['closed', {}],
    ]);
    // Nobody listening is fine too.
    const quiet = new StoreBreaker({ clock: () => 0 });
    quiet.open('x');
    expect(() => quiet.recordAnswer()).not.toThrow();
    expect(quiet.state).toBe('closed');
  });

  it('never asks for another probe while open, however long the silence (one probe per interval goes through allowsCall)', () => {
    const { breaker, advance } = breakerAt(0, { silenceMs: 3000, minFaults: 3 });
    breaker.open('down');
    advance(60_000);
    for (let i = 0; i < 10; i++) expect(breaker.recordFault()).toBe(false);
  });

  it('lets one probe through every 500 ms by default while open', () => {
    const { breaker, advance } = breakerAt(0);
    breaker.open('down');
    advance(499);
    expect(breaker.allowsCall()).toBe(false);
    advance(1);
    expect(breaker.allowsCall()).toBe(true);
    expect(breaker.allowsCall()).toBe(false);
  });

  it('lets one probe through per interval while open, and closes at the first answer', () => {
    const { breaker, changes, advance } = breakerAt(0, { probeIntervalMs: 500 });
    breaker.open('timeout');
    expect(breaker.state).toBe('open');
    expect(breaker.allowsCall()).toBe(false); // the open itself counts as the last probe
    advance(499);
    expect(breaker.allowsCall()).toBe(false);
    advance(1);
    expect(breaker.allowsCall()).toBe(true);
    expect(breaker.allowsCall()).toBe(false);
    expect(breaker.recordFault()).toBe(false); // already open: nothing more to probe
    breaker.open('again'); // no second change
    advance(500);
    expect(breaker.allowsCall()).toBe(true);
    breaker.recordAnswer();
    expect(breaker.state).toBe('closed');
    expect(breaker.allowsCall()).toBe(true);
    expect(changes).toEqual(['open', 'closed']);
  });
});
