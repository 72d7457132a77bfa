/** The DynamoDB client of the small composition roots (see once.ts for why they exist). */
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * A DynamoDB client that cannot hang an invocation: a dead connection fails within seconds and is
 * retried. The timeouts go to the SDK's default request handler as options, so no copy of
 * `@smithy/node-http-handler` is bundled (the runtime's SDK has it).
 */
export function dynamoClient(endpoint: string | undefined): DynamoDBClient {
  return new DynamoDBClient({
    // Locally the endpoint points at the emulator, which still wants signed requests: placeholder
    // keys here, not in the process environment. In AWS: undefined, the function's role.
    endpoint,
    credentials: endpoint ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: 1000,
      requestTimeout: 5000,
      // One request at a time per Lambda instance in AWS; locally every invocation shares a process.
      httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
    },
  });
}
