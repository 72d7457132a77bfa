import type { ModelSpec } from '../../models';
import type { AllowedDecision, DecideInput, DeniedDecision, TokenReservation } from '../decision';
import { dayNumber } from '../evaluate';
import type { GlobalBound, GlobalLimit } from '../global/limits';
import type { GlobalReservation } from '../global/share-record';
import type { LimiterSnapshot } from '../item/state';
import { LIMIT_KINDS, type LimitPolicy } from '../kinds/registry';
import type { AdmissionPlan } from '../plan/admission';
import type { Tier } from '../tiers';
import type { ServedModel } from './model';
import { limitsOf } from './resolve';

/**
 * What every decision about one user states: its tier and effective policy, the user's item as the
 * decision saw it, and the decision's time. One builder per outcome below (STYLE §2: a decision is
 * a value).
 */
export interface DecisionBasis {
  readonly tier: Tier;
  readonly policy: LimitPolicy;
  readonly snap: LimiterSnapshot;
  readonly nowMs: number;
}

type Admitted = Extract<AdmissionPlan, { kind: 'write' | 'already-admitted' }>;
type Refused = Exclude<AdmissionPlan, { kind: 'write' | 'already-admitted' }>;

/** What a busy user's refusal tells the client to wait, at least. */
export const BUSY_RETRY_AFTER_MS = 1000;
/** What a refusal while the store is down and the fail policy is `closed` tells the client to wait. */
export const UNAVAILABLE_RETRY_AFTER_MS = 1000;

/** Refused by a limit of the user, a duplicate id, or a queue it may not overtake. */
export function deniedDecision(basis: DecisionBasis, planned: Refused): DeniedDecision {
  const blocking = planned.kind === 'reject' ? planned.evaluation.blocking : undefined;
  return {
    allowed: false,
    tier: basis.tier,
    policy: basis.policy,
    limit: planned.kind === 'duplicate' ? 'duplicate' : (blocking?.limit ?? 'queue'),
    retryAfterMs: blocking?.retryAfterMs ?? 0,
    resetAtEpochMs: blocking?.resetAtEpochMs ?? basis.nowMs,
    limits: planned.evaluation.limits,
    queued: basis.snap.waiting.length,
  };
}

/**
 * The user's limits allow it, a global limit (or someone before it in the global line) does not;
 * or, with `team`, that team's limit (`team.<limit>`, SPEC §9.4).
 */
export function globalDeniedDecision(
  basis: DecisionBasis,
  limit: GlobalBound,
  retryAfterMs: number,
  planned: Extract<AdmissionPlan, { kind: 'write' }>,
  /** The quota, when `limit` is a model's account quota. */
  quotaLimit?: number,
  /** The team, when `limit` is the user's team's. */
  team?: string,
): DeniedDecision {
  return {
    allowed: false,
    tier: basis.tier,
    policy: basis.policy,
    // A team's bound is one of the kinds' (a model's quota is only ever stack-wide).
    limit: team === undefined ? `global.${limit}` : `team.${limit as GlobalLimit}`,
    ...(team === undefined ? {} : { team }),
    retryAfterMs,
    resetAtEpochMs: basis.nowMs + retryAfterMs,
    limits: planned.evaluation.limits,
    queued: basis.snap.waiting.length,
    ...(quotaLimit !== undefined ? { quotaLimit } : {}),
  };
}

/** The tier may not use the model the request names: refused, nothing counted. */
export function modelRefusedDecision(basis: DecisionBasis): DeniedDecision {
  return refusedWithLimits(basis, 'model', 0);
}

/**
 * The user's item stayed busy through every retry: refused with a retry spread over the next second
 * or two (`random` in [0, 1)), so a busy burst does not come back at once.
 */
export function busyDecision(basis: DecisionBasis, random: () => number): DeniedDecision {
  return refusedWithLimits(basis, 'busy', BUSY_RETRY_AFTER_MS + Math.floor(random() * BUSY_RETRY_AFTER_MS));
}

function refusedWithLimits(
  basis: DecisionBasis,
  limit: 'model' | 'busy',
  retryAfterMs: number,
): DeniedDecision {
  return {
    allowed: false,
    tier: basis.tier,
    policy: basis.policy,
    limit,
    retryAfterMs,
    resetAtEpochMs: basis.nowMs + retryAfterMs,
    limits: limitsOf(basis.policy, basis.snap, basis.nowMs),
    queued: basis.snap.waiting.length,
  };
}

/** The store is down for everyone and the fail policy is `closed`: refused as unavailable. */
export function failedClosedDecision(tier: Tier, policy: LimitPolicy, nowMs: number): DeniedDecision {
  return {
    allowed: false,
    tier,
    policy,
    limit: 'unavailable',
    retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
    resetAtEpochMs: nowMs + UNAVAILABLE_RETRY_AFTER_MS,
    limits: [],
    queued: 0,
  };
}

/**
 * The store is down for everyone and the fail policy is `open`: admitted uncounted (the caller logs
 * and meters it), with the allowance the request asks for within the model's maximum.
 */
export function failedOpenDecision(
  input: DecideInput,
  tier: Tier,
  policy: LimitPolicy,
  model: ModelSpec,
  nowMs: number,
): AllowedDecision {
  const outputAllowance = Math.min(input.maxTokens ?? policy.defaultMaxOutputTokens, model.maxOutputTokens);
  return {
    allowed: true,
    tier,
    policy,
    model: model.id,
    waiting: [],
    reservation: {
      userId: input.userId,
      requestId: input.requestId,
      dayNumber: dayNumber(nowMs),
      inputTokens: input.estimatedInputTokens,
      outputAllowance,
      reservedTokens: input.estimatedInputTokens + outputAllowance,
    },
    limits: [],
    failedOpen: true,
  };
}

/**
 * Admitted: by this decision's write (`snap` is the item the write returned), or by an earlier write
 * of the same request whose answer was lost (`already-admitted`: the reservation is the marker's).
 */
export function allowedDecision(
  basis: DecisionBasis,
  input: DecideInput,
  planned: Admitted,
  served: ServedModel,
  global?: GlobalReservation,
  team?: TokenReservation['team'],
): AllowedDecision {
  const { snap, nowMs } = basis;
  const reservation =
    planned.kind === 'write'
      ? {
          ...planned.evaluation.reservation!,
          dayNumber: planned.day,
          tokenEpoch: snap.tokenEpoch,
          costEpoch: snap.costEpoch,
          // Where this admission left the tokens-per-minute bucket: bounds its settle's refund.
          ...bucketAfter(planned.movesBucket, snap),
        }
      : {
          inputTokens: planned.inputTokens,
          outputAllowance: planned.outputAllowance,
          reservedTokens: planned.inputTokens + planned.outputAllowance,
          reservedCostMicroUsd: snap.reservations[input.requestId]?.costMicroUsd ?? 0,
          dayNumber: planned.day,
          tokenEpoch: planned.tokenEpoch,
          costEpoch: planned.costEpoch,
        };
  return {
    allowed: true,
    tier: basis.tier,
    policy: basis.policy,
    waiting: snap.waiting,
    reservation: {
      userId: input.userId,
      requestId: input.requestId,
      claimTier: input.claimTier,
      price: {
        inputUsdPerMillion: served.price.inputUsdPerMillion,
        outputUsdPerMillion: served.price.outputUsdPerMillion,
      },
      ...reservation,
      ...(global ? { global } : {}),
      ...(team ? { team } : {}),
    },
    limits: limitsOf(basis.policy, snap, nowMs),
    failedOpen: false,
    inFlightUntilEpochMs: snap.inFlight?.[input.requestId],
    model: served.model,
    fallbackFrom: served.fallbackFrom,
    shadowExceeded: planned.evaluation.shadowExceeded.map((b) => b.limit),
    warnings: planned.kind === 'write' ? planned.warnings.filter((w) => w.thresholdPercent === 80) : [],
    budgetCrossings: planned.kind === 'write' ? planned.warnings : [],
  };
}

/** Where this admission left the bucket it moved, if it moved one (`TokenReservation.bucketAfterEpochMs`). */
function bucketAfter(moved: boolean, snap: LimiterSnapshot): { readonly bucketAfterEpochMs?: number } {
  if (!moved) return {};
  const at = LIMIT_KINDS.find((k) => k.bucketAt)?.bucketAt?.(snap);
  return at === undefined ? {} : { bucketAfterEpochMs: at };
}
