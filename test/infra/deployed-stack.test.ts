import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../lambda/core/resources';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';
import { parseStackConfig, type StackConfigInput } from '../../lib/config';

function synth(config: StackConfigInput = {}): { stack: Stack; template: Template } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ChatLimiterStack(app, 'Test', {
    config,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  return { stack, template: Template.fromStack(stack) };
}

/** The logical id of a function of `FUNCTIONS` in the synthesized stack. */
function functionId(stack: Stack, key: keyof typeof FUNCTIONS): string {
  const fn = stack.node.findChild('Functions').node.findChild(FUNCTIONS[key].id);
  return stack.getLogicalId(fn.node.defaultChild as CfnElement);
}

describe('the deployed stack (issue 20: alarms that notify, a bounded reply runner)', () => {
  let stack: Stack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synth());
  }, 60_000);

  it('lets CloudWatch alarms of this account publish to the alarm topic, TLS still enforced', () => {
    const topicId = stack.getLogicalId(
      stack.node.findChild('Monitoring').node.findChild('Alarms').node.defaultChild as CfnElement,
    );
    const statement = (matcher: Record<string, unknown>) =>
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: topicId }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike(matcher)]) },
      });
    statement({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Resource: { Ref: topicId },
      Condition: {
        StringEquals: { 'aws:SourceAccount': '123456789012' },
        ArnLike: {
          'aws:SourceArn': {
            'Fn::Join': ['', Match.arrayWith([':cloudwatch:eu-west-1:123456789012:alarm:*'])],
          },
        },
      },
    });
    statement({
      Effect: 'Deny',
      Principal: '*',
      Action: 'sns:Publish',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
  });

  it("configures the runner's asynchronous invocations: 300 s inside its lease, one retry, the failure destination", () => {
    const lease = FUNCTIONS.reply.timeoutSeconds + 60;
    const { maxEventAgeSeconds } = FUNCTIONS.reply.asyncInvoke;
    expect(maxEventAgeSeconds).toBeLessThan(lease);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionId(stack, 'reply') },
      Qualifier: '$LATEST',
      MaximumEventAgeInSeconds: 300,
      MaximumRetryAttempts: 1,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [functionId(stack, 'replyFailure'), 'Arn'] } },
      },
    });
    // The runner's role may invoke the destination (Lambda uses it to deliver the record).
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'lambda:InvokeFunction',
            Resource: { 'Fn::GetAtt': [functionId(stack, 'replyFailure'), 'Arn'] },
          },
        ]),
      },
    });
  });

  it('reserves concurrency for the runner only, and keeps the processor within it', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: Match.absent(),
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 100,
    });
    const reserved = Object.entries(template.findResources('AWS::Lambda::Function'))
      .filter(
        ([, r]) => (r as { Properties: Record<string, unknown> }).Properties.ReservedConcurrentExecutions,
      )
      .map(([id]) => id);
    expect(reserved).toEqual([functionId(stack, 'reply')]);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId(stack, 'processor') },
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    const custom = synth({ replyConcurrency: 300, processorConcurrency: 50 }).template;
    custom.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 300 });
    const none = synth({ replyConcurrency: null }).template;
    expect(JSON.stringify(none.toJSON())).not.toContain('ReservedConcurrentExecutions');
  }, 60_000);

  it.each([
    [{ replyConcurrency: 901 }, /leave 99 of the account's 1000 unreserved; Lambda requires 100/],
    [{ replyConcurrency: 50, accountConcurrency: 120 }, /leave 70/],
    [{ replyConcurrency: 5 }, /processorConcurrency: 10 processors could hand off more/],
  ])('refuses a reply concurrency the account or the processor cannot live with: %j', (input, message) => {
    expect(() => parseStackConfig(input)).toThrow(message);
  });

  it("alarms when Lambda drops the runner's events, or cannot deliver them to the destination", () => {
    for (const metric of ['AsyncEventsDropped', 'DestinationDeliveryFailures']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId(stack, 'reply') } }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [Match.anyValue()],
      });
    }
  });
});
