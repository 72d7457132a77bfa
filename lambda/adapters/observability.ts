import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../core/metrics';
import type { LogPort, MetricName, MetricsPort } from '../services/ports';

const SERVICE = process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME;
const NAMESPACE = process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE;

/**
 * Structured JSON logs. Callers pass ids, counts and codes, never message text or replies: the
 * log is for operations, and chat contents are the users' business.
 */
export const logger = new Logger({ serviceName: SERVICE });

/** CloudWatch EMF metrics, flushed at the end of each invocation by the handlers. */
export const metrics = new Metrics({ namespace: NAMESPACE, serviceName: SERVICE });

/**
 * Totals of every metric emitted by this process. Locally all functions share one process, so
 * tests and `npm run bench` read these instead of parsing EMF from stdout.
 */
export const metricTotals = new Map<MetricName, number>();

let pendingMetrics = false;

export const metricsPort: MetricsPort = {
  count(name, value = 1, dimensions) {
    pendingMetrics = true;
    if (dimensions) {
      // Its own EMF record, so the dimensions do not stick to the invocation's other metrics.
      const single = metrics.singleMetric();
      for (const [key, dimension] of Object.entries(dimensions)) single.addDimension(key, dimension);
      single.addMetric(name, MetricUnit.Count, value);
    } else {
      metrics.addMetric(name, MetricUnit.Count, value);
    }
    metricTotals.set(name, (metricTotals.get(name) ?? 0) + value);
  },
  milliseconds(name, value) {
    pendingMetrics = true;
    metrics.addMetric(name, MetricUnit.Milliseconds, value);
    metricTotals.set(name, (metricTotals.get(name) ?? 0) + value);
  },
};

export const logPort: LogPort = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

/** Writes the invocation's metrics (EMF) and ends its log context. Call in a `finally`. */
export function flushObservability(): void {
  // Only when something was recorded: Powertools warns on every empty flush.
  if (!pendingMetrics) return;
  pendingMetrics = false;
  metrics.publishStoredMetrics();
}
