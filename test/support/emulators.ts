import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources, type LocalResources } from '../../local/resources';

export interface TestResources extends LocalResources {
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
}

/** Fresh tables and queues on the run's shared emulators, under a prefix unique to the caller. */
export async function createTestResources(label = 'test'): Promise<TestResources> {
  const dynamodbEndpoint = inject('dynamodbEndpoint');
  const sqsEndpoint = inject('sqsEndpoint');
  const dynamo = localDynamoClient(dynamodbEndpoint);
  const sqs = localSqsClient(sqsEndpoint);
  const prefix = `${label}-${randomUUID().slice(0, 8)}`;
  const resources = await createLocalResources(dynamo, sqs, prefix);
  return { ...resources, dynamo, sqs, dynamodbEndpoint, sqsEndpoint };
}
