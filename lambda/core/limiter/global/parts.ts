import * as z from 'zod';
import { microUsdToUsd, usdToMicroUsd } from '../../models';
import { liveInFlight } from '../item/state';
import { DAY_MS, dayNumber, HOUR_MS, hourNumber } from '../windows';
import type { GlobalPart, KindGlobalPart, ShardWindows } from './part';

/*
 * The global parts of the limit kinds that have one. Each is a standalone object its kind file
 * owns (`kind.global`, issue 21): the list below is what global/ reads, in the order `status`
 * lists them and the shard write counts them.
 */

const same = (n: number) => n;
const untilWindowEnds =
  (window: keyof ShardWindows, windowMs: number) => (nowMs: number, windows: ShardWindows) =>
    (windows[window] + 1) * windowMs - nowMs;

/** A refusal by the in-flight bound says "a second": a settle may free a slot any moment. */
const IN_FLIGHT_RETRY_MS = 1000;

/** Requests being answered at once across all users: bounded by each shard's in-flight map. */
export const requestsInFlightGlobal: KindGlobalPart<'requestsInFlight'> = {
  kind: 'requestsInFlight',
  description: 'Requests being answered at once across all users.',
  schema: z.number().int().positive(),
  countsWhole: true,
  stored: same,
  shown: same,
  refundsUnused: false,
  used: (shard, nowMs) => liveInFlight(shard, nowMs).length,
  takes: () => 1,
  retryAfterMs: () => IN_FLIGHT_RETRY_MS,
  resetAtEpochMs(shards, nowMs) {
    const leases = shards.flatMap((s) => liveInFlight(s, nowMs).map(([, lease]) => lease));
    return leases.length ? Math.min(...leases) : nowMs;
  },
};

/** Messages per UTC hour across all users (a message counts its model's weight). */
export const hourlyMessagesGlobal: KindGlobalPart<'hourlyMessages'> = {
  kind: 'hourlyMessages',
  description: 'Messages per UTC hour across all users.',
  schema: z.number().int().positive(),
  countsWhole: true,
  stored: same,
  shown: same,
  counter: { windowAttr: 'hw', countAttr: 'hc', window: 'hour' },
  refundsUnused: false,
  used: (shard, _nowMs, { hour }) => (shard.hw === hour ? (shard.hc ?? 0) : 0),
  takes: (ask) => ask.weight,
  retryAfterMs: untilWindowEnds('hour', HOUR_MS),
  resetAtEpochMs: (_shards, nowMs) => (hourNumber(nowMs) + 1) * HOUR_MS,
};

/** Tokens per UTC day across all users (reserve-then-reconcile). */
export const dailyTokensGlobal: KindGlobalPart<'dailyTokens'> = {
  kind: 'dailyTokens',
  description: 'Tokens per UTC day across all users (reserve-then-reconcile).',
  schema: z.number().int().positive(),
  countsWhole: false,
  stored: same,
  shown: same,
  counter: { windowAttr: 'td', countAttr: 'tu', window: 'day' },
  refundsUnused: true,
  used: (shard, _nowMs, { day }) => (shard.td === day ? (shard.tu ?? 0) : 0),
  takes: (ask) => ask.tokens,
  retryAfterMs: untilWindowEnds('day', DAY_MS),
  resetAtEpochMs: (_shards, nowMs) => (dayNumber(nowMs) + 1) * DAY_MS,
};

/** USD per UTC day across all users (reserve-then-reconcile; stored in µUSD). */
export const dailyCostUsdGlobal: KindGlobalPart<'dailyCostUsd'> = {
  kind: 'dailyCostUsd',
  description: 'USD per UTC day across all users (reserve-then-reconcile, stored in µUSD).',
  schema: z.number().positive().max(10_000_000),
  countsWhole: false,
  stored: usdToMicroUsd,
  shown: microUsdToUsd,
  counter: { windowAttr: 'cd', countAttr: 'cu', window: 'day' },
  refundsUnused: true,
  used: (shard, _nowMs, { day }) => (shard.cd === day ? (shard.cu ?? 0) : 0),
  takes: (ask) => ask.costMicroUsd,
  retryAfterMs: untilWindowEnds('day', DAY_MS),
  resetAtEpochMs: (_shards, nowMs) => (dayNumber(nowMs) + 1) * DAY_MS,
};

/** Every global part, in the order `status` lists them. */
export const GLOBAL_PARTS = [
  requestsInFlightGlobal,
  hourlyMessagesGlobal,
  dailyTokensGlobal,
  dailyCostUsdGlobal,
] as const satisfies readonly KindGlobalPart[];

export type { GlobalPart };
