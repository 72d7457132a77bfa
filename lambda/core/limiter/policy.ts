import { z } from 'zod';
import { type LimitOverride, type LimitPolicy, TIERS, type Tier } from './types';

/**
 * Default limits per tier. `free` is the SPEC §2 table: 20 messages/minute with a burst of 5
 * (25 back to back, then one every 3 s) and 100,000 tokens per UTC day, no fixed-window quotas.
 */
export const DEFAULT_TIER_LIMITS: Readonly<Record<Tier, LimitPolicy>> = Object.freeze({
  free: {
    messagesPerMinute: 20,
    burst: 5,
    dailyTokens: 100_000,
    defaultMaxOutputTokens: 1024,
    minOutputTokens: 16,
  },
  pro: {
    messagesPerMinute: 60,
    burst: 20,
    hourlyMessages: 1_000,
    dailyTokens: 1_000_000,
    defaultMaxOutputTokens: 2048,
    minOutputTokens: 16,
  },
  enterprise: {
    messagesPerMinute: 300,
    burst: 100,
    dailyTokens: 10_000_000,
    defaultMaxOutputTokens: 4096,
    minOutputTokens: 16,
  },
});

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** Every field of a tier's limits; all required once merged with the defaults. */
export const limitPolicySchema = z
  .object({
    messagesPerMinute: positiveInt,
    burst: nonNegativeInt,
    hourlyMessages: positiveInt.optional(),
    dailyMessages: positiveInt.optional(),
    dailyTokens: positiveInt,
    tokensPerMinute: positiveInt.optional(),
    monthlyTokens: positiveInt.optional(),
    defaultMaxOutputTokens: positiveInt,
    minOutputTokens: positiveInt,
  })
  .strict()
  .refine((p) => p.minOutputTokens <= p.defaultMaxOutputTokens, {
    message: 'minOutputTokens must not exceed defaultMaxOutputTokens',
  });

/** A partial policy: what an override or a stack's tier configuration may set. */
export const partialLimitPolicySchema = z
  .object({
    messagesPerMinute: positiveInt,
    burst: nonNegativeInt,
    hourlyMessages: positiveInt,
    dailyMessages: positiveInt,
    dailyTokens: positiveInt,
    tokensPerMinute: positiveInt,
    monthlyTokens: positiveInt,
    defaultMaxOutputTokens: positiveInt,
    minOutputTokens: positiveInt,
  })
  .partial()
  .strict();

export const overrideSchema = z
  .object({
    limits: partialLimitPolicySchema,
    expiresAtEpochMs: positiveInt.optional(),
  })
  .strict();

/** `LIMITS_CONFIG`: per-tier changes to the defaults, e.g. `{"tiers":{"free":{"dailyTokens":50000}}}`. */
export const limitsConfigSchema = z
  .object({
    tiers: z.object(Object.fromEntries(TIERS.map((t) => [t, partialLimitPolicySchema.optional()]))).strict(),
  })
  .strict();

export type TierLimits = Readonly<Record<Tier, LimitPolicy>>;

/**
 * Merges a tier configuration (JSON text or object) over {@link DEFAULT_TIER_LIMITS} and validates
 * every resulting policy. Throws a readable error naming the bad field.
 */
export function parseTierLimits(config: unknown): TierLimits {
  const raw = typeof config === 'string' ? (config.trim() === '' ? {} : JSON.parse(config)) : (config ?? {});
  const parsed = limitsConfigSchema.safeParse({ tiers: {}, ...raw });
  if (!parsed.success) throw new Error(`invalid limits configuration: ${z.prettifyError(parsed.error)}`);
  const tiers = parsed.data.tiers as Partial<Record<Tier, Partial<LimitPolicy>>>;
  const merged = {} as Record<Tier, LimitPolicy>;
  for (const tier of TIERS) {
    const candidate = { ...DEFAULT_TIER_LIMITS[tier], ...tiers[tier] };
    const checked = limitPolicySchema.safeParse(candidate);
    if (!checked.success) {
      throw new Error(`invalid limits for tier ${tier}: ${z.prettifyError(checked.error)}`);
    }
    merged[tier] = Object.freeze(checked.data);
  }
  return Object.freeze(merged);
}

export { isTier } from './types';

export function isOverrideActive(
  override: LimitOverride | undefined,
  nowMs: number,
): override is LimitOverride {
  return (
    override !== undefined && (override.expiresAtEpochMs === undefined || override.expiresAtEpochMs > nowMs)
  );
}

/** The limits that apply to one user now: the tier's, with an unexpired override on top. */
export function effectivePolicy(
  tierPolicy: LimitPolicy,
  override: LimitOverride | undefined,
  nowMs: number,
): LimitPolicy {
  return isOverrideActive(override, nowMs) ? { ...tierPolicy, ...override.limits } : tierPolicy;
}
