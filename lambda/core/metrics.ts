/**
 * The service's name and metric namespace, and every metric it emits (SPEC §6), declared once:
 * the handlers emit them (adapters/observability.ts), the stack's alarms and dashboard watch them
 * (lib/constructs/monitoring.ts), the local stack sets the same names.
 */
export const SERVICE_NAME = 'chat-limiter';
export const METRICS_NAMESPACE = 'ChatLimiter';

export const METRIC_NAMES = [
  'MessageRateLimitExceeded',
  'TokenRateLimitExceeded',
  'InFlightLimitExceeded',
  'RequestsQueued',
  'RequestsProcessed',
  'QueueWaitTime',
  'TokensConsumed',
  'LimiterFailOpen',
  'RequestsFailed',
  'CostUsd',
  'ShadowLimitExceeded',
  'GlobalLimitExceeded',
  /** A request held back by its team's limit (a `team.<limit>` refusal: refused, queued, waiting). */
  'TeamLimitExceeded',
  'GlobalCostPercent',
  /** The sweep repaired a user's state (dimension `kind`: lambda/core/queue/sweep.ts REPAIR_KINDS). */
  'StateRepaired',
] as const;

export type MetricName = (typeof METRIC_NAMES)[number];
