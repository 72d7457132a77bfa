import { ArnFormat, Stack } from 'aws-cdk-lib';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/** The alarms' SNS topic, encrypted with its own key, that CloudWatch alarms of this account may publish to. */
export function alarmTopic(scope: Construct): Topic {
  const key = new Key(scope, 'TopicKey', {
    enableKeyRotation: true,
    description: 'chat-limiter alarm topic',
  });
  const topic = new Topic(scope, 'Alarms', {
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
  const stack = Stack.of(scope);
  topic.addToResourcePolicy(
    new PolicyStatement({
      sid: 'AllowCloudWatchAlarmsToPublish',
      effect: Effect.ALLOW,
      principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
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
  return topic;
}
