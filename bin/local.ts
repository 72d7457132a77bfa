/**
 * `npm start`: the local stack. Boots the embedded emulators (or uses DYNAMODB_ENDPOINT /
 * SQS_ENDPOINT), creates the tables and queues, and reports what is running.
 */
import { localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';

async function main(): Promise<void> {
  const emulators = await startEmulators({
    dynamodbEndpoint: process.env.DYNAMODB_ENDPOINT,
    sqsEndpoint: process.env.SQS_ENDPOINT,
  });
  const resources = await createLocalResources(
    localDynamoClient(emulators.dynamodbEndpoint),
    localSqsClient(emulators.sqsEndpoint),
  );
  const kind = (embedded: boolean) => (embedded ? 'embedded' : 'external');
  console.log(`dynamodb: ${emulators.dynamodbEndpoint} (${kind(emulators.embedded.dynamodb)})`);
  console.log(`sqs:      ${emulators.sqsEndpoint} (${kind(emulators.embedded.sqs)})`);
  console.log(`tables:   ${Object.values(resources.tables).join(', ')}`);
  console.log(
    `queues:   ${Object.values(resources.queues)
      .map((q) => q.url)
      .join(', ')}`,
  );

  const shutdown = async () => {
    await emulators.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
