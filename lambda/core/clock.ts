import { CoreError } from './errors';
/**
 * The stack's clock: the one source of "now" (epoch ms) of every handler, window, lease and TTL.
 *
 * In AWS it is the machine's clock, always: the offset is 0 and nothing in a function can set it.
 * The local stack (`npm start`, where every handler runs in one process) may start it at another
 * instant (`LOCAL_CLOCK`) and move it forward (`npm run admin -- clock --advance 3d`) so that
 * windows, leases and TTLs can be seen to end without waiting for them (SPEC §9.1 "Local clock").
 * It always runs at real speed.
 *
 * What the clock is not for: durations measured on this machine (a function's remaining time, a
 * timeout, a breaker's silence, a sleep) stay on `Date.now()` or timers; they measure how long
 * something really took, which moving the stack's clock does not change.
 */

/** A source of the current instant, epoch milliseconds. */
export type Clock = () => number;

/** What the stack's clock reads now, and how far it is from the machine's clock. */
export interface ClockReading {
  readonly nowMs: number;
  readonly offsetMs: number;
}

/** Setting the clock where it may not be set (in AWS, or backwards). */
export class ClockError extends CoreError {}

/** Set in every Lambda execution environment by the runtime (never by the local stack). */
const isInAws = () => Boolean(globalThis.process?.env?.AWS_LAMBDA_FUNCTION_NAME);

let offsetMs = 0;

/** The stack's clock: the machine's clock plus the local offset (0 in AWS). */
export const stackClock: Clock = () => Date.now() + offsetMs;

export function readStackClock(): ClockReading {
  const realMs = Date.now();
  return { nowMs: realMs + offsetMs, offsetMs };
}

/**
 * Starts the stack's clock at `instantMs` (it runs on at real speed from there). Local only: in a
 * Lambda execution environment it throws.
 */
export function startStackClockAt(instantMs: number, realNowMs: number = Date.now()): ClockReading {
  assertLocal();
  if (!Number.isFinite(instantMs)) throw new ClockError(`not an instant: ${instantMs}`);
  offsetMs = instantMs - realNowMs;
  return readStackClock();
}

/**
 * Moves the stack's clock forward by `durationMs` (never back: a window already opened, a lease
 * already granted or a TTL already passed must not be seen again). Local only.
 */
export function advanceStackClock(durationMs: number): ClockReading {
  assertLocal();
  if (!Number.isFinite(durationMs) || durationMs < 0)
    throw new ClockError(`the clock only moves forward: ${durationMs} ms`);
  offsetMs += durationMs;
  return readStackClock();
}

/** Back to the machine's clock (tests that run several stacks in one process). Local only. */
export function resetStackClock(): void {
  assertLocal();
  offsetMs = 0;
}

function assertLocal(): void {
  if (isInAws()) throw new ClockError('the stack clock cannot be set in AWS: it is the machine clock');
}

const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `90s`, `15m`, `2h`, `3d`, `500ms` (also `1d12h`) as milliseconds; undefined when the text is not
 * such a duration. Zero is a duration; a sign is not accepted (the clock never moves back).
 */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(ms|s|m|h|d))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g))
    total += Number(amount) * DURATION_UNITS_MS[unit as keyof typeof DURATION_UNITS_MS];
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * `LOCAL_CLOCK`: an ISO-8601 instant with a date and a time and its zone (`2026-01-31T23:59:50Z`),
 * as epoch ms; undefined when it is not one. A date alone or a time without a zone would be read
 * in the machine's time zone, so they are refused rather than guessed.
 */
export function parseInstant(text: string): number | undefined {
  const iso = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(
    text.trim(),
  );
  if (!iso) return undefined;
  const ms = Date.parse(text.trim());
  if (Number.isNaN(ms)) return undefined;
  // Date.parse rolls 2026-02-30 over to March 2: the date must read back as written.
  const zoneMs = iso[5] ? (iso[5] === '-' ? -1 : 1) * (Number(iso[6]) * 60 + Number(iso[7])) * 60_000 : 0;
  return new Date(ms + zoneMs).toISOString().slice(0, 10) === iso[1] ? ms : undefined;
}
