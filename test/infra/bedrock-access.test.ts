import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';

const HAIKU = 'anthropic.claude-3-5-haiku-20241022-v1:0';

/** The stack in `region` with a Bedrock model, cdk-nag attached (a finding fails the synth). */
function synthWith(model: { modelId: string; inferenceRegions?: string[] }, region = 'eu-west-1'): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ChatLimiterStack(app, 'Test', {
    config: { model: { kind: 'bedrock', ...model } },
    env: { account: '123456789012', region },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return Template.fromStack(stack);
}

/** Every Bedrock statement of the reply runner's role, resources rendered as ARN text. */
function bedrockStatements(template: Template): { resources: string[]; condition?: unknown }[] {
  const render = (r: unknown): string =>
    typeof r === 'string'
      ? r
      : (r as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]
          .map((p) => (typeof p === 'string' ? p : '<partition>'))
          .join('');
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('ReplyRunnerRole') }] },
  });
  return Object.values(policies).flatMap((p) =>
    (
      p as {
        Properties: {
          PolicyDocument: { Statement: { Action: string; Resource: unknown; Condition?: unknown }[] };
        };
      }
    ).Properties.PolicyDocument.Statement.filter((s) => String(s.Action).startsWith('bedrock:')).map((s) => ({
      resources: [s.Resource].flat().map(render),
      ...(s.Condition ? { condition: s.Condition } : {}),
    })),
  );
}

const profileArn = (region: string, id: string) =>
  `arn:<partition>:bedrock:${region}:123456789012:inference-profile/${id}`;

describe('Bedrock access', () => {
  it('allows a foundation model id in the stack Region only, and no inference profile', () => {
    expect(bedrockStatements(synthWith({ modelId: HAIKU }))).toEqual([
      { resources: [`arn:<partition>:bedrock:eu-west-1::foundation-model/${HAIKU}`] },
    ]);
  }, 60_000);

  it('allows a geographic profile plus its model in the Regions it routes to, only through the profile', () => {
    const id = `eu.${HAIKU}`;
    const statements = bedrockStatements(synthWith({ modelId: id }));
    expect(statements).toEqual([
      { resources: [profileArn('eu-west-1', id)] },
      {
        resources: [
          `arn:<partition>:bedrock:eu-west-1::foundation-model/${HAIKU}`,
          `arn:<partition>:bedrock:eu-*::foundation-model/${HAIKU}`,
        ],
        condition: { StringEquals: { 'bedrock:InferenceProfileArn': expect.anything() } },
      },
    ]);
    expect(JSON.stringify(statements[1]?.condition)).toContain(`inference-profile/${id}`);
  }, 60_000);

  it('names the exact destination Regions when they are configured', () => {
    const id = `us.${HAIKU}`;
    const statements = bedrockStatements(
      synthWith({ modelId: id, inferenceRegions: ['us-east-1', 'us-east-2', 'us-west-2'] }, 'us-east-1'),
    );
    expect(statements[1]?.resources).toEqual(
      ['us-east-1', 'us-east-2', 'us-west-2'].map(
        (r) => `arn:<partition>:bedrock:${r}::foundation-model/${HAIKU}`,
      ),
    );
  }, 60_000);

  it('adds the Region-less model ARN for a global profile', () => {
    const id = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const statements = bedrockStatements(synthWith({ modelId: id }));
    expect(statements[0]?.resources).toEqual([profileArn('eu-west-1', id)]);
    expect(statements[1]?.resources).toEqual([
      'arn:<partition>:bedrock:eu-west-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:<partition>:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
      'arn:<partition>:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]);
  }, 60_000);

  it('refuses at synth a geographic profile that the stack Region cannot call', () => {
    expect(() => synthWith({ modelId: `us.${HAIKU}` }, 'eu-west-1')).toThrow(
      /cannot be called from eu-west-1/,
    );
  }, 60_000);
});
