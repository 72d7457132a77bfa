import type { AccountQuota, ModelSpec } from '../../models';
import type { ExpressionWriter } from '../expression';
import {
  MODEL_QUOTA_MINUTE_PREFIX,
  MODEL_QUOTA_REQUESTS_PREFIX,
  MODEL_QUOTA_TOKENS_PREFIX,
} from '../item/attributes';
import type { LimiterSnapshot } from '../item/state';
import { storedNumber } from '../kinds/kind-snapshot';

/**
 * The models' account quotas as global limits (SPEC §9.4 "Model quotas"): Bedrock counts each
 * model's requests and tokens per minute for the whole account, so the stack counts them on its
 * global shards (global/shards.ts), shard k holding shareOf(quota, shards, k) of each, in the UTC
 * minute. A request on model M counts 1 request and input + output allowance × burndown tokens,
 * as Bedrock reserves them at the call's start; the settle gives back the unused part to the
 * minute it was taken from (or nowhere, once that minute is over).
 */

export const MINUTE_MS = 60_000;
export const minuteNumber = (ms: number) => Math.floor(ms / MINUTE_MS);

/** The quotas by model id (only models that have one). */
export type ModelQuotas = Readonly<Record<string, AccountQuota>>;
export type QuotaMeasure = 'requestsPerMinute' | 'tokensPerMinute';
/** A quota as refusals and `status` name it (after `global.`): `model.<id>.requestsPerMinute`. */
export type ModelQuotaName = `model.${string}.${QuotaMeasure}`;

const MEASURES: readonly QuotaMeasure[] = ['requestsPerMinute', 'tokensPerMinute'];

export const modelQuotaName = (modelId: string, measure: QuotaMeasure): ModelQuotaName =>
  `model.${modelId}.${measure}`;

/** The model and measure a quota name names (undefined: not a quota's name). */
export function parseModelQuotaName(
  name: string,
): { readonly modelId: string; readonly measure: QuotaMeasure } | undefined {
  if (!name.startsWith('model.')) return undefined;
  const measure = MEASURES.find((m) => name.endsWith(`.${m}`));
  if (!measure) return undefined;
  const modelId = name.slice('model.'.length, name.length - measure.length - 1);
  return modelId.length > 0 ? { modelId, measure } : undefined;
}

export const isModelQuotaName = (name: string): name is ModelQuotaName =>
  parseModelQuotaName(name) !== undefined;

/** Whose capacity a waiter held back by this quota waits for (GlobalWaiter.scope). */
export const modelScope = (modelId: string) => `model:${modelId}`;

/** The quotas the models declare; undefined when none does. */
export function modelQuotasOf(models: readonly ModelSpec[]): ModelQuotas | undefined {
  const entries = models.flatMap((m) => (m.accountQuota ? [[m.id, m.accountQuota] as const] : []));
  return entries.length > 0 ? Object.freeze(Object.fromEntries(entries)) : undefined;
}

/**
 * The most shards the quotas allow: requestsPerMinute is a count, and every shard needs a share of
 * at least one request (Infinity without one).
 */
export function quotaShardCap(quotas: ModelQuotas | undefined): number {
  return Math.min(...Object.values(quotas ?? {}).map((q) => q.requestsPerMinute ?? Number.POSITIVE_INFINITY));
}

/** Tokens as Bedrock counts them against the quota: input + output × burndown. */
export function quotaTokens(quota: AccountQuota, inputTokens: number, outputTokens: number): number {
  return inputTokens + outputTokens * (quota.outputTokenBurndown ?? 1);
}

const attrsOf = (modelId: string) => ({
  minute: `${MODEL_QUOTA_MINUTE_PREFIX}${modelId}`,
  requestsPerMinute: `${MODEL_QUOTA_REQUESTS_PREFIX}${modelId}`,
  tokensPerMinute: `${MODEL_QUOTA_TOKENS_PREFIX}${modelId}`,
});

/** The latest minute any quota counter of the shard counts in (undefined: none yet). */
export function shardMinute(snap: LimiterSnapshot): number | undefined {
  let latest: number | undefined;
  // Keys, not entries: every shard's room reads this (no pair made per field of the snapshot).
  for (const attr of Object.keys(snap)) {
    if (!attr.startsWith(MODEL_QUOTA_MINUTE_PREFIX)) continue;
    const value = (snap as unknown as Record<string, unknown>)[attr];
    if (typeof value === 'number') latest = Math.max(latest ?? value, value);
  }
  return latest;
}

/** What the shard holds of a model's measure in `minute`. */
export function quotaUsedIn(snap: LimiterSnapshot, modelId: string, measure: QuotaMeasure, minute: number) {
  const attrs = attrsOf(modelId);
  return storedNumber(snap, attrs.minute) === minute ? (storedNumber(snap, attrs[measure]) ?? 0) : 0;
}

/** What a request on a quota model takes of it: one request and its quota tokens. */
export interface QuotaAsk {
  readonly modelId: string;
  readonly quotaTokens: number;
}

const takesOf = (ask: QuotaAsk, measure: QuotaMeasure) =>
  measure === 'requestsPerMinute' ? 1 : ask.quotaTokens;

/**
 * Shard k's room for the ask under its model's quota in `minute`: the measure that has none, and
 * the room left of the tightest relative to its share (0..1).
 */
export function quotaRoom(
  quotas: ModelQuotas | undefined,
  shares: (limit: number) => number,
  snap: LimiterSnapshot,
  ask: QuotaAsk | undefined,
  minute: number,
): { readonly blocking?: ModelQuotaName; readonly free: number } {
  const quota = ask && quotas?.[ask.modelId];
  if (!ask || !quota) return { free: 1 };
  let blocking: ModelQuotaName | undefined;
  let free = 1;
  for (const measure of MEASURES) {
    const limit = quota[measure];
    if (limit === undefined) continue;
    const share = shares(limit);
    const left = share - quotaUsedIn(snap, ask.modelId, measure, minute);
    if (left < takesOf(ask, measure) && !blocking) blocking = modelQuotaName(ask.modelId, measure);
    free = Math.min(free, share > 0 ? Math.max(0, left) / share : 0);
  }
  return { ...(blocking ? { blocking } : {}), free };
}

/**
 * The ask's part of the shard's admission write: its request and quota tokens counted in the
 * shard's `minute`, each under `count <= share − amount` (a measure the quota leaves unset is
 * counted without a bound, for `status`). The belief picks the shape, the condition makes it right
 * whatever the shard holds: same minute — `minute = m` and the bounds; a new one — only if the
 * stored minute is older (another writer may have opened it), the counts start at the ask's. A
 * new minute's counts are bounded too: the router never plans an ask larger than a share
 * (quotaRoom), and that is a constant here. Ends with the minute: the next one starts it over.
 */
export function countQuota(
  w: ExpressionWriter,
  args: {
    readonly quotas: ModelQuotas | undefined;
    readonly shares: (limit: number) => number;
    readonly belief: LimiterSnapshot;
    readonly ask: QuotaAsk | undefined;
    readonly minute: number;
  },
): void {
  const { quotas, shares, belief, ask, minute } = args;
  const quota = ask && quotas?.[ask.modelId];
  if (!ask || !quota) return;
  const attrs = attrsOf(ask.modelId);
  const win = w.name(attrs.minute);
  if (storedNumber(belief, attrs.minute) === minute) {
    const bounds = MEASURES.flatMap((measure) => {
      const limit = quota[measure];
      if (limit === undefined) return [];
      return [`${w.name(attrs[measure])} <= ${w.value(shares(limit) - takesOf(ask, measure))}`];
    });
    w.condition([`${win} = ${w.value(minute)}`, ...bounds].join(' AND '));
    for (const measure of MEASURES) {
      const count = w.name(attrs[measure]);
      w.set(`${count} = ${count} + ${w.value(takesOf(ask, measure))}`);
    }
    return;
  }
  w.condition(`(attribute_not_exists(${win}) OR ${win} < ${w.value(minute)})`);
  w.set(
    `${win} = ${w.value(minute)}`,
    ...MEASURES.map((measure) => `${w.name(attrs[measure])} = ${w.value(takesOf(ask, measure))}`),
  );
}

/** What a request counted against its model's quota, kept with its share (GlobalReservation). */
export interface QuotaTaken {
  readonly modelId: string;
  readonly quotaTokens: number;
  /** The minute it was counted in (epoch minutes). */
  readonly minute: number;
}

/**
 * Gives back to the minute a request was counted in (`taken.minute`), while the shard is still in
 * it: `requests` (an undone request) and `tokens` (unused, or all of an undone one). Once the
 * shard is in a later minute, nowhere (STYLE 11): pinned either way.
 */
export function giveBackQuota(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  taken: QuotaTaken,
  amounts: { readonly requests: number; readonly tokens: number },
): void {
  if (amounts.requests <= 0 && amounts.tokens <= 0) return;
  const attrs = attrsOf(taken.modelId);
  const win = w.name(attrs.minute);
  if (storedNumber(belief, attrs.minute) !== taken.minute) {
    w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(taken.minute)})`);
    return;
  }
  w.condition(`${win} = ${w.value(taken.minute)}`);
  const back: [QuotaMeasure, number][] = [
    ['requestsPerMinute', amounts.requests],
    ['tokensPerMinute', Math.min(amounts.tokens, taken.quotaTokens)],
  ];
  for (const [measure, amount] of back) {
    if (amount <= 0) continue;
    const count = w.name(attrs[measure]);
    w.set(`${count} = ${count} - ${w.value(amount)}`);
  }
}

/** One quota's totals over the shards, for `status` and `admin top` (global.ts shapes them). */
export interface QuotaTotal {
  readonly name: ModelQuotaName;
  readonly limit: number;
  readonly used: number;
  readonly unit: 'requests' | 'tokens';
  readonly resetAtEpochMs: number;
}

/** Every quota's use in the current minute, summed over the shards. */
export function quotaTotals(
  quotas: ModelQuotas | undefined,
  shards: readonly LimiterSnapshot[],
  nowMs: number,
): QuotaTotal[] {
  const minuteOf = (snap: LimiterSnapshot) => Math.max(minuteNumber(nowMs), shardMinute(snap) ?? 0);
  const latest = Math.max(minuteNumber(nowMs), ...shards.map(minuteOf));
  return Object.entries(quotas ?? {}).flatMap(([modelId, quota]) =>
    MEASURES.flatMap((measure) => {
      const limit = quota[measure];
      if (limit === undefined) return [];
      const used = shards.reduce((sum, snap) => sum + quotaUsedIn(snap, modelId, measure, minuteOf(snap)), 0);
      return [
        {
          name: modelQuotaName(modelId, measure),
          limit,
          used,
          unit: measure === 'requestsPerMinute' ? ('requests' as const) : ('tokens' as const),
          resetAtEpochMs: (latest + 1) * MINUTE_MS,
        },
      ];
    }),
  );
}

/** A stored shard item's quota counters (`mqm_`, `mqr_`, `mqt_`), for the snapshot (item/codec.ts). */
export function quotaCounters(item: Readonly<Record<string, unknown>>): Record<string, number> {
  const counters: Record<string, number> = {};
  // Every read of an item comes here: keys, no pairs, no closure per field.
  for (const attr of Object.keys(item)) {
    if (
      !attr.startsWith(MODEL_QUOTA_MINUTE_PREFIX) &&
      !attr.startsWith(MODEL_QUOTA_REQUESTS_PREFIX) &&
      !attr.startsWith(MODEL_QUOTA_TOKENS_PREFIX)
    )
      continue;
    const value = item[attr];
    if (typeof value === 'number' && Number.isFinite(value)) counters[attr] = value;
  }
  return counters;
}

/**
 * The quota tokens a settled request did not use (input + output × burndown, as Bedrock settles
 * it), to go back to the minute it took them from (giveBackQuota); 0 without a quota, and 0 once
 * that minute is over at `nowMs` (nobody counts in it any more: the refund goes nowhere).
 */
export function unusedQuotaTokens(
  taken: QuotaTaken | undefined,
  quotas: ModelQuotas | undefined,
  used: { readonly inputTokens: number; readonly outputTokens: number },
  nowMs: number,
): number {
  const quota = taken && quotas?.[taken.modelId];
  if (!taken || !quota || minuteNumber(nowMs) > taken.minute) return 0;
  return Math.max(0, taken.quotaTokens - quotaTokens(quota, used.inputTokens, used.outputTokens));
}

/** The quota a name names, as configured (undefined: not a configured quota). */
export function quotaValueOf(quotas: ModelQuotas | undefined, name: string): number | undefined {
  const parsed = parseModelQuotaName(name);
  return parsed && quotas?.[parsed.modelId]?.[parsed.measure];
}
