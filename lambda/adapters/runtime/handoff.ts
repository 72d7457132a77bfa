/** Hands admitted requests to the reply runner (locally through the gateway's Invoke API). */
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { ChatConfig } from '../../config';
import { LambdaReplyHandoff } from '../reply-handoff';
import { requestHandler } from './common';

export function replyHandoff(config: ChatConfig): LambdaReplyHandoff {
  const client = new LambdaClient({
    endpoint: config.lambdaEndpoint,
    credentials: config.lambdaEndpoint ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
    maxAttempts: 2,
    requestHandler: requestHandler(),
  });
  return new LambdaReplyHandoff(client, config.replyFunctionName!);
}
