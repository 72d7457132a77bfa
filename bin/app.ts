/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy`. Configuration comes from the `chatLimiter`
 * context value (cdk.json or `-c chatLimiter='{…}'`), validated at synth; the stack name from
 * `-c stackName=…` (default ChatLimiter). cdk-nag's AwsSolutions checks run on every synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ChatLimiterStack } from '../lib/chat-limiter-stack';

const app = new App();
const raw = app.node.tryGetContext('chatLimiter');
const stackName = app.node.tryGetContext('stackName') ?? 'ChatLimiter';
new ChatLimiterStack(app, stackName, {
  config: typeof raw === 'string' ? JSON.parse(raw) : raw,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'chat-limiter: per-user rate limits and a fair request queue for AI chat over WebSocket',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
