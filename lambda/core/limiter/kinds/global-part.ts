import type * as z from 'zod';
import { type KindSnapshot, storedNumber } from './kind-snapshot';

/**
 * The windows a shard counts in, as numbers (epoch hours, epoch days, UTC months since 1970; epoch
 * minutes: model quotas).
 */
export interface ShardWindows {
  readonly hour: number;
  readonly day: number;
  readonly month: number;
  readonly minute: number;
}

/** The windows a kind's global part may count in (the minute is the model quotas'). */
export type PartWindow = Exclude<keyof ShardWindows, 'minute'>;

/** What one request takes from, or gives back to, the global counters: its tokens, cost and messages. */
export interface GlobalAmounts {
  readonly tokens: number;
  readonly costMicroUsd: number;
  /** Messages it counts for (its model's weight). */
  readonly weight: number;
}

/**
 * A limit kind's global part (SPEC §2 v2 "Global limits"): how the stack-wide limit of that kind is
 * configured, counted in each shard (lambda/core/limiter/global/shards.ts), shown and retried. A kind
 * that has one declares it as `global` in its own file; the shards and the line (global/) know
 * limits only through these parts. Its unit and label are its kind's (`limitKind(kind).unit`).
 */
export interface GlobalPart {
  /** How the admin reads it in the stack config (the field's meaning). */
  readonly description: string;
  /** The stack config's schema for it (configured units: USD for cost). */
  readonly schema: z.ZodType<number>;
  /**
   * A count (requests, messages): every shard needs a share of at least one, so the shard count may
   * not exceed it, and it bounds the default shard count.
   */
  readonly countsWhole: boolean;
  /** Configured value → stored units (cost: µUSD). */
  stored(configured: number): number;
  /** Stored units → shown (cost: USD). */
  shown(stored: number): number;
  /**
   * The shard counter it keeps, when it counts in a fixed window: the window number's attribute,
   * the count's, and which window. Absent: it is bounded by the shard's in-flight map (`fl`), one
   * entry per request holding a share.
   */
  readonly counter?: {
    readonly windowAttr: string;
    readonly countAttr: string;
    readonly window: PartWindow;
  };
  /**
   * Whether the settle gives back what was reserved and not used (tokens, cost); else only a request
   * undone before it ran gives back what it took (a message).
   */
  readonly refundsUnused: boolean;
  /** What a shard holds of it now, in the shard's windows (stored units). */
  used(shard: KindSnapshot, nowMs: number, windows: ShardWindows): number;
  /** What one request takes of it (stored units). */
  takes(amounts: GlobalAmounts): number;
  /** When a refusal by it may be tried again (ms from now), the shard's windows given. */
  retryAfterMs(nowMs: number, windows: ShardWindows): number;
  /** When it is whole again over these shards (epoch ms), for `status`. */
  resetAtEpochMs(shards: readonly KindSnapshot[], nowMs: number): number;
}

/** A count kept in a fixed window on the shard: what the shard holds of it in `window`. */
export function counted(
  counter: NonNullable<GlobalPart['counter']>,
): (shard: KindSnapshot, nowMs: number, windows: ShardWindows) => number {
  return (shard, _nowMs, windows) =>
    storedNumber(shard, counter.windowAttr) === windows[counter.window]
      ? (storedNumber(shard, counter.countAttr) ?? 0)
      : 0;
}

/** Retry when the shard's window ends. */
export const untilWindowEnds =
  (window: PartWindow, windowMs: number) => (nowMs: number, windows: ShardWindows) =>
    (windows[window] + 1) * windowMs - nowMs;
