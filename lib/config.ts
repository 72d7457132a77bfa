import { z } from 'zod';
import { type GlobalLimits, shardsForConcurrency } from '../lambda/core/limiter/global/limits';
import { modelQuotasOf } from '../lambda/core/limiter/global/model-quotas';
import { checkItemSizes } from '../lambda/core/limiter/item/size';
import {
  type LimitsConfig,
  limitsConfigSchema,
  parseLimitsConfig,
  type TierLimits,
} from '../lambda/core/limiter/policy';
import { StackConfigError } from './errors';

/**
 * Stack configuration: CDK context (`cdk deploy -c chatLimiter='{"model":"bedrock",…}'` or the
 * `chatLimiter` key of cdk.json) or props. Validated at synth time; a bad value stops the synth
 * with the path of the offending field.
 */
export const stackConfigSchema = z
  .object({
    /** Per-tier changes to the default limits, e.g. `{"tiers":{"free":{"dailyTokens":50000}}}`. */
    limits: limitsConfigSchema.optional(),
    /** @default 10 */
    maxQueuedPerUser: z.number().int().min(0).max(100).default(10),
    /** @default 900 */
    maxQueueWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(6 * 3600)
      .default(900),
    /** Earlier turns a conversation's message carries (SPEC §9.3; 0: none). @default 20 */
    conversationTurns: z.number().int().min(0).max(100).default(20),
    /** How long a conversation's turn is kept, in seconds. @default 86400 (24 h) */
    conversationTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400),
    /** @default 8000 */
    maxMessageChars: z.number().int().min(1).max(100_000).default(8000),
    /** Connection attempts per source IP per minute. @default 20 */
    connectLimitPerMinute: z.number().int().min(1).default(20),
    /** @default 'open' */
    failPolicy: z.enum(['open', 'closed']).default('open'),
    /** @default 2000 */
    limiterTimeoutMs: z.number().int().min(50).max(10_000).default(2000),
    /** @default { kind: 'echo' } */
    model: z
      .discriminatedUnion('kind', [
        z
          .object({ kind: z.literal('echo'), echoDelayMs: z.number().int().min(0).max(5000).default(20) })
          .strict(),
        z
          .object({
            kind: z.literal('bedrock'),
            /** A foundation model id (`anthropic.claude-…`) or an inference profile id (`us.anthropic…`). */
            modelId: z.string().min(3),
            /**
             * The most output tokens this model can produce in one reply (its documented maximum):
             * caps every request's output allowance, so a reservation never counts on more.
             * @default 4096
             */
            maxOutputTokens: z.number().int().min(16).max(1_000_000).default(4096),
            /**
             * For an inference profile: the Regions it routes to (the profile's destination Regions).
             * @default every Region of the profile's geography (`us.` → `us-*`, `eu.` → `eu-*`, …)
             */
            inferenceRegions: z
              .array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a Region code such as us-east-1'))
              .min(1)
              .optional(),
          })
          .strict(),
      ])
      .default({ kind: 'echo', echoDelayMs: 20 }),
    /** @default { mode: 'secret' } — a generated HS256 secret in Secrets Manager. */
    jwt: z
      .discriminatedUnion('mode', [
        z.object({ mode: z.literal('secret') }).strict(),
        z
          .object({
            mode: z.literal('oidc'),
            issuer: z.string().url(),
            jwksUrl: z.string().url().optional(),
            /** Required: the `aud` this API accepts (an issuer signs tokens for many clients). */
            audience: z.string().min(1),
          })
          .strict(),
      ])
      .default({ mode: 'secret' }),
    /** @default 'prod' */
    stageName: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/)
      .default('prod'),
    /** Route throttling of the stage. @default { rateLimit: 100, burstLimit: 200 } */
    throttle: z
      .object({ rateLimit: z.number().positive(), burstLimit: z.number().int().positive() })
      .strict()
      .default({ rateLimit: 100, burstLimit: 200 }),
    /** Processor instances at most (the event source's maximum concurrency, ≥ 2). @default 10 */
    processorConcurrency: z.number().int().min(2).max(1000).default(10),
    /**
     * Reserved concurrency of the reply runner: at most this many replies stream at once, and the
     * route functions always keep the rest of the account's concurrency (a runner may run 900 s).
     * Past it, Lambda throttles the runner's events and retries them until their maximum age
     * (300 s, FUNCTIONS.reply.asyncInvoke); one still not started then goes to the `replyFailure`
     * destination, which refunds it and tells the user `request_failed`. `null` reserves nothing
     * (an account too small to reserve any). @default 100
     */
    replyConcurrency: z.number().int().min(1).nullable().default(100),
    /**
     * The account's Lambda concurrency quota in this Region, to check at synth time that the
     * reserved concurrency leaves Lambda's minimum of 100 unreserved. @default 1000 (Lambda's default)
     */
    accountConcurrency: z.number().int().min(10).default(1000),
    /** @default 30 */
    logRetentionDays: z.number().int().positive().default(30),
    /** An address subscribed to the alarm topic. @default none */
    alarmEmail: z.string().email().optional(),
    /**
     * Set this account and Region's API Gateway CloudWatch Logs role, which the stage's access
     * logging needs (docs/deploy.md). `false` keeps a role the account already has. @default true
     */
    apiGatewayAccountLogsRole: z.boolean().default(true),
    /** Keep tables when the stack is deleted. @default true */
    retainData: z.boolean().default(true),
  })
  .strict();

export type StackConfigInput = z.input<typeof stackConfigSchema>;

export interface StackConfig extends z.output<typeof stackConfigSchema> {
  /** The tier limits after merging the configuration over the defaults. */
  readonly tiers: TierLimits;
  /** Stack-wide limits, when the configuration sets any. */
  readonly global?: GlobalLimits;
}

export { StackConfigError };

/** Validates a stack configuration (object or JSON text) and applies the defaults. */
export function parseStackConfig(input: unknown): StackConfig {
  const raw = typeof input === 'string' ? JSON.parse(input) : (input ?? {});
  const parsed = stackConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new StackConfigError(`invalid chat-limiter configuration:\n${z.prettifyError(parsed.error)}`);
  checkConcurrency(parsed.data);
  const data = withShardsForReplies(parsed.data, raw);
  let limits: LimitsConfig;
  try {
    limits = parseLimitsConfig(data.limits ?? {});
    // No configuration may let a user's limiter item grow near DynamoDB's 400 KB (issue 22).
    checkItemSizes(limits.tiers, {
      maxQueuedPerUser: parsed.data.maxQueuedPerUser,
      modelIds: limits.models.map((m) => m.id),
    });
  } catch (err) {
    throw new StackConfigError((err as Error).message);
  }
  return { ...data, tiers: limits.tiers, ...(limits.global ? { global: limits.global } : {}) };
}

/**
 * The Bedrock models the stack would price at $0: the configured model when `limits.models` does
 * not list it (the functions fall back to it at no price), and any listed with both prices 0. Their
 * requests cost nothing, so no cost budget (a user's, a team's or global) ever binds on them.
 */
export function unpricedBedrockModels(config: StackConfig): string[] {
  const models = config.limits?.models;
  if (!models) return config.model.kind === 'bedrock' ? [config.model.modelId] : [];
  return models
    .filter((m) => m.kind === 'bedrock' && m.inputUsdPerMillion === 0 && m.outputUsdPerMillion === 0)
    .map((m) => m.modelId ?? m.id);
}

/**
 * Global limits without `requestsInFlight` still hold every admitted request's share in a shard,
 * at most 13 a shard: a stack left at 4 shards would run at most 52 replies at once. Unless the
 * configuration names `global.shards` or `global.requestsInFlight`, the stack gets the shards its
 * reply runners need (replyConcurrency, 100 by default: 8 shards), written into the limits the
 * functions read so all of them agree (docs/configuration.md).
 */
function withShardsForReplies<T extends z.output<typeof stackConfigSchema>>(config: T, raw: unknown): T {
  // The configuration as written: the parsed one already carries the default shard count.
  const written = (raw as { limits?: { global?: Record<string, unknown> } }).limits?.global;
  const quotas = modelQuotasOf(config.limits?.models ?? []);
  const shards =
    config.replyConcurrency === null
      ? undefined
      : shardsForConcurrency(written, config.replyConcurrency, quotas);
  if (shards === undefined) return config;
  return { ...config, limits: { ...config.limits, global: { ...config.limits?.global, shards } } };
}

/** Lambda refuses reserved concurrency that leaves less than this unreserved in the account. */
export const MIN_UNRESERVED_CONCURRENCY = 100;

/**
 * The reply runner's reservation must leave Lambda's unreserved minimum (or the deploy fails), and
 * the processor may not run more instances than there are runners: each admitted queued request
 * is handed to a runner, so more processors would only queue throttled events.
 */
function checkConcurrency(config: z.output<typeof stackConfigSchema>): void {
  const { replyConcurrency, accountConcurrency, processorConcurrency } = config;
  if (replyConcurrency === null) return;
  const unreserved = accountConcurrency - replyConcurrency;
  if (unreserved < MIN_UNRESERVED_CONCURRENCY) {
    throw new StackConfigError(
      `replyConcurrency: ${replyConcurrency} reserved would leave ${unreserved} of the account's ${accountConcurrency} unreserved; Lambda requires ${MIN_UNRESERVED_CONCURRENCY} (lower it, raise accountConcurrency after a quota increase, or set null to reserve nothing)`,
    );
  }
  if (processorConcurrency > replyConcurrency) {
    throw new StackConfigError(
      `processorConcurrency: ${processorConcurrency} processors could hand off more replies at once than the ${replyConcurrency} reply runners reserved (replyConcurrency)`,
    );
  }
}
