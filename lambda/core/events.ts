/**
 * The operational events the stack publishes (SPEC §9.5), declared once: their source, their
 * detail-types and the detail of each. Details carry ids, names and numbers only — never what a
 * user wrote or a model answered.
 */
import type { GlobalCrossing, TeamCrossing } from './limiter/global/crossings';
import type { BudgetCrossing } from './limiter/kinds/registry';
import { SERVICE_NAME } from './metrics';

/** The source of every event the stack publishes. */
export const EVENT_SOURCE = SERVICE_NAME;

export const EVENT_TYPES = {
  budgetThresholdCrossed: 'Budget Threshold Crossed',
  stateRepaired: 'State Repaired',
  breakerOpened: 'Limiter Breaker Opened',
  breakerClosed: 'Limiter Breaker Closed',
} as const;

export type EventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/** `Budget Threshold Crossed`: a user's budget or quota at 80 % or 100 % used, once per window. */
export function budgetCrossedDetail(
  userId: string,
  requestId: string,
  crossing: BudgetCrossing,
  nowMs: number,
) {
  return {
    scope: 'user',
    userId,
    requestId,
    limit: crossing.limit,
    thresholdPercent: crossing.thresholdPercent,
    used: crossing.limitValue - crossing.remaining,
    remaining: crossing.remaining,
    limitValue: crossing.limitValue,
    unit: crossing.unit,
    window: crossing.window,
    resetAt: new Date(crossing.resetAtEpochMs).toISOString(),
    crossedAt: new Date(nowMs).toISOString(),
  } as const;
}

/** `Budget Threshold Crossed` for a global budget (the sweep's, from the shards' totals). */
export function globalBudgetCrossedDetail(crossing: GlobalCrossing, nowMs: number) {
  return { scope: 'global', ...sharedBudgetFields(crossing, nowMs) } as const;
}

/**
 * `Budget Threshold Crossed` for a team's budget (the sweep's, from the team's shards' totals): the
 * global detail's fields with the team named; `limit` is `team.<limit>`, as its refusals name it.
 */
export function teamBudgetCrossedDetail(crossing: TeamCrossing, nowMs: number) {
  return { scope: 'team', team: crossing.team, ...sharedBudgetFields(crossing, nowMs) } as const;
}

/** What a shared (global or team) budget's crossing says, from the totals over its shards. */
function sharedBudgetFields<C extends GlobalCrossing | TeamCrossing>(crossing: C, nowMs: number) {
  return {
    limit: crossing.limit as C['limit'],
    thresholdPercent: crossing.thresholdPercent,
    used: crossing.used,
    remaining: Math.max(0, crossing.limitValue - crossing.used),
    limitValue: crossing.limitValue,
    unit: crossing.unit,
    window: crossing.window,
    resetAt: new Date(crossing.resetAtEpochMs).toISOString(),
    crossedAt: new Date(nowMs).toISOString(),
  };
}

/** `Limiter Breaker Opened` / `Closed`: one function instance's breaker changed state. */
export function breakerEvent(
  state: 'open' | 'closed',
  functionName: string,
  nowMs: number,
  cause?: string,
): { readonly detailType: EventType; readonly detail: Readonly<Record<string, unknown>> } {
  return {
    detailType: state === 'open' ? EVENT_TYPES.breakerOpened : EVENT_TYPES.breakerClosed,
    detail: {
      function: functionName,
      state,
      ...(cause ? { cause } : {}),
      at: new Date(nowMs).toISOString(),
    },
  };
}
