import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';
import type { StackConfigInput } from '../../lib/config';

/** Synthesizes the stack (bundling skipped) with cdk-nag attached: a finding fails the synth. */
function synth(config: StackConfigInput = {}): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ChatLimiterStack(app, 'Test', {
    config,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return Template.fromStack(stack);
}

type Resources = Record<string, { Type: string; DependsOn?: string[]; DeletionPolicy?: string }>;

describe('a deploy into a fresh account', () => {
  let template: Template;
  beforeAll(() => {
    template = synth();
  }, 60_000);

  it("sets the account's API Gateway CloudWatch Logs role, which WebSocket access logging needs", () => {
    const roles = template.findResources('AWS::IAM::Role', {
      Properties: {
        AssumeRolePolicyDocument: {
          Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })],
        },
        ManagedPolicyArns: [
          {
            'Fn::Join': [
              '',
              Match.arrayWith([':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs']),
            ],
          },
        ],
      },
    });
    const roleId = Object.keys(roles)[0] ?? 'no role for API Gateway';
    template.hasResource('AWS::ApiGateway::Account', {
      Properties: { CloudWatchRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } },
      // Another API of the account may rely on the setting after this stack is deleted.
      DeletionPolicy: 'Retain',
    });
    expect(roles[roleId]).toMatchObject({ DeletionPolicy: 'Retain' });
  });

  it('creates the stage with access logging only after the account has the role', () => {
    const resources = template.toJSON().Resources as Resources;
    const accountId = Object.keys(template.findResources('AWS::ApiGateway::Account'))[0] ?? 'none';
    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as Resources[string];
    expect(stage.DependsOn).toContain(accountId);
    expect(resources[accountId]?.DependsOn).toEqual(
      expect.arrayContaining([Object.keys(template.findResources('AWS::ApiGatewayV2::Api'))[0]]),
    );
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
    });
  });

  it('leaves an existing account setting alone when told to, still logging access', () => {
    const kept = synth({ apiGatewayAccountLogsRole: false });
    kept.resourceCountIs('AWS::ApiGateway::Account', 0);
    kept.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: { DestinationArn: Match.anyValue() },
    });
  }, 60_000);
});
