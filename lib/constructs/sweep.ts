import { Duration } from 'aws-cdk-lib';
import {
  type Alarm,
  ComparisonOperator,
  type Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/core/metrics';
import { REPAIR_KINDS, SWEEP_INTERVAL_SECONDS } from '../../lambda/core/queue/sweep';

export interface SweepScheduleProps {
  /** The sweep function (FUNCTIONS.sweep). */
  readonly fn: IFunction;
  /** How often it runs. @default SWEEP_INTERVAL_SECONDS (every minute) */
  readonly every?: Duration;
  /** The alarm topic: repairs in numbers notify it. @default no alarm action */
  readonly alarmTopic?: ITopic;
  /** The dashboard that gets the repairs widget. @default none */
  readonly dashboard?: Dashboard;
  /**
   * Alarm when more repairs than this happen in 15 minutes: a few are what lost messages and
   * crashes leave; many mean something keeps losing them. @default 10
   */
  readonly repairsThreshold?: number;
}

/**
 * The self-healing sweep's schedule (SPEC §9.1): an EventBridge rule runs it every minute. It may
 * publish `State Repaired` to the account's default bus (its `publishesEvents` grant); its
 * `StateRepaired` metric, by kind, gets a dashboard widget and an alarm.
 */
export class SweepSchedule extends Construct {
  public readonly rule: Rule;
  public readonly alarm: Alarm;

  constructor(scope: Construct, id: string, props: SweepScheduleProps) {
    super(scope, id);
    const every = props.every ?? Duration.seconds(SWEEP_INTERVAL_SECONDS);
    if (every.toSeconds() < 60) throw new Error('the sweep runs at most once a minute (EventBridge rate)');
    this.rule = new Rule(this, 'Schedule', {
      description: 'chat-limiter self-healing sweep (docs/queue.md#the-sweep)',
      schedule: Schedule.rate(every),
      // A missed run is made good by the next one: no retries piling onto it.
      targets: [new LambdaFunction(props.fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    });

    const byKind = Object.fromEntries(
      REPAIR_KINDS.map((kind, i) => [
        `k${i}`,
        new Metric({
          namespace: METRICS_NAMESPACE,
          metricName: 'StateRepaired',
          dimensionsMap: { service: SERVICE_NAME, kind },
          statistic: 'Sum',
          label: kind,
        }),
      ]),
    );
    const total = new MathExpression({
      expression: Object.keys(byKind).join(' + '),
      label: 'state repaired (all kinds)',
      usingMetrics: byKind,
      period: Duration.minutes(15),
    });
    this.alarm = total.createAlarm(this, 'StateRepairsMany', {
      alarmDescription:
        'The sweep repaired many users’ states: something keeps losing wake-ups or crashing (docs/operations.md#state-repairs-many).',
      threshold: props.repairsThreshold ?? 10,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) this.alarm.addAlarmAction(new SnsAction(props.alarmTopic));
    props.dashboard?.addWidgets(
      new GraphWidget({
        title: 'State repaired by the sweep, by kind',
        left: Object.values(byKind),
        width: 24,
      }),
    );
  }
}
