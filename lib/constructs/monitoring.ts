import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import {
  type Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/core/metrics';
import type { FunctionKey } from '../../lambda/core/resources';
import type { MetricName } from '../../lambda/services/ports';

export { METRICS_NAMESPACE };

const SERVICE_DIMENSION = { service: SERVICE_NAME };

/**
 * Not EMF: CloudWatch counts it from the functions' logs (a metric filter on every function's log
 * group), one per Powertools log line at ERROR. Handlers catch faults they can answer (the Message
 * function replies `INTERNAL_ERROR`, the processor retries the record), so Lambda's `Errors` never
 * sees them; every such catch logs at ERROR, and this metric is how an alarm sees it.
 */
export const FAULTS_LOGGED_METRIC = 'FaultsLogged';

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

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const key = new Key(this, 'TopicKey', {
      enableKeyRotation: true,
      description: 'chat-limiter alarm topic',
    });
    this.topic = new Topic(this, 'Alarms', {
      masterKey: key,
      enforceSSL: true,
      displayName: 'chat-limiter alarms',
    });
    // CloudWatch publishes alarm notifications to the encrypted topic.
    key.grantEncryptDecrypt(new ServicePrincipal('cloudwatch.amazonaws.com'));
    // `enforceSSL` gives the topic an AWS::SNS::TopicPolicy, which replaces SNS's default policy:
    // with only its Deny of insecure transport, CloudWatch may not publish and no alarm notifies
    // (issue 20, finding 16). CloudWatch publishes as its service principal, allowed here for this
    // account's alarms only (aws:SourceAccount, aws:SourceArn against the confused deputy), as AWS
    // documents it: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
    // and https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    // ("Allow CloudWatch alarms … to publish"), https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
    // (the key grant above, for an encrypted topic).
    const stack = Stack.of(this);
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);
    const alarm = (name: string, metric: Metric | MathExpression, threshold: number, description: string) => {
      const created = metric.createAlarm(this, name, {
        alarmDescription: description,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
      return created;
    };

    alarm(
      'DeadLetterQueueNotEmpty',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      0,
      'Requests failed for good and were parked in the DLQ (docs/operations.md#dlq-not-empty).',
    );
    alarm(
      'OldestRequestTooOld',
      props.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      props.maxQueueWaitSeconds,
      'A queued request has waited longer than MAX_QUEUE_WAIT (docs/operations.md#oldest-request-too-old).',
    );
    // A waiting request is deferred by the processor (ChangeMessageVisibility), so most of the
    // queue is in flight, not visible: the depth is both together.
    const depthThreshold = props.queueDepthThreshold ?? 100;
    alarm(
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
    alarm(
      'LimiterFailOpen',
      this.metric('LimiterFailOpen', 'Sum'),
      0,
      'DynamoDB failed and the limiter admitted requests without counting them (docs/operations.md#limiter-fail-open).',
    );
    alarm(
      'RequestsFailed',
      this.metric('RequestsFailed', 'Sum', Duration.minutes(5)),
      0,
      'A request failed for good; its user was told request_failed or INTERNAL_ERROR (docs/operations.md#requests-failed).',
    );
    if (props.globalDailyCostLimit) {
      alarm(
        'GlobalCostHigh',
        this.metric('GlobalCostPercent', 'Maximum', Duration.minutes(5)),
        80,
        "Today's spend across all users passed 80 % of the global daily cost limit (docs/operations.md#global-cost-high).",
      );
    }
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
    alarm(
      FAULTS_LOGGED_METRIC,
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: FAULTS_LOGGED_METRIC,
        dimensionsMap: SERVICE_DIMENSION,
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      0,
      'A function caught a fault and logged it at ERROR (docs/operations.md#faults-logged).',
    );
    // The reply runner's events that Lambda dropped (too old to start: throttled at its reserved
    // concurrency) and records its on-failure destination did not take. A dropped event is settled
    // and told by `replyFailure`; one whose record was not delivered ended nowhere (until the
    // sweep repairs it): both mean replies are not running (docs/operations.md#reply-events-dropped).
    const reply = props.functions.reply;
    alarm(
      'ReplyEventsDropped',
      reply.metric('AsyncEventsDropped', { statistic: 'Sum', period: Duration.minutes(5) }),
      0,
      'Lambda dropped reply jobs it could not start in time; their users were told request_failed (docs/operations.md#reply-events-dropped).',
    );
    alarm(
      'ReplyDestinationDeliveryFailures',
      reply.metric('DestinationDeliveryFailures', { statistic: 'Sum', period: Duration.minutes(5) }),
      0,
      'A dropped reply job could not be delivered to the replyFailure function (docs/operations.md#reply-events-dropped).',
    );
    for (const [key, fn] of Object.entries(props.functions)) {
      alarm(
        `${key}Errors`,
        fn.metricErrors({ period: Duration.minutes(5) }),
        0,
        `${key} function errors (docs/operations.md#function-errors).`,
      );
      alarm(
        `${key}Throttles`,
        fn.metricThrottles({ period: Duration.minutes(5) }),
        0,
        `${key} function throttled (docs/operations.md#function-throttles).`,
      );
    }

    const count = (name: MetricName) => this.metric(name, 'Sum');
    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: 'chat-limiter' });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: '# chat-limiter\nLimits, queue and functions. Alarms: see docs/operations.md.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Refusals and fail-open',
        left: [
          count('MessageRateLimitExceeded'),
          count('TokenRateLimitExceeded'),
          count('InFlightLimitExceeded'),
          count('GlobalLimitExceeded'),
          count('LimiterFailOpen'),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Requests',
        left: [count('RequestsQueued'), count('RequestsProcessed'), count('RequestsFailed')],
        right: [
          new Metric({
            namespace: METRICS_NAMESPACE,
            metricName: FAULTS_LOGGED_METRIC,
            dimensionsMap: SERVICE_DIMENSION,
            statistic: 'Sum',
          }),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Queue wait (ms)',
        left: [this.metric('QueueWaitTime', 'p50'), this.metric('QueueWaitTime', 'p99')],
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
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Cost and global limits',
        left: [count('CostUsd'), count('ShadowLimitExceeded')],
        right: [this.metric('GlobalCostPercent', 'Maximum', Duration.minutes(5))],
        width: 24,
      }),
    );
    this.dashboard.addWidgets(
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
  }

  private metric(name: MetricName, statistic: string, period = Duration.minutes(1)): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: SERVICE_DIMENSION,
      statistic,
      period,
    });
  }
}
