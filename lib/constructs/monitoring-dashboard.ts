import { Duration } from 'aws-cdk-lib';
import { Dashboard, GraphWidget, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';
import type { MetricName } from '../../lambda/core/metrics';
import type { FunctionKey } from '../../lambda/core/resources';
import { FAULTS_LOGGED_METRIC, serviceMetric } from './metrics';

const count = (name: MetricName) => serviceMetric(name, 'Sum');

/**
 * The `chat-limiter` dashboard: refusals by limit and fail-open, requests, queue wait and depth,
 * tokens and cost, and every function's errors and duration.
 */
export function monitoringDashboard(
  scope: Construct,
  props: {
    readonly functions: Readonly<Record<FunctionKey, NodejsFunction>>;
    readonly queue: Queue;
    readonly deadLetterQueue: Queue;
  },
): Dashboard {
  const dashboard = new Dashboard(scope, 'Dashboard', { dashboardName: 'chat-limiter' });
  dashboard.addWidgets(
    new TextWidget({
      markdown: '# chat-limiter\nLimits, queue and functions. Alarms: see docs/operations.md.',
      width: 24,
      height: 2,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Refusals and fail-open',
      left: [
        // What each limit kind emits when it refuses, then the global limits' and the teams'.
        ...[...new Set(LIMIT_KINDS.map((kind) => kind.metric))].map(count),
        count('GlobalLimitExceeded'),
        count('TeamLimitExceeded'),
        count('LimiterFailOpen'),
      ],
      width: 12,
    }),
    new GraphWidget({
      title: 'Requests',
      left: [count('RequestsQueued'), count('RequestsProcessed'), count('RequestsFailed')],
      right: [serviceMetric(FAULTS_LOGGED_METRIC, 'Sum')],
      width: 12,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Queue wait (ms)',
      left: [serviceMetric('QueueWaitTime', 'p50'), serviceMetric('QueueWaitTime', 'p99')],
      width: 8,
    }),
    new GraphWidget({ title: 'Tokens consumed', left: [count('TokensConsumed')], width: 8 }),
    new GraphWidget({
      title: 'Queue depth and age',
      left: [
        props.queue.metricApproximateNumberOfMessagesVisible(),
        props.queue.metricApproximateNumberOfMessagesNotVisible(),
        props.deadLetterQueue.metricApproximateNumberOfMessagesVisible(),
      ],
      right: [props.queue.metricApproximateAgeOfOldestMessage()],
      width: 8,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Cost and global limits',
      left: [count('CostUsd'), count('ShadowLimitExceeded')],
      right: [serviceMetric('GlobalCostPercent', 'Maximum', Duration.minutes(5))],
      width: 24,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Function errors',
      left: Object.values(props.functions).map((fn) => fn.metricErrors()),
      width: 12,
    }),
    new GraphWidget({
      title: 'Function duration p99',
      left: Object.values(props.functions).map((fn) => fn.metricDuration({ statistic: 'p99' })),
      width: 12,
    }),
  );
  return dashboard;
}
