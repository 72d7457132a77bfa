import * as z from 'zod';
import type { LimiterSnapshot } from '../item/state';
import type { GlobalPart, ShardWindows } from '../kinds/global-part';
import { storedNumber } from '../kinds/kind-snapshot';
import { LIMIT_KINDS, type LimitName, limitKind } from '../kinds/registry';
import { dayNumber, hourNumber, monthNumber } from '../windows';
import {
  MINUTE_MS,
  type ModelQuotaName,
  type ModelQuotas,
  minuteNumber,
  quotaShardCap,
  quotaTotals,
  shardMinute,
} from './model-quotas';
import { SHARE_RECORDS_PER_SHARD } from './share-record';

/**
 * Stack-wide limits (SPEC §2 v2 "Global limits"), exact and sharded (global/shards.ts): which
 * limits there are and how they are configured, all taken from the kinds' global parts
 * (global/parts.ts), so no code here names a limit.
 */
/** A global part as its kind declares it: the kind's name, and the part. */
export type KindGlobalPart = GlobalPart & { readonly kind: LimitName };

/** Every kind's global part, in the order `status` lists them (kinds/registry.ts). */
export const GLOBAL_PARTS: readonly KindGlobalPart[] = LIMIT_KINDS.flatMap((k) =>
  k.global ? [{ kind: k.name, ...k.global }] : [],
);

/** A limit that may be bounded stack-wide: a kind with a global part (GLOBAL_LIMITS at run time). */
export type GlobalLimit = LimitName;
export const GLOBAL_LIMITS: readonly GlobalLimit[] = GLOBAL_PARTS.map((p) => p.kind);
/** What may hold a request back stack-wide: a global limit, or a model's account quota. */
export type GlobalBound = GlobalLimit | ModelQuotaName;
/** As `status`, refusals and the admin CLI name them (`global.model.<id>.requestsPerMinute` for a quota). */
export type GlobalLimitName = `global.${GlobalBound}`;
export const GLOBAL_LIMIT_NAMES = GLOBAL_LIMITS.map((l) => `global.${l}` as const);

/**
 * The stack's global limits, in configured units (cost in USD): one optional field per global
 * part (its `description` says what it bounds), the shard count and the shadow list.
 */
export type GlobalLimits = { readonly [K in GlobalLimit]?: number } & {
  /**
   * Items the counters are spread over: the configured count (@default 4), raised to fit the
   * requests in flight at SHARE_RECORDS_PER_SHARD each (shardsNeeded).
   */
  readonly shards: number;
  /** Global limits evaluated and reported, never enforced. */
  readonly shadow?: readonly GlobalLimit[];
  /**
   * The models' account quotas by model id (`models[].accountQuota`, not configured here:
   * {@link withModelQuotas}), counted on the same shards (global/model-quotas.ts).
   */
  readonly models?: ModelQuotas;
};

export const DEFAULT_GLOBAL_SHARDS = 4;
/** The most shards a stack may have (configured or derived): every refusal round may read them all. */
export const MAX_GLOBAL_SHARDS = 1000;

/** The part bounded by the shards' in-flight maps (no window counter): requests in flight. */
const SLOT = GLOBAL_PARTS.find((p) => p.counter === undefined);

/**
 * The shards the configured requests in flight need: a shard holds at most SHARE_RECORDS_PER_SHARD
 * shares at once, so `n` in flight need ceil(n / cap) of them (0 without that limit).
 */
export function shardsNeeded(requestsInFlight: number | undefined): number {
  return requestsInFlight === undefined ? 0 : Math.ceil(requestsInFlight / SHARE_RECORDS_PER_SHARD);
}

/**
 * The shards a stack needs for `concurrency` requests at once when no `requestsInFlight` limit
 * sets it: a shard still holds at most SHARE_RECORDS_PER_SHARD shares (one per request holding a
 * share of any global limit), so without this a stack would run at most shards × that many at
 * once. Undefined when the configuration already decides (requestsInFlight or shards set, or no
 * global limit); else at least DEFAULT_GLOBAL_SHARDS, at most any count limit allows.
 */
export function shardsForConcurrency(
  global: Readonly<Record<string, unknown>> | undefined,
  concurrency: number,
  quotas?: ModelQuotas,
): number | undefined {
  const withQuotas = quotaShardCap(quotas) < Number.POSITIVE_INFINITY;
  if (global?.shards !== undefined || (SLOT && global?.[SLOT.kind] !== undefined)) return undefined;
  if (!withQuotas && !GLOBAL_LIMITS.some((name) => global?.[name] !== undefined)) return undefined;
  const counts = WHOLE.map((name) => (typeof global?.[name] === 'number' ? global[name] : Infinity));
  // A model's requestsPerMinute is a count too (every shard needs a share of one).
  counts.push(quotaShardCap(quotas));
  return Math.max(1, Math.min(Math.max(DEFAULT_GLOBAL_SHARDS, shardsNeeded(concurrency)), ...counts));
}

/** The global part of a limit. */
export function globalPart(name: GlobalLimit): KindGlobalPart {
  const part = GLOBAL_PARTS.find((p) => p.kind === name);
  if (!part) throw new Error(`no global part for ${name}`);
  return part;
}

/** The counts (requests, messages): every shard needs a share of at least one of each. */
const WHOLE: readonly GlobalLimit[] = GLOBAL_PARTS.filter((p) => p.countsWhole).map((p) => p.kind);

export const globalLimitsSchema = z
  .object({
    ...(Object.fromEntries(GLOBAL_PARTS.map((p) => [p.kind, p.schema.optional()])) as Record<
      GlobalLimit,
      z.ZodOptional<z.ZodType<number>>
    >),
    /**
     * @default 4, or the smallest count limit if that is less (each shard needs a share of one);
     * raised to shardsNeeded(requestsInFlight) when that is more
     */
    shards: z.number().int().min(1).max(MAX_GLOBAL_SHARDS).optional(),
    shadow: z.array(z.enum(GLOBAL_LIMITS as [GlobalLimit, ...GlobalLimit[]])).optional(),
  })
  .strict()
  .refine(
    (g) => WHOLE.every((name) => g[name] === undefined || g.shards === undefined || g[name] >= g.shards),
    {
      message: `shards must not exceed ${WHOLE.join(' or ')} (every shard needs a share of at least one); leave it out to get the most that fits`,
      path: ['shards'],
    },
  )
  .transform(
    (g): GlobalLimits => ({
      ...g,
      shards: Math.max(
        g.shards ?? Math.min(DEFAULT_GLOBAL_SHARDS, ...WHOLE.map((name) => g[name] ?? Infinity)),
        shardsNeeded(SLOT && g[SLOT.kind]),
      ),
    }),
  )
  // The shards derived for the requests in flight must fit too: at most MAX_GLOBAL_SHARDS, and no
  // more than any count limit (each shard needs a share of at least one of each).
  .superRefine((g, ctx) => {
    const needed = shardsNeeded(SLOT && g[SLOT.kind]);
    const short = WHOLE.filter((name) => g[name] !== undefined && g[name] < g.shards);
    if (needed > MAX_GLOBAL_SHARDS || short.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['shards'],
        message: `${SLOT?.kind} ${SLOT && g[SLOT.kind]} needs ${needed} shards (${SHARE_RECORDS_PER_SHARD} requests in flight each)${
          short.length
            ? `, more than ${short.join(' and ')} allows (every shard needs a share of at least one)`
            : ''
        }${needed > MAX_GLOBAL_SHARDS ? `, more than the ${MAX_GLOBAL_SHARDS} allowed` : ''}`,
      });
    }
  });

/** Any global limit set? Without one, decisions write no shard at all. */
export function hasGlobalLimits(limits: GlobalLimits | undefined): limits is GlobalLimits {
  return (
    limits !== undefined &&
    (GLOBAL_LIMITS.some((l) => limits[l] !== undefined) || Object.keys(limits.models ?? {}).length > 0)
  );
}

/**
 * The global limits with the models' account quotas (SPEC §9.4): a stack with quotas and no global
 * limit gets shards too. requestsPerMinute is a count, so the shards are at most the smallest
 * (every shard needs a share of at least one request): the default (DEFAULT_GLOBAL_SHARDS) is
 * lowered to it, a configured `shards` (`configuredShards`) or the shards the requests in flight
 * need (shardsNeeded) above it is an error, returned as a sentence.
 */
export function withModelQuotas(
  global: GlobalLimits | undefined,
  quotas: ModelQuotas | undefined,
  configuredShards: number | undefined,
): GlobalLimits | string | undefined {
  if (quotas === undefined) return global;
  const cap = quotaShardCap(quotas);
  const smallest = Object.entries(quotas).find(([, q]) => q.requestsPerMinute === cap)?.[0];
  const needed = shardsNeeded(SLOT && global?.[SLOT.kind]);
  const over = (what: string) =>
    `${what} is more than model ${smallest}'s accountQuota.requestsPerMinute ${cap} allows (every shard needs a share of at least one request)`;
  if (configuredShards !== undefined && configuredShards > cap)
    return over(`global.shards ${configuredShards}`);
  if (needed > cap) return over(`global.${SLOT?.kind} needs ${needed} shards, which`);
  const shards = configuredShards ?? Math.max(needed, Math.min(global?.shards ?? DEFAULT_GLOBAL_SHARDS, cap));
  return { ...global, shards, models: quotas };
}

/** A limit in stored units (cost in µUSD), when set. */
export function storedLimit(limits: GlobalLimits, name: GlobalLimit): number | undefined {
  const value = limits[name];
  return value === undefined ? undefined : globalPart(name).stored(value);
}

/** One global limit's totals over every shard, for `status` and `admin top`. */
export interface GlobalLimitState {
  readonly name: GlobalLimitName;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly unit: 'requests' | 'messages' | 'tokens' | 'usd';
  readonly resetAtEpochMs: number;
  readonly shadow: boolean;
}

/**
 * The window a shard counts in, as seen from a clock at `nowMs`: this clock's window, or the
 * shard's own if it is already in a later one. Instances' clocks differ by a second or two; one
 * that is behind must not try to open a window the shard has already left (its condition could
 * never hold), so it counts in the shard's window, as the instances ahead of it do.
 */
export function shardWindows(snap: LimiterSnapshot, nowMs: number): ShardWindows {
  return {
    hour: laterWindow(snap, 'hour', hourNumber(nowMs)),
    day: laterWindow(snap, 'day', dayNumber(nowMs)),
    minute: Math.max(minuteNumber(nowMs), shardMinute(snap) ?? Number.NEGATIVE_INFINITY),
    month: laterWindow(snap, 'month', monthNumber(nowMs)),
  };
}

/** The later of `mine` and the shard's own window of this length (a function, not a closure per read: every shard's room reads it). */
function laterWindow(snap: LimiterSnapshot, window: keyof ShardWindows, mine: number): number {
  let latest = mine;
  for (const attr of WINDOW_ATTRS[window]) {
    const t = storedNumber(snap, attr);
    if (t !== undefined && t > latest) latest = t;
  }
  return latest;
}

/** The window attributes the global parts count in, by window (read by every shardWindows). */
const WINDOW_ATTRS: Readonly<Record<keyof ShardWindows, readonly string[]>> = {
  hour: windowAttrsOf('hour'),
  day: windowAttrsOf('day'),
  minute: windowAttrsOf('minute'),
  month: windowAttrsOf('month'),
};

function windowAttrsOf(window: keyof ShardWindows): string[] {
  return GLOBAL_PARTS.flatMap(({ counter }) => (counter?.window === window ? [counter.windowAttr] : []));
}

/** What a shard holds of `name` now (stored units). */
export function usedIn(snap: LimiterSnapshot, name: GlobalLimit, nowMs: number): number {
  return globalPart(name).used(snap, nowMs, shardWindows(snap, nowMs));
}

export function globalTotals(
  limits: GlobalLimits,
  shards: readonly LimiterSnapshot[],
  nowMs: number,
): GlobalLimitState[] {
  const states: GlobalLimitState[] = [];
  for (const part of GLOBAL_PARTS) {
    const name = part.kind;
    const limit = storedLimit(limits, name);
    if (limit === undefined) continue;
    const total = shards.reduce((sum, snap) => sum + usedIn(snap, name, nowMs), 0);
    states.push({
      name: `global.${name}`,
      limit: part.shown(limit),
      used: part.shown(total),
      remaining: part.shown(Math.max(0, limit - total)),
      unit: limitKind(name).unit,
      resetAtEpochMs: part.resetAtEpochMs(shards, nowMs),
      shadow: limits.shadow?.includes(name) ?? false,
    });
  }
  for (const quota of quotaTotals(limits.models, shards, nowMs)) {
    states.push({
      ...quota,
      name: `global.${quota.name}`,
      remaining: Math.max(0, quota.limit - quota.used),
      shadow: false,
    });
  }
  return states;
}

/**
 * When a refusal by this global limit may be tried again (ms from now): the end of the window it
 * is counted in — this clock's, or (`windows`) the shard's when it is already in a later one.
 */
export function globalRetryAfterMs(
  name: GlobalBound,
  nowMs: number,
  windows: ShardWindows = {
    hour: hourNumber(nowMs),
    day: dayNumber(nowMs),
    month: monthNumber(nowMs),
    minute: minuteNumber(nowMs),
  },
): number {
  // A model's quota frees when the shard's minute ends.
  if (!isGlobalLimit(name)) return (windows.minute + 1) * MINUTE_MS - nowMs;
  return globalPart(name).retryAfterMs(nowMs, windows);
}

/** Is this bound one of the kinds' global limits (not a model's quota)? */
export const isGlobalLimit = (name: string): name is GlobalLimit =>
  (GLOBAL_LIMITS as readonly string[]).includes(name);
