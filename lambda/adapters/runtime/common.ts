/**
 * What every composition root shares: timeouts that keep a call from hanging an invocation, the
 * emulator's placeholder credentials, the DynamoDB client, and the default sleep the services are
 * given. Only `@aws-sdk/client-dynamodb` is imported here: a root that needs SQS, Lambda or
 * EventBridge imports that client from its own file (sqs.ts, handoff.ts, events.ts), so no function
 * loads an SDK client it never calls.
 */
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** The endpoints that say "local emulators" (undefined in AWS). */
export interface Endpoints {
  readonly dynamodbEndpoint?: string;
  readonly sqsEndpoint?: string;
}

/**
 * No call may hang an invocation: a dead connection fails within seconds and is retried. The
 * timeouts go to the SDK's default request handler as options, so no copy of
 * `@smithy/node-http-handler` is bundled (the runtime's SDK has it).
 */
export function requestHandler() {
  return {
    connectionTimeout: 1000,
    requestTimeout: 5000,
    // One request at a time per Lambda instance in AWS; locally every invocation shares a process.
    httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
  };
}

/**
 * Locally (emulator endpoints set) the SDK still signs requests, so it gets placeholder keys here
 * rather than through the process environment, where they would also shadow real credentials the
 * Bedrock client needs. In AWS: undefined, the function's role.
 */
export function emulatorCredentials(endpoints: Endpoints) {
  return endpoints.dynamodbEndpoint || endpoints.sqsEndpoint
    ? { accessKeyId: 'local', secretAccessKey: 'local' }
    : undefined;
}

/**
 * A DynamoDB client; locally the endpoint points at the emulator, in AWS it is unset and the SDK
 * finds DynamoDB. @default maxAttempts 3
 */
export function dynamoClient(endpoints: Endpoints, maxAttempts = 3): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: endpoints.dynamodbEndpoint,
    credentials: emulatorCredentials(endpoints),
    maxAttempts,
    requestHandler: requestHandler(),
  });
}

/** The real wait, injected into the services that back off (they take `sleep` as an option). */
export const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
