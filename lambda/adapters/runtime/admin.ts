/**
 * The Admin function's composition root: the admin service over the user-facing parts and a
 * health probe that asks each resource once.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { AdminService } from '../../services/admin-service';
import { StoreHealthProbe } from '../health-probe';
import { logPort } from '../observability';
import { emulatorCredentials, requestHandler } from './common';
import { once } from './once';
import { userFacing } from './user-facing';

export const adminRuntime = once(() => {
  const base = userFacing('admin');
  const { config, limiter } = base;
  // One attempt per probe: `health` says at once that a resource does not answer.
  const probeClients = {
    maxAttempts: 1,
    credentials: emulatorCredentials(config),
    requestHandler: requestHandler(),
  };
  const health = new StoreHealthProbe({
    dynamo: new DynamoDBClient({ ...probeClients, endpoint: config.dynamodbEndpoint }),
    sqs: new SQSClient({ ...probeClients, endpoint: config.sqsEndpoint }),
    tableNames: config.tables,
    queueUrls: { requests: config.requestQueueUrl, dlq: config.deadLetterQueueUrl },
    // The admin function's own limiter: its breaker hears only this instance's calls.
    breakerState: () => limiter.breaker.state,
  });
  const admin = new AdminService({
    ...base,
    health,
    log: logPort,
    maxQueuedPerUser: config.maxQueuedPerUser,
  });
  return { ...base, admin };
});
