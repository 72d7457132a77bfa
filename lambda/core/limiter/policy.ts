import * as z from 'zod';
import { ConfigError } from '../errors';
import { ECHO_MODEL, type ModelSpec, modelSpecSchema } from '../models';
import { type GlobalLimits, globalLimitsSchema, hasGlobalLimits, withModelQuotas } from './global/limits';
import { modelQuotasOf } from './global/model-quotas';
import { KIND_POLICY_FIELDS, LIMIT_NAMES, type LimitOverride, type LimitPolicy } from './kinds/registry';
import { TEAM_NAME } from './teams';
import { TIERS, type Tier } from './tiers';

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
  // pro and enterprise cap their replies at once (requestsInFlight): without a cap, the replies a
  // user may hold while they run (burst + rate × 18 minutes: 1,100 and 5,500) would let one item
  // reach ~300 KB and ~1.5 MB (item/size.ts; issue 22).
  pro: {
    messagesPerMinute: 60,
    burst: 20,
    requestsInFlight: 20,
    hourlyMessages: 1_000,
    dailyTokens: 1_000_000,
    defaultMaxOutputTokens: 2048,
    minOutputTokens: 16,
  },
  enterprise: {
    messagesPerMinute: 300,
    burst: 100,
    requestsInFlight: 100,
    dailyTokens: 10_000_000,
    defaultMaxOutputTokens: 4096,
    minOutputTokens: 16,
  },
});

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const modelId = z.string().min(1).max(64);
const modelIds = z.array(modelId).min(1);
const limitNames = z.array(z.enum(LIMIT_NAMES));

/** The fields no kind owns (each kind declares its own field and schema: kinds/registry.ts). */
const sharedFields = {
  burst: nonNegativeInt,
  defaultMaxOutputTokens: positiveInt,
  minOutputTokens: positiveInt,
  models: modelIds.optional(),
  defaultModel: modelId.optional(),
  fallbackModel: modelId.optional(),
  shadow: limitNames.optional(),
  /** The most input tokens one request carries: a conversation's earlier turns stop there (§9.3). */
  maxInputTokens: positiveInt.optional(),
};

/** Each kind's field: required when every tier sets it, optional (unset: no limit) otherwise. */
const kindFields = Object.fromEntries(
  Object.entries(KIND_POLICY_FIELDS).map(([field, { schema, required }]) => [
    field,
    required ? schema : schema.optional(),
  ]),
);

/** Every field of a tier's limits; all required once merged with the defaults. */
export const limitPolicySchema = z
  .object({ ...kindFields, ...sharedFields })
  .strict()
  .refine((p) => p.minOutputTokens <= p.defaultMaxOutputTokens, {
    message: 'minOutputTokens must not exceed defaultMaxOutputTokens',
  });

/** A partial policy: what an override or a stack's tier configuration may set. */
export const partialLimitPolicySchema = z
  .object({
    ...Object.fromEntries(Object.entries(KIND_POLICY_FIELDS).map(([field, { schema }]) => [field, schema])),
    ...sharedFields,
    models: modelIds,
    defaultModel: modelId,
    fallbackModel: modelId,
    shadow: limitNames,
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
    /** The models the stack offers, with their prices (SPEC §2 v2). @default the echo model */
    models: z.array(modelSpecSchema).min(1).optional(),
    /** Stack-wide limits (SPEC §2 v2 "Global limits"). @default none */
    global: globalLimitsSchema.optional(),
    /**
     * Team limits by team name (SPEC §9.4): the same fields as `global`, counted over the team's
     * members. @default none
     */
    teams: z
      .record(z.string(), globalLimitsSchema)
      .superRefine((teams, ctx) => {
        for (const name of Object.keys(teams).filter((n) => !TEAM_NAME.test(n)))
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `"${name}" is not a team name: 1 to 64 of A-Z a-z 0-9 _ . -`,
          });
      })
      .optional(),
    /** The limits of a team with no entry in `teams`. @default none (such a team has no limits) */
    teamDefaults: globalLimitsSchema.optional(),
  })
  .strict();

export type TierLimits = Readonly<Record<Tier, LimitPolicy>>;

/**
 * Merges a tier configuration (JSON text or object) over {@link DEFAULT_TIER_LIMITS} and validates
 * every resulting policy. Throws a readable error naming the bad field.
 */
export function parseTierLimits(config: unknown): TierLimits {
  return parseLimitsConfig(config).tiers;
}

/** The whole `limits` configuration: tiers over their defaults, and the models with prices. */
export interface LimitsConfig {
  readonly tiers: TierLimits;
  readonly models: readonly ModelSpec[];
  /** Stack-wide limits, when any is set. */
  readonly global?: GlobalLimits;
  /** Team limits by team name (limits.teams), when any is configured. */
  readonly teams?: Readonly<Record<string, GlobalLimits>>;
  /** The limits of a team without its own entry (limits.teamDefaults), when any is set. */
  readonly teamDefaults?: GlobalLimits;
}

/**
 * Parses `LIMITS_CONFIG` (JSON text or object): tiers merged over {@link DEFAULT_TIER_LIMITS}, and
 * the models (`defaultModels` when the configuration names none). Throws a `ConfigError` that names
 * the path of each bad field (`tiers.free.models[1]: unknown model "gpt"`), so nothing starts half
 * configured.
 */
export function parseLimitsConfig(
  config: unknown,
  defaultModels: readonly ModelSpec[] = [ECHO_MODEL],
): LimitsConfig {
  let raw: unknown;
  try {
    raw = typeof config === 'string' ? (config.trim() === '' ? {} : JSON.parse(config)) : (config ?? {});
  } catch (err) {
    throw new ConfigError(`invalid limits configuration: not JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  // `[]` or `3` would spread into no settings at all and pass as the defaults (issue 23).
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(
      `invalid limits configuration: a JSON object ({"tiers": …, "models": …}), got ${JSON.stringify(raw)}`,
    );
  const parsed = limitsConfigSchema.safeParse({ tiers: {}, ...raw });
  if (!parsed.success)
    throw new ConfigError(`invalid limits configuration: ${z.prettifyError(parsed.error)}`);
  const models = parsed.data.models ?? defaultModels;
  const ids = new Set(models.map((m) => m.id));
  if (ids.size !== models.length)
    throw new ConfigError('invalid limits configuration: models: two models share an id');
  const tiers = parsed.data.tiers as Partial<Record<Tier, Partial<LimitPolicy>>>;
  const merged = {} as Record<Tier, LimitPolicy>;
  for (const tier of TIERS) {
    const candidate = { ...DEFAULT_TIER_LIMITS[tier], ...tiers[tier] };
    const checked = limitPolicySchema.safeParse(candidate);
    if (!checked.success) {
      throw new ConfigError(`invalid limits configuration: tiers.${tier}: ${z.prettifyError(checked.error)}`);
    }
    const policy = checked.data as LimitPolicy;
    const allowed = policy.models ?? [...ids];
    for (const [i, id] of allowed.entries()) {
      if (!ids.has(id))
        throw new ConfigError(
          `invalid limits configuration: tiers.${tier}.models[${i}]: unknown model "${id}"`,
        );
    }
    for (const key of ['defaultModel', 'fallbackModel'] as const) {
      const id = policy[key];
      if (id !== undefined && !allowed.includes(id)) {
        throw new ConfigError(
          `invalid limits configuration: tiers.${tier}.${key}: "${id}" is not one of the tier's models`,
        );
      }
    }
    merged[tier] = Object.freeze(policy);
  }
  // The models' account quotas count on the global shards (SPEC §9.4), which they may cap.
  const configuredShards = (raw as { global?: { shards?: number } }).global?.shards;
  const global = withModelQuotas(parsed.data.global, modelQuotasOf(models), configuredShards);
  if (typeof global === 'string') throw new ConfigError(`invalid limits configuration: ${global}`);
  const { teams, teamDefaults } = parsed.data;
  return {
    tiers: Object.freeze(merged),
    models: Object.freeze([...models]),
    ...(hasGlobalLimits(global) ? { global: Object.freeze(global) } : {}),
    ...(teams && Object.keys(teams).length > 0 ? { teams: Object.freeze({ ...teams }) } : {}),
    ...(hasGlobalLimits(teamDefaults) ? { teamDefaults: Object.freeze(teamDefaults) } : {}),
  };
}

/**
 * The model a request runs on: the one it names, else the tier's default, else the first model.
 * `undefined` when the tier may not use it (the request is refused with INVALID_REQUEST).
 */
export function modelFor(
  policy: LimitPolicy,
  models: readonly ModelSpec[],
  requested: string | undefined,
): ModelSpec | undefined {
  const allowed = policy.models ?? models.map((m) => m.id);
  const id = requested ?? policy.defaultModel ?? allowed[0];
  return id !== undefined && allowed.includes(id) ? models.find((m) => m.id === id) : undefined;
}

export { isTier } from './tiers';

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
