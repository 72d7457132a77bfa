import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { fitMessage } from '../core/protocol';
import type { ConnectionSender, OutgoingMessage } from '../services/ports';
import { AdapterError } from './errors';

export class NotifierError extends AdapterError {}

/**
 * Posts server messages to WebSocket connections through the `@connections` management API. A
 * `GoneException` is an answer, not a fault: the client left, so the record is dropped and the
 * caller hears `gone` and may try the user's other connections.
 */
export class Notifier implements ConnectionSender {
  private readonly client: ApiGatewayManagementApiClient;
  private readonly registry?: { remove(connectionId: string): Promise<void> };

  constructor(options: {
    endpoint?: string;
    /** Placeholder keys for the local gateway; in AWS the function's role. */
    credentials?: { accessKeyId: string; secretAccessKey: string };
    client?: ApiGatewayManagementApiClient;
    registry?: { remove(connectionId: string): Promise<void> };
  }) {
    if (!options.client && !options.endpoint)
      throw new AdapterError('Notifier needs an endpoint or a client');
    this.client =
      options.client ??
      new ApiGatewayManagementApiClient({ endpoint: options.endpoint, credentials: options.credentials });
    this.registry = options.registry;
  }

  async send(connectionId: string, message: OutgoingMessage): Promise<'sent' | 'gone'> {
    try {
      await this.client.send(
        new PostToConnectionCommand({
          ConnectionId: connectionId,
          // Every message fits API Gateway's 128 KB (a huge message_complete leaves its text out).
          Data: Buffer.from(JSON.stringify(fitMessage(message))),
        }),
      );
      return 'sent';
    } catch (err) {
      if (err instanceof GoneException) {
        await this.registry?.remove(connectionId);
        return 'gone';
      }
      throw new NotifierError(`posting to connection ${connectionId} failed`, { cause: err });
    }
  }

  /**
   * Closes a connection from the server side (`DELETE @connections/{id}`); API Gateway then runs
   * `$disconnect`, which drops its record. A connection already gone is closed.
   */
  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (err) {
      if (err instanceof GoneException) return;
      throw new NotifierError(`closing connection ${connectionId} failed`, { cause: err });
    }
  }
}
