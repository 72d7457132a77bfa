import type * as z from 'zod';
import { dailyCostUsd, monthlyCostUsd } from './cost-budgets';
import type { KindResetScope, KindState, LimitKind, SharedPolicy } from './kind';
import { messageRate } from './message-rate';
import { requestsInFlight } from './requests-in-flight';
import { dailyTokens, monthlyTokens } from './token-budgets';
import { tokensPerMinute } from './tokens-per-minute';
import { weeklyTokens } from './weekly-tokens';
import { dailyMessages, hourlyMessages } from './window-quota';

/**
 * Every per-user limit, in the order `status` lists them. Adding a limit is one kind file and one
 * entry here: every list below (names, policy fields and their schemas, reset scopes, admin
 * flags, labels) is derived from this one.
 */
const KINDS = [
  messageRate,
  hourlyMessages,
  dailyMessages,
  dailyTokens,
  requestsInFlight,
  tokensPerMinute,
  weeklyTokens,
  monthlyTokens,
  dailyCostUsd,
  monthlyCostUsd,
] as const;

type Kinds = (typeof KINDS)[number];

/** Names of the limits, as reported in `status` and in `RATE_LIMIT_EXCEEDED.details.limit`. */
export type LimitName = Kinds['name'];

/** A registered kind, seen without its literal name. */
export type RegisteredKind = LimitKind<LimitName>;

export const LIMIT_KINDS: readonly RegisteredKind[] = KINDS;

export const LIMIT_NAMES = KINDS.map((k) => k.name) as unknown as readonly [LimitName, ...LimitName[]];

/** One limit's state for `status` and for decisions. */
export type LimitState = KindState<LimitName>;

/** A budget or quota an admission left at ≤ 20 % (what `limit_warning` tells the user). */
export interface LimitWarning {
  readonly limit: LimitName;
  readonly remaining: number;
  readonly limitValue: number;
  readonly unit: string;
  readonly resetAtEpochMs: number;
}

/** A budget or quota an admission took past 80 % or 100 % used, first in its window (SPEC §9.5). */
export type BudgetCrossing = LimitWarning & { readonly window: number; readonly thresholdPercent: 80 | 100 };

type RequiredField = Extract<
  Kinds,
  { readonly policyField: { readonly required: true } }
>['policyField']['name'];
type OptionalField = Exclude<Kinds['policyField']['name'], RequiredField>;

/**
 * The limits of one tier (or the effective limits of one user after an override): the shared
 * fields, each kind's own field (required for `messagesPerMinute` and `dailyTokens`, which every
 * tier sets; an optional limit left unset is no limit), and the shadow list.
 */
export type LimitPolicy = SharedPolicy & {
  readonly [F in RequiredField]: number;
} & {
  readonly [F in OptionalField]?: number;
} & {
  /** Limits evaluated and reported (log, metric, `status`), never enforced. */
  readonly shadow?: readonly LimitName[];
};

/** An admin's per-user override: any subset of the limits, optionally expiring. */
export interface LimitOverride {
  readonly limits: Partial<LimitPolicy>;
  /** Epoch ms after which the override stops applying by itself. */
  readonly expiresAtEpochMs?: number;
}

export function isLimitName(name: string): name is LimitName {
  return LIMIT_KINDS.some((k) => k.name === name);
}

export function limitKind(name: LimitName): RegisteredKind {
  const kind = LIMIT_KINDS.find((k) => k.name === name);
  if (!kind) throw new Error(`no limit kind ${name}`);
  return kind;
}

const inScope = (scope: KindResetScope | 'all') =>
  LIMIT_KINDS.filter((k) => scope === 'all' || k.resetScope === scope);

/** The item attributes a `reset` of this scope clears: all its kinds keep but the accounting counters. */
export function resetAttributes(scope: KindResetScope | 'all'): string[] {
  return inScope(scope)
    .filter((k) => k.resetKeeps === undefined)
    .flatMap((k) => k.attributes);
}

/** The accounting counters a `reset` of this scope keeps, freeing their limits (`LimitKind.resetKeeps`). */
export function resetFrees(
  scope: KindResetScope | 'all',
): readonly { readonly count: string; readonly freed: string }[] {
  return inScope(scope).flatMap((k) => (k.resetKeeps ? [k.resetKeeps] : []));
}

/** Every kind's policy field with its schema, for policy.ts's zod objects (required ones first-class). */
export const KIND_POLICY_FIELDS: Readonly<Record<string, { schema: z.ZodType<number>; required: boolean }>> =
  Object.fromEntries(
    LIMIT_KINDS.map((k) => [
      k.policyField.name,
      { schema: k.policyField.schema, required: k.policyField.required },
    ]),
  );

/** Admin CLI `set-override` flags: `--<flag> N` sets `field` of the user's policy. */
export const ADMIN_FLAGS: readonly { readonly flag: string; readonly field: keyof LimitPolicy }[] = KINDS.map(
  (k) => k.adminFlag,
);

/** `--<flag> N` (`USD` for a cost budget) for every kind: the admin CLI's `set-override` usage. */
export function adminFlagUsage(): string[] {
  return LIMIT_KINDS.map((k) => `[--${k.adminFlag.flag} ${k.unit === 'usd' ? 'USD' : 'N'}]`);
}

/** How people read each limit's name (SPEC §8), for the page and the clients: name → label. */
export const LIMIT_LABELS: Readonly<Record<LimitName, string>> = Object.freeze(
  Object.fromEntries(LIMIT_KINDS.map((k) => [k.name, k.label])) as Record<LimitName, string>,
);

/**
 * The windows a reservation marker (`r_<id>`) records, each under its budget's `markerField`: what
 * the settle reads to give a refund back to the window it was taken from. The admission writes
 * them into the marker (`{...markerWindows(now), i, o, …}`); a marker rebuilt from a reservation
 * passes the start of the reservation's day (every budget window starts at a day boundary).
 */
export function markerWindows(nowMs: number): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const kind of LIMIT_KINDS) {
    if (kind.markerField !== undefined && kind.warns) fields[kind.markerField] = kind.warns.windowOf(nowMs);
  }
  return fields;
}

let KIND_ATTRIBUTES: readonly string[] | undefined;

/**
 * The numeric attributes every kind keeps, read from a stored item: what the item codec puts on
 * the snapshot so each kind finds its own (`storedNumber(snap, attr)`) without the codec naming them.
 */
export function kindAttributes(item: Readonly<Record<string, unknown>>): Record<string, number> {
  const values: Record<string, number> = {};
  // Listed once: every read of an item (each decision, the simulator's every write) comes here.
  KIND_ATTRIBUTES ??= LIMIT_KINDS.flatMap((k) => k.attributes);
  for (const attr of KIND_ATTRIBUTES) {
    const value = item[attr];
    if (typeof value === 'number' && Number.isFinite(value)) values[attr] = value;
  }
  return values;
}
