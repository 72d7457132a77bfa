import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';
import type { StackConfigInput } from '../../lib/config';

/**
 * Reading a synthesized template's alarms, and what the handlers emit (EMF, log lines for metric
 * filters), the way CloudWatch would evaluate them: shared by the alarm tests.
 */

export type Json = Record<string, unknown>;

export interface WatchedMetric {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  /** Dimension values as the template has them: strings, or `Ref` / `Fn::GetAtt` objects. */
  readonly dimensions: Record<string, unknown>;
  readonly statistic: string;
  readonly periodSeconds: number;
}

export interface AlarmSpec {
  readonly logicalId: string;
  readonly metrics: readonly WatchedMetric[];
  /** A metric-math alarm's expression over the ids of `metrics`. */
  readonly expression?: string;
  readonly threshold: number;
  readonly comparison: string;
}

/** The same synthesis as test/infra/stack.test.ts (bundling skipped). */
export function synthTemplate(config?: StackConfigInput): Json {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ChatLimiterStack(app, 'Alarms', {
    env: { account: '123456789012', region: 'eu-west-1' },
    config,
  });
  return Template.fromStack(stack).toJSON() as Json;
}

export function resourcesOfType(template: Json, type: string): [string, Json][] {
  return Object.entries(template.Resources as Record<string, Json>)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, r.Properties as Json]);
}

export function dimensionsOf(list: unknown): Record<string, unknown> {
  return Object.fromEntries(
    ((list as { Name: string; Value: unknown }[]) ?? []).map((d) => [d.Name, d.Value]),
  );
}

export function readAlarms(template: Json): AlarmSpec[] {
  return resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(([logicalId, p]) => {
    const common = {
      logicalId,
      threshold: p.Threshold as number,
      comparison: p.ComparisonOperator as string,
    };
    if (!p.Metrics) {
      const metric = {
        id: 'm',
        namespace: p.Namespace as string,
        name: p.MetricName as string,
        dimensions: dimensionsOf(p.Dimensions),
        statistic: p.Statistic as string,
        periodSeconds: p.Period as number,
      };
      return { ...common, metrics: [metric] };
    }
    const entries = p.Metrics as Json[];
    const metrics = entries
      .filter((m) => m.MetricStat)
      .map((m) => {
        const stat = m.MetricStat as Json;
        const metric = stat.Metric as Json;
        return {
          id: m.Id as string,
          namespace: metric.Namespace as string,
          name: metric.MetricName as string,
          dimensions: dimensionsOf(metric.Dimensions),
          statistic: stat.Stat as string,
          periodSeconds: stat.Period as number,
        };
      });
    const expression = entries.find((m) => m.ReturnData !== false && m.Expression)?.Expression as string;
    return { ...common, metrics, expression };
  });
}

export function crosses(alarm: AlarmSpec, value: number): boolean {
  switch (alarm.comparison) {
    case 'GreaterThanThreshold':
      return value > alarm.threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= alarm.threshold;
    case 'LessThanThreshold':
      return value < alarm.threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= alarm.threshold;
    default:
      throw new Error(`comparison ${alarm.comparison} is not evaluated by this test`);
  }
}

/** The value of a metric-math expression; only sums of metric ids are understood (fails otherwise). */
export function evaluate(expression: string, values: Record<string, number>): number {
  return expression.split('+').reduce((sum, term) => {
    const id = term.trim();
    if (!(id in values)) throw new Error(`cannot evaluate "${expression}": unknown term "${id}"`);
    return sum + values[id]!;
  }, 0);
}

export function statistic(name: string, values: readonly number[]): number {
  switch (name) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'SampleCount':
      return values.length;
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    default:
      throw new Error(`statistic ${name} is not evaluated by this test`);
  }
}

/** One metric value as CloudWatch would receive it: from an EMF document or a metric filter. */
export interface Datapoint {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Record<string, unknown>;
  readonly value: number;
  readonly timestampMs: number;
}

/** Every metric of every EMF document (`_aws.CloudWatchMetrics`) among the captured lines. */
export function emfDatapoints(lines: readonly Json[]): Datapoint[] {
  const points: Datapoint[] = [];
  for (const doc of lines) {
    const aws = doc._aws as { Timestamp: number; CloudWatchMetrics: Json[] } | undefined;
    if (!aws) continue;
    for (const directive of aws.CloudWatchMetrics) {
      for (const dimensionSet of directive.Dimensions as string[][]) {
        for (const { Name } of directive.Metrics as { Name: string }[]) {
          const raw = doc[Name];
          for (const value of Array.isArray(raw) ? raw : [raw]) {
            points.push({
              namespace: directive.Namespace as string,
              name: Name,
              dimensions: Object.fromEntries(dimensionSet.map((d) => [d, doc[d]])),
              value: Number(value),
              timestampMs: aws.Timestamp,
            });
          }
        }
      }
    }
  }
  return points;
}

/**
 * What the template's metric filters make of the captured log lines. Only the JSON equality
 * pattern `{ $.field = "value" }` is understood: another pattern fails the test instead of being
 * guessed at.
 */
export function metricFilterDatapoints(template: Json, lines: readonly Json[]): Datapoint[] {
  const points: Datapoint[] = [];
  for (const [, filter] of resourcesOfType(template, 'AWS::Logs::MetricFilter')) {
    const match = /^\{\s*\$\.(\w+)\s*=\s*"([^"]*)"\s*\}$/.exec(filter.FilterPattern as string);
    if (!match) throw new Error(`filter pattern ${String(filter.FilterPattern)} is not evaluated here`);
    const [, field, expected] = match;
    for (const t of filter.MetricTransformations as Json[]) {
      for (const line of lines) {
        if (line._aws || line[field!] !== expected) continue;
        const dims = (t.Dimensions as { Key: string; Value: string }[] | undefined) ?? [];
        points.push({
          namespace: t.MetricNamespace as string,
          name: t.MetricName as string,
          dimensions: Object.fromEntries(dims.map((d) => [d.Key, line[d.Value.replace(/^\$\./, '')]])),
          value: Number(t.MetricValue),
          timestampMs: Date.parse(String(line.timestamp)) || Date.now(),
        });
      }
    }
  }
  return points;
}

/** The highest value the alarm's statistic reaches over any one of its periods. */
export function peak(metric: WatchedMetric, points: readonly Datapoint[]): number | undefined {
  const buckets = new Map<number, number[]>();
  for (const p of points) {
    if (p.namespace !== metric.namespace || p.name !== metric.name) continue;
    // CloudWatch matches a metric by its exact set of dimensions.
    expect(p.dimensions).toEqual(metric.dimensions);
    const bucket = Math.floor(p.timestampMs / (metric.periodSeconds * 1000));
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), p.value]);
  }
  if (buckets.size === 0) return undefined;
  return Math.max(...[...buckets.values()].map((values) => statistic(metric.statistic, values)));
}

/**
 * Captures the JSON lines the handlers print — EMF and logs on stdout, Powertools' ERROR logs on
 * stderr; Lambda sends both to the function's log group — without echoing them.
 */
export function captureOutput(): { lines: Json[]; restore(): void } {
  const lines: Json[] = [];
  const restores = [process.stdout, process.stderr].map((stream) => {
    const original = stream.write.bind(stream);
    const write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      const json = text.split('\n').filter((line) => line.startsWith('{'));
      if (json.length === 0) return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
      for (const line of json) {
        try {
          lines.push(JSON.parse(line));
        } catch {
          // not one of ours
        }
      }
      return true;
    };
    stream.write = write as typeof stream.write;
    return () => {
      stream.write = original;
    };
  });
  return {
    lines,
    restore: () => {
      for (const restore of restores) restore();
    },
  };
}
