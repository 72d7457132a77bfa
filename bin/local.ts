/**
 * `npm start`: the whole stack on this machine — embedded DynamoDB and SQS emulators (or
 * DYNAMODB_ENDPOINT / SQS_ENDPOINT), the tables and queues, the handlers behind a local API
 * Gateway, the queue processor, and the chat page. Prints where everything is and a dev token.
 */
import { ENV, LOCAL_STAGE } from '../lambda/core/resources';
import { signDevToken } from '../local/dev-tokens';
import { startLocalStack } from '../local/stack';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3001);
  const passThrough = [
    ENV.model,
    ENV.bedrockModelId,
    ENV.echoDelayMs,
    ENV.limitsConfig,
    ENV.failPolicy,
    ENV.maxQueuedPerUser,
    ENV.maxQueueWaitSeconds,
    ENV.maxMessageChars,
    ENV.connectLimitPerMinute,
  ];
  const environment: Record<string, string> = {
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  };
  for (const name of passThrough) if (process.env[name]) environment[name] = process.env[name]!;

  const stack = await startLocalStack({
    port,
    dynamodbEndpoint: process.env[ENV.dynamodbEndpoint],
    sqsEndpoint: process.env[ENV.sqsEndpoint],
    environment,
  });
  const token = await signDevToken({ userId: 'alice' });
  const host = `localhost:${new URL(stack.httpUrl).port}`;
  const kind = (embedded: boolean) => (embedded ? 'embedded' : 'external');
  console.log(`dynamodb:  ${stack.emulators.dynamodbEndpoint} (${kind(stack.emulators.embedded.dynamodb)})`);
  console.log(`sqs:       ${stack.emulators.sqsEndpoint} (${kind(stack.emulators.embedded.sqs)})`);
  console.log(`model:     ${environment[ENV.model] ?? 'echo'}`);
  console.log(`chat page: http://${host}/#token=${token}`);
  console.log(`websocket: ws://${host}/${LOCAL_STAGE}?token=<JWT>`);
  console.log(`@connections: http://${host}/${LOCAL_STAGE}/@connections/{connectionId}`);
  console.log(`dev token (user alice, 24 h): ${token}`);
  console.log(
    'more:      npm run token -- --user bob --tier pro | npm run chat -- --user bob | npm run admin -- usage alice',
  );
  console.log(`ready: ws://${host}/${LOCAL_STAGE}`);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
    console.error('Port in use: set PORT=3002 (or another free port).');
  process.exit(1);
});
