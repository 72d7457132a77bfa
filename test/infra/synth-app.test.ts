import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { composeApp, nagSummary } from '../../lib/synth-app';
import { runCommand } from '../support/commands';

/** `npx cdk synth`'s app, as the CLI runs it: context in CDK_CONTEXT_JSON (issue 23 item 9). */
function runApp(context: Record<string, unknown>) {
  return runCommand('bin/app.ts', [], {
    env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context) },
    timeoutMs: 25_000,
  });
}

/** The app composed in-process (bundling skipped) and synthesized. */
function compose(chatLimiter: Record<string, unknown>) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], chatLimiter } });
  const stack = composeApp(app);
  return { stack, assembly: app.synth() };
}

describe('cdk synth with a configuration it refuses', () => {
  it.concurrent.each([
    ['{bad', /^chat-limiter: -c chatLimiter is not JSON: .*JSON/],
    ['{"maxQueuedPerUser":-1}', /^chat-limiter: invalid chat-limiter configuration: .*maxQueuedPerUser/],
    ['{"limits":{"tiers":{"gold":{}}}}', /^chat-limiter: invalid chat-limiter configuration: .*gold/],
  ])('%s: one line naming what is wrong, exit 2, no stack trace', async (chatLimiter, message) => {
    const result = await runApp({ chatLimiter });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('cdk synth', () => {
  it('says in one line that cdk-nag ran, on how many resources, with what result', () => {
    const { stack, assembly } = compose({});
    const resources = Object.keys(Template.fromStack(stack).toJSON().Resources).length;
    // The stack acknowledges its wildcard policies (IAM5) with reasons; nothing is left open.
    expect(nagSummary(assembly)).toMatch(
      new RegExp(
        `^cdk-nag: AwsSolutions checked ${resources} resources: 0 finding\\(s\\), [1-9]\\d* acknowledged with a reason \\(.*IAM5.*\\)$`,
      ),
    );
  }, 60_000);

  it('warns when a Bedrock model has no price (cost budgets would never bind), and not once it has one', () => {
    const model = { kind: 'bedrock', modelId: 'anthropic.claude-3-haiku-20240307-v1:0' };
    const unpriced = compose({ model }).stack;
    Annotations.fromStack(unpriced).hasWarning(
      '/ChatLimiter',
      Match.stringLikeRegexp(
        'Bedrock model anthropic.claude-3-haiku-20240307-v1:0 has no price .*never bind on it',
      ),
    );
    const priced = compose({
      model,
      limits: {
        tiers: {},
        models: [
          {
            id: 'haiku',
            kind: 'bedrock',
            modelId: model.modelId,
            inputUsdPerMillion: 0.25,
            outputUsdPerMillion: 1.25,
            maxOutputTokens: 4096,
          },
        ],
      },
    }).stack;
    Annotations.fromStack(priced).hasNoWarning('/ChatLimiter', Match.stringLikeRegexp('has no price'));
  }, 60_000);
});
