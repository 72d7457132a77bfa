import * as z from 'zod';

/**
 * The AWS account's Bedrock quota for a model (SPEC §9.4 "Model quotas"), as Service Quotas shows
 * it (docs/deploy.md "Bedrock account quotas"): enforced stack-wide as a global limit per model
 * (lambda/core/limiter/global/model-quotas.ts), so a burst above it waits in line instead of
 * failing with the model's throttling error.
 */
export const accountQuotaSchema = z
  .object({
    /** "On-demand model inference requests per minute for <model>". */
    requestsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
    /** "On-demand model inference tokens per minute for <model>": input + output × burndown. */
    tokensPerMinute: z.number().int().min(1).max(1_000_000_000).optional(),
    /** How many quota tokens one output token counts for (5 for some models). @default 1 */
    outputTokenBurndown: z.number().int().min(1).max(100).optional(),
  })
  .strict()
  .refine((q) => q.requestsPerMinute !== undefined || q.tokensPerMinute !== undefined, {
    message: 'an accountQuota needs requestsPerMinute or tokensPerMinute',
  });

export type AccountQuota = z.infer<typeof accountQuotaSchema>;

/**
 * The chat models a stack offers (SPEC §2 v2 "Models and prices"), with what they cost and how
 * much one reply may hold. Money is counted in integer micro-dollars (µUSD, 10⁻⁶ USD): a price in
 * USD per million tokens is exactly µUSD per token, and every cost is rounded up, so a budget is
 * never undercounted.
 */
export const modelSpecSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'a model id: 1-64 of A-Z a-z 0-9 . _ : -'),
    kind: z.enum(['echo', 'bedrock']),
    /** Bedrock: the foundation model or inference profile id. */
    modelId: z.string().min(3).optional(),
    inputUsdPerMillion: z.number().min(0).max(1000),
    outputUsdPerMillion: z.number().min(0).max(1000),
    maxOutputTokens: z.number().int().min(16).max(1_000_000),
    /** How many messages one request on it counts for (seed 004's endpoint multipliers). @default 1 */
    messageWeight: z.number().int().min(1).max(100).optional(),
    /** The account's Bedrock quota for it, enforced stack-wide. @default none */
    accountQuota: accountQuotaSchema.optional(),
  })
  .strict()
  .refine((m) => m.kind !== 'bedrock' || m.modelId !== undefined, {
    message: 'a bedrock model needs its modelId',
    path: ['modelId'],
  });

export type ModelSpec = z.infer<typeof modelSpecSchema>;

/** The echo model's default price: seed 001's figures, so cost limits work locally. */
export const ECHO_MODEL: ModelSpec = Object.freeze({
  id: 'echo',
  kind: 'echo',
  inputUsdPerMillion: 0.2,
  outputUsdPerMillion: 0.6,
  maxOutputTokens: 100_000,
});

/** A model price: USD per million input and output tokens. */
export type ModelPrice = Pick<ModelSpec, 'inputUsdPerMillion' | 'outputUsdPerMillion'>;

/** No price: a request that costs nothing (settles move amounts already priced, an unknown model). */
export const FREE_PRICE: ModelPrice = Object.freeze({ inputUsdPerMillion: 0, outputUsdPerMillion: 0 });

/** What a request costs, in µUSD, for these token counts (rounded up). */
export function costMicroUsd(
  model: Pick<ModelSpec, 'inputUsdPerMillion' | 'outputUsdPerMillion'>,
  inputTokens: number,
  outputTokens: number,
): number {
  return Math.ceil(inputTokens * model.inputUsdPerMillion + outputTokens * model.outputUsdPerMillion - 1e-9);
}

/** The most output tokens `budgetMicroUsd` pays for after `inputTokens` (rounded down). */
export function outputTokensFor(
  model: Pick<ModelSpec, 'inputUsdPerMillion' | 'outputUsdPerMillion'>,
  budgetMicroUsd: number,
  inputTokens: number,
): number {
  const afterInput = budgetMicroUsd - Math.ceil(inputTokens * model.inputUsdPerMillion - 1e-9);
  if (model.outputUsdPerMillion === 0) return afterInput >= 0 ? Number.POSITIVE_INFINITY : -1;
  return Math.floor(afterInput / model.outputUsdPerMillion + 1e-9);
}

export const microUsdToUsd = (micro: number) => micro / 1_000_000;
export const usdToMicroUsd = (usd: number) => Math.round(usd * 1_000_000);
