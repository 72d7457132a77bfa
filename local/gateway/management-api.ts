import type { IncomingMessage, ServerResponse } from 'node:http';
import { type GatewayContext, touch } from './context';
import { readBody, sendAwsError, sendJson } from './http-io';
import { MAX_MESSAGE_BYTES } from './options';

/**
 * The `@connections` management API on one connection: `POST` sends a message to it, `GET`
 * describes it, `DELETE` closes it; a closed or unknown connection is `410 Gone`.
 */
export async function manageConnection(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  connectionId: string,
): Promise<void> {
  const conn = ctx.connections.get(connectionId);
  if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
    return sendAwsError(res, 403, 'ForbiddenException', 'Forbidden');
  }
  const body = req.method === 'POST' ? await readBody(req, MAX_MESSAGE_BYTES) : undefined;
  if (body === null) return sendAwsError(res, 413, 'PayloadTooLargeException', 'Payload too large');
  if (!conn || conn.closed)
    return sendAwsError(res, 410, 'GoneException', `Connection ${connectionId} is gone`);
  if (req.method === 'POST') {
    conn.socket.send(body!.toString('utf8'));
    touch(ctx, conn);
    res.writeHead(200).end();
  } else if (req.method === 'GET') {
    // The wire format is camelCase (the SDK maps it to ConnectedAt, Identity.SourceIp, ...).
    sendJson(res, 200, {
      connectedAt: new Date(conn.connectedAt).toISOString(),
      identity: { sourceIp: conn.sourceIp, userAgent: conn.userAgent },
      lastActiveAt: new Date(conn.lastActiveAt).toISOString(),
    });
  } else {
    conn.socket.close(1000, 'Closed by the server');
    res.writeHead(204).end();
  }
}
