import { z } from 'zod';
import {
  advanceStackClock,
  type ClockReading,
  parseDurationMs,
  parseInstant,
  readStackClock,
} from '../lambda/core/clock';
import { isConnectionRefused } from './discovery';
import { LocalError } from './errors';
import type { LocalRoute } from './gateway';

/**
 * The local stack's clock over HTTP (local only: API Gateway has no such route), for
 * `npm run admin -- clock [--advance D]`:
 *
 *   GET  /local-stack/clock                      → { now, nowMs, offsetMs }
 *   POST /local-stack/clock {"advanceMs": N}      → the same, after moving it forward N ms
 */
export const CLOCK_PATH = '/local-stack/clock';

/** The environment variable that starts the local stack's clock at an instant. */
export const LOCAL_CLOCK_ENV = 'LOCAL_CLOCK';

/** What the endpoint answers. */
export interface ClockAnswer {
  /** The stack's clock, ISO-8601 UTC. */
  readonly now: string;
  readonly nowMs: number;
  /** Stack clock minus the machine's clock. */
  readonly offsetMs: number;
}

const advanceSchema = z
  .object({
    advanceMs: z
      .number()
      .int()
      .nonnegative()
      .max(366 * 86_400_000),
  })
  .strict();

function answer(reading: ClockReading): ClockAnswer {
  return { now: new Date(reading.nowMs).toISOString(), nowMs: reading.nowMs, offsetMs: reading.offsetMs };
}

/** The gateway route of {@link CLOCK_PATH}. */
export const clockRoute: LocalRoute = async ({ method, body }) => {
  if (method === 'GET') return { status: 200, body: answer(readStackClock()) };
  if (method !== 'POST') return { status: 405, body: { message: 'GET or POST' } };
  let parsed: z.infer<typeof advanceSchema>;
  try {
    parsed = advanceSchema.parse(JSON.parse(body || '{}'));
  } catch (err) {
    if (!(err instanceof SyntaxError || err instanceof z.ZodError)) throw err;
    return {
      status: 400,
      body: {
        message:
          'expected {"advanceMs": N}, N a whole number of ms, 0 to a year: the clock only moves forward',
      },
    };
  }
  return { status: 200, body: answer(advanceStackClock(parsed.advanceMs)) };
};

/**
 * `LOCAL_CLOCK` of `npm start`: undefined when unset or empty (the machine's clock), the instant
 * in epoch ms, or an Error saying what is wrong with it.
 */
export function parseLocalClock(raw: string | undefined): number | undefined | Error {
  if (raw === undefined || raw.trim() === '') return undefined;
  const ms = parseInstant(raw);
  if (ms === undefined)
    return new Error(
      `${LOCAL_CLOCK_ENV} must be an ISO-8601 instant with its zone, e.g. 2026-01-31T23:59:50Z, got '${raw}'`,
    );
  return ms;
}

/** `--advance` of `admin clock`: a duration in ms, or an Error saying what is wrong with it. */
export function parseAdvance(raw: string): number | Error {
  if (raw.trim().startsWith('-')) return new Error(`--advance: the clock only moves forward, not ${raw}`);
  const ms = parseDurationMs(raw);
  if (ms === undefined || ms > 366 * 86_400_000)
    return new Error(`--advance: a duration such as 90s, 15m, 2h or 3d (at most 366d), not ${raw}`);
  return ms;
}

/** A stack started before the clock endpoint existed. */
export class NoClockEndpointError extends LocalError {
  constructor(httpUrl: string) {
    super(`the stack at ${httpUrl} has no clock endpoint (${CLOCK_PATH}): is it an older npm start?`);
  }
}

/**
 * "Now" for a command talking to the local stack at `httpUrl`: its clock, or this machine's when
 * it has no clock endpoint or does not answer (the command's own call then says so).
 */
export async function localStackNow(httpUrl: string): Promise<number> {
  try {
    return (await requestClock(httpUrl)).nowMs;
  } catch (err) {
    if (err instanceof NoClockEndpointError || isConnectionRefused(err)) return Date.now();
    throw err;
  }
}

/** Reads (or, with `advanceMs`, moves) the clock of the local stack at `httpUrl`. */
export async function requestClock(httpUrl: string, advanceMs?: number): Promise<ClockAnswer> {
  const res = await fetch(
    `${httpUrl}${CLOCK_PATH}`,
    advanceMs === undefined
      ? { method: 'GET' }
      : {
          method: 'POST',
          body: JSON.stringify({ advanceMs }),
          headers: { 'content-type': 'application/json' },
        },
  );
  const text = await res.text();
  if (res.status === 404)
    throw new Error(
      `the stack at ${httpUrl} has no clock endpoint (${CLOCK_PATH}): is it an older npm start?`,
    );
  if (!res.ok) throw new Error(`the stack's clock answered ${res.status}: ${text}`);
  return JSON.parse(text) as ClockAnswer;
}

/** `2026-02-01T00:00:03.120Z (stack clock; 3d 0h 0m 2s ahead of this machine's)` */
export function renderClock(answer: ClockAnswer): string {
  const ahead = answer.offsetMs >= 0;
  const abs = Math.abs(answer.offsetMs);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = Math.round((abs % 60_000) / 1000);
  const offset =
    abs < 1000
      ? 'the same as this machine’s clock'
      : `${d}d ${h}h ${m}m ${s}s ${ahead ? 'ahead of' : 'behind'} this machine’s clock`;
  return `${answer.now} (stack clock; offset ${answer.offsetMs} ms: ${offset})`;
}
