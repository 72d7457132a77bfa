import { Duration } from 'aws-cdk-lib';
import {
  type Alarm,
  ComparisonOperator,
  type Dashboard,
  MathExpression,
  type Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, type MetricName } from '../../lambda/core/metrics';
import type { FunctionKey } from '../../lambda/core/resources';
import { alarmTopic } from './alarm-topic';
import { FAULTS_LOGGED_METRIC, serviceMetric } from './metrics';
import { monitoringDashboard } from './monitoring-dashboard';

export { FAULTS_LOGGED_METRIC, METRICS_NAMESPACE };

export interface MonitoringProps {
  readonly functions: Readonly<Record<FunctionKey, NodejsFunction>>;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /** Alarm when the oldest queued message is older than this. */
  readonly maxQueueWaitSeconds: number;
  /**
   * Alarm when more wake-ups than this are in the request queue, visible or deferred: one per user
   * with requests waiting (docs/queue.md), so this counts users, not requests.
   * @default 100
   */
  readonly queueDepthThreshold?: number;
  /**
   * The stack has a global daily cost limit: alarm when today's spend reaches 80 % of it (the
   * `GlobalCostPercent` metric, emitted with each admission, reads how full the shard it was
   * counted in is; the router keeps shards evenly filled, so its maximum tracks the whole).
   */
  readonly globalDailyCostLimit?: boolean;
  readonly alarmEmail?: string;
}

/**
 * Alarms (to an encrypted SNS topic) and a dashboard: DLQ not empty, oldest request older than the
 * queue wait, queue depth (waiting and in flight), limiter fail-open, requests failed, faults the
 * functions caught and logged, and every function's errors and throttles. See docs/operations.md
 * for what to do when each one fires; test/integration/alarms.test.ts drives each one.
 */
export class Monitoring extends Construct {
  public readonly topic: Topic;
  public readonly alarms: Alarm[] = [];
  public readonly dashboard: Dashboard;

  private readonly action: SnsAction;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = alarmTopic(this);
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    this.action = new SnsAction(this.topic);
    this.addQueueAlarms(props);
    this.addServiceAlarms(props);
    this.addFaultsLoggedAlarm(props);
    this.addFunctionAlarms(props);
    this.dashboard = monitoringDashboard(this, props);
  }

  /** An alarm past `threshold` in one period, notifying the topic. */
  private alarm(
    name: string,
    metric: Metric | MathExpression,
    threshold: number,
    description: string,
  ): Alarm {
    const created = metric.createAlarm(this, name, {
      alarmDescription: description,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    created.addAlarmAction(this.action);
    this.alarms.push(created);
    return created;
  }

  /** The request queue: its DLQ, its oldest request, its depth. */
  private addQueueAlarms(props: MonitoringProps): void {
    this.alarm(
      'DeadLetterQueueNotEmpty',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      0,
      'Requests failed for good and were parked in the DLQ (docs/operations.md#dlq-not-empty).',
    );
    this.alarm(
      'OldestRequestTooOld',
      props.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      props.maxQueueWaitSeconds,
      'A queued request has waited longer than MAX_QUEUE_WAIT (docs/operations.md#oldest-request-too-old).',
    );
    // A waiting request is deferred by the processor (ChangeMessageVisibility), so most of the
    // queue is in flight, not visible: the depth is both together.
    const depthThreshold = props.queueDepthThreshold ?? 100;
    this.alarm(
      'QueueDepthHigh',
      new MathExpression({
        expression: 'visible + notVisible',
        label: 'requests in the queue (waiting or deferred)',
        usingMetrics: {
          visible: props.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' }),
          notVisible: props.queue.metricApproximateNumberOfMessagesNotVisible({ statistic: 'Maximum' }),
        },
        period: Duration.minutes(1),
      }),
      depthThreshold,
      `More than ${depthThreshold} users have requests in the queue, waiting or deferred (docs/operations.md#queue-depth-high).`,
    );
  }

  /** The service's own metrics: fail-open, failed requests, the global cost. */
  private addServiceAlarms(props: MonitoringProps): void {
    this.alarm(
      'LimiterFailOpen',
      this.metric('LimiterFailOpen', 'Sum'),
      0,
      'DynamoDB failed and the limiter admitted requests without counting them (docs/operations.md#limiter-fail-open).',
    );
    this.alarm(
      'RequestsFailed',
      this.metric('RequestsFailed', 'Sum', Duration.minutes(5)),
      0,
      'A request failed for good; its user was told request_failed or INTERNAL_ERROR (docs/operations.md#requests-failed).',
    );
    if (props.globalDailyCostLimit) {
      this.alarm(
        'GlobalCostHigh',
        this.metric('GlobalCostPercent', 'Maximum', Duration.minutes(5)),
        80,
        "Today's spend across all users passed 80 % of the global daily cost limit (docs/operations.md#global-cost-high).",
      );
    }
  }

  /** Faults the functions caught and logged at ERROR, counted from their logs. */
  private addFaultsLoggedAlarm(props: MonitoringProps): void {
    for (const [key, fn] of Object.entries(props.functions)) {
      new MetricFilter(this, `${key}FaultsLoggedFilter`, {
        logGroup: fn.logGroup,
        filterPattern: FilterPattern.stringValue('$.level', '=', 'ERROR'),
        metricNamespace: METRICS_NAMESPACE,
        metricName: FAULTS_LOGGED_METRIC,
        metricValue: '1',
        dimensions: { service: '$.service' },
      });
    }
    this.alarm(
      FAULTS_LOGGED_METRIC,
      serviceMetric(FAULTS_LOGGED_METRIC, 'Sum', Duration.minutes(5)),
      0,
      'A function caught a fault and logged it at ERROR (docs/operations.md#faults-logged).',
    );
  }

  /** The reply runner's dropped events, and every function's errors and throttles. */
  private addFunctionAlarms(props: MonitoringProps): void {
    // The reply runner's events that Lambda dropped (too old to start: throttled at its reserved
    // concurrency) and records its on-failure destination did not take. A dropped event is settled
    // and told by `replyFailure`; one whose record was not delivered ended nowhere (until the
    // sweep repairs it): both mean replies are not running (docs/operations.md#reply-events-dropped).
    const reply = props.functions.reply;
    this.alarm(
      'ReplyEventsDropped',
      reply.metric('AsyncEventsDropped', { statistic: 'Sum', period: Duration.minutes(5) }),
      0,
      'Lambda dropped reply jobs it could not start in time; their users were told request_failed (docs/operations.md#reply-events-dropped).',
    );
    this.alarm(
      'ReplyDestinationDeliveryFailures',
      reply.metric('DestinationDeliveryFailures', { statistic: 'Sum', period: Duration.minutes(5) }),
      0,
      'A dropped reply job could not be delivered to the replyFailure function (docs/operations.md#reply-events-dropped).',
    );
    for (const [key, fn] of Object.entries(props.functions)) {
      this.alarm(
        `${key}Errors`,
        fn.metricErrors({ period: Duration.minutes(5) }),
        0,
        `${key} function errors (docs/operations.md#function-errors).`,
      );
      this.alarm(
        `${key}Throttles`,
        fn.metricThrottles({ period: Duration.minutes(5) }),
        0,
        `${key} function throttled (docs/operations.md#function-throttles).`,
      );
    }
  }

  private metric(name: MetricName, statistic: string, period = Duration.minutes(1)): Metric {
    return serviceMetric(name, statistic, period);
  }
}
