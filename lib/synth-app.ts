import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type App, Validations } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ChatLimiterStack } from './chat-limiter-stack';
import type { StackConfigInput } from './config';
import { StackConfigError } from './errors';

/**
 * The `chatLimiter` context value as the stack takes it: cdk.json gives an object, `-c
 * chatLimiter='{…}'` a string, parsed here so that text that is not JSON stops the synth with one
 * line naming the JSON error (issue 23 item 9), not a stack trace.
 */
export function chatLimiterContext(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new StackConfigError(`-c chatLimiter is not JSON: ${err.message}`);
  }
}

/** What `validation-report.json` holds for one plugin (cdk-nag's pack among them). */
interface PluginReport {
  readonly pluginName: string;
  readonly conclusion: string;
  readonly violations: readonly {
    readonly ruleName: string;
    readonly violatingConstructs: readonly unknown[];
  }[];
  readonly suppressedViolations?: readonly {
    readonly ruleName: string;
    readonly violatingConstructs: readonly unknown[];
  }[];
}

/**
 * One line saying cdk-nag ran and what it found, from the synthesized assembly's validation report
 * (after CDK applied the stack's acknowledgements): a synth with no finding is otherwise silent
 * about it (issue 23 item 9). Undefined when the assembly has no AwsSolutions report.
 */
export function nagSummary(assembly: CloudAssembly): string | undefined {
  const file = join(assembly.directory, 'validation-report.json');
  if (!existsSync(file)) return undefined;
  const reports = (JSON.parse(readFileSync(file, 'utf8')) as { pluginReports: PluginReport[] }).pluginReports;
  const nag = reports.find((r) => r.pluginName === 'AwsSolutions');
  if (!nag) return undefined;
  const count = (vs: PluginReport['violations']) => vs.reduce((n, v) => n + v.violatingConstructs.length, 0);
  const acknowledged = nag.suppressedViolations ?? [];
  const rules = [
    ...new Set(acknowledged.map((v) => v.ruleName.replace(/\[.*$/, '').replace(/^AwsSolutions-/, ''))),
  ];
  const resources = assembly.stacks.reduce((n, st) => n + Object.keys(st.template.Resources ?? {}).length, 0);
  return (
    `cdk-nag: AwsSolutions checked ${resources} resources: ${count(nag.violations)} finding(s), ` +
    `${count(acknowledged)} acknowledged with a reason${rules.length ? ` (${rules.join(', ')})` : ''}`
  );
}

/** The app `npx cdk synth` runs: the stack from its context, cdk-nag attached. */
export function composeApp(app: App): ChatLimiterStack {
  const stack = new ChatLimiterStack(app, app.node.tryGetContext('stackName') ?? 'ChatLimiter', {
    config: chatLimiterContext(app.node.tryGetContext('chatLimiter')) as StackConfigInput,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    description: 'chat-limiter: per-user rate limits and a fair request queue for AI chat over WebSocket',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
