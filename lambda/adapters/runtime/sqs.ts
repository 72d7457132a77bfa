/** The request queue's client, for the roots whose function reads or writes the queue. */
import { SQSClient } from '@aws-sdk/client-sqs';
import type { ChatConfig } from '../../config';
import { RequestQueue } from '../request-queue';
import { emulatorCredentials, requestHandler } from './common';

export function sqsClient(config: ChatConfig): SQSClient {
  return new SQSClient({
    endpoint: config.sqsEndpoint,
    credentials: emulatorCredentials(config),
    maxAttempts: 3,
    requestHandler: requestHandler(),
  });
}

/** The request queue; with its dead-letter queue when the function moves requests there. */
export function requestQueue(config: ChatConfig, options: { readonly deadLetters?: boolean } = {}) {
  return new RequestQueue(
    sqsClient(config),
    config.requestQueueUrl!,
    options.deadLetters ? config.deadLetterQueueUrl : undefined,
  );
}
