import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { ReplyJob } from '../core/reply-job';
import type { ReplyHandoffPort } from '../services/ports';
import { AdapterError } from './errors';

/**
 * Hands admitted requests to the reply runner with an asynchronous invocation (`Event`): Lambda
 * queues the event and answers 202 at once, so the caller (a route function, the processor) never
 * waits for the model. Locally the gateway answers the same Invoke API.
 */
export class LambdaReplyHandoff implements ReplyHandoffPort {
  constructor(
    private readonly client: LambdaClient,
    private readonly functionName: string,
  ) {}

  async handOff(job: ReplyJob): Promise<void> {
    const { StatusCode } = await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(job)),
      }),
    );
    if (StatusCode !== 202) throw new AdapterError(`the reply runner was not invoked (status ${StatusCode})`);
  }
}
