/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy`. Configuration comes from the `chatLimiter`
 * context value (cdk.json or `-c chatLimiter='{…}'`), validated at synth; the stack name from
 * `-c stackName=…` (default ChatLimiter). cdk-nag's AwsSolutions checks run on every synth and
 * say so in one line. A configuration the stack refuses stops the synth with one line naming the
 * field (or the JSON error) and exit status 2.
 */
import { App } from 'aws-cdk-lib';
import { StackConfigError } from '../lib/errors';
import { composeApp, nagSummary } from '../lib/synth-app';

const app = new App();
try {
  composeApp(app);
  const summary = nagSummary(app.synth());
  if (summary) console.error(summary);
} catch (err) {
  if (!(err instanceof StackConfigError)) throw err;
  console.error(`chat-limiter: ${err.message.replace(/\s*\n\s*/g, ' ')}`);
  process.exit(2);
}
