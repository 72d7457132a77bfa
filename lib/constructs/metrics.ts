import { Duration } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { METRICS_NAMESPACE, type MetricName, SERVICE_NAME } from '../../lambda/core/metrics';

export const SERVICE_DIMENSION = { service: SERVICE_NAME };

/**
 * Not EMF: CloudWatch counts it from the functions' logs (a metric filter on every function's log
 * group), one per Powertools log line at ERROR. Handlers catch faults they can answer (the Message
 * function replies `INTERNAL_ERROR`, the processor retries the record), so Lambda's `Errors` never
 * sees them; every such catch logs at ERROR, and this metric is how an alarm sees it.
 */
export const FAULTS_LOGGED_METRIC = 'FaultsLogged';

/** One of the service's metrics (its namespace, the `service` dimension). @default period 1 minute */
export function serviceMetric(
  name: MetricName | typeof FAULTS_LOGGED_METRIC,
  statistic: string,
  period = Duration.minutes(1),
): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: SERVICE_DIMENSION,
    statistic,
    period,
  });
}
