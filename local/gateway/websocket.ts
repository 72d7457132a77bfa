import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { ROUTES, type RouteKey } from '../../lambda/core/resources';
import { type GatewayContext, type LiveConnection, touch } from './context';
import {
  authorizerEvent,
  type ConnectionInfo,
  connectEvent,
  disconnectEvent,
  messageEvent,
  newConnectionId,
} from './events';
import type { FunctionSource } from './lambda-runner';
import { MAX_FRAME_BYTES } from './options';

/** What the authorizer function answers: an IAM policy, the principal and a context. */
interface AuthorizerPolicy {
  principalId?: string;
  policyDocument?: { Statement?: { Effect?: string }[] };
  context?: Record<string, unknown>;
}

/**
 * The WebSocket side of the API on `server`: upgrades on the stage's path go through the
 * authorizer and `$connect`, frames are routed on `$request.body.action`, closes run `$disconnect`.
 * Returns how to close every connection.
 */
export function attachWebSockets(server: Server, ctx: GatewayContext): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgrade(ctx, req, socket, async (conn) => {
      wss.handleUpgrade(req, socket, head, (ws) => open(ctx, ws, conn));
    }).catch((err) => {
      ctx.log(`upgrade error: ${(err as Error).message}`);
      refuse(socket, 500);
    });
  });
  return {
    close: () => {
      for (const conn of ctx.connections.values()) conn.socket.terminate();
      wss.close();
    },
  };
}

/** `$connect` as API Gateway runs it: token present, authorizer allows, the route answers 2xx. */
async function upgrade(
  ctx: GatewayContext,
  req: IncomingMessage,
  socket: Socket,
  accept: (conn: ConnectionInfo) => Promise<void>,
): Promise<void> {
  const url = new URL(req.url ?? '/', `http://${ctx.gw.domainName}`);
  if (url.pathname !== `/${ctx.stage}` && url.pathname !== `/${ctx.stage}/`) return refuse(socket, 404);
  const handlers = ctx.handlers();
  if (!handlers) return refuse(socket, 503);
  const conn: ConnectionInfo = {
    connectionId: newConnectionId(),
    connectedAt: ctx.clock(),
    sourceIp: normalizeIp(req.socket.remoteAddress),
    userAgent: req.headers['user-agent'],
  };
  // The identity source is the `token` query parameter: without it API Gateway answers 401
  // and does not call the authorizer.
  if (!url.searchParams.get('token')) return refuse(socket, 401);
  const authorized = await authorize(ctx, handlers.authorizer, req, url, conn);
  if (authorized !== 'allowed') return refuse(socket, authorized);
  const connectHandler = handlers.routes.$connect;
  if (connectHandler) {
    let result: { statusCode?: number; headers?: Record<string, string> } | undefined;
    try {
      const event = connectEvent(ctx.gw, conn, req.headers, url, ctx.clock());
      result = (await ctx.invoke('$connect', connectHandler, event)) as typeof result;
    } catch (err) {
      ctx.log(`route $connect failed: ${(err as Error).message}`);
      return refuse(socket, 500);
    }
    const status = result?.statusCode ?? 200;
    if (status < 200 || status > 299) return refuse(socket, status, result?.headers);
  }
  await accept(conn);
}

/**
 * The authorizer's verdict: allowed (its context and principal put on the connection), or the
 * status API Gateway refuses with (401 `Unauthorized` thrown, 403 a Deny, 500 any other fault).
 */
async function authorize(
  ctx: GatewayContext,
  authorizer: FunctionSource,
  req: IncomingMessage,
  url: URL,
  conn: ConnectionInfo,
): Promise<'allowed' | number> {
  let policy: AuthorizerPolicy;
  try {
    const event = authorizerEvent(ctx.gw, conn, req.headers, url, ctx.clock());
    policy = (await ctx.invoke('authorizer', authorizer, event)) as AuthorizerPolicy;
  } catch (err) {
    // `Unauthorized` is the authorizer's answer to a bad token; anything else is its failure.
    if ((err as Error).message === 'Unauthorized') return 401;
    ctx.log(`authorizer failed: ${(err as Error).message}`);
    return 500;
  }
  const allowed =
    policy?.policyDocument?.Statement?.length &&
    policy.policyDocument.Statement.every((s) => s.Effect === 'Allow');
  if (!allowed) return 403;
  conn.authorizer = { ...(policy.context ?? {}), principalId: policy.principalId };
  return 'allowed';
}

/** An accepted connection: its frames routed to their integrations, its close to `$disconnect`. */
function open(ctx: GatewayContext, socket: WebSocket, info: ConnectionInfo): void {
  const conn: LiveConnection = { ...info, socket, lastActiveAt: ctx.clock(), closed: false };
  ctx.connections.set(conn.connectionId, conn);
  touch(ctx, conn);
  socket.on('message', (data: RawData, isBinary: boolean) => {
    touch(ctx, conn);
    if (isBinary) return socket.close(1003, 'Binary frames are not supported');
    const body = data.toString();
    const routeKey = selectRoute(body);
    const handlers = ctx.handlers();
    const handler =
      handlers && Object.hasOwn(handlers.routes, routeKey) ? handlers.routes[routeKey] : undefined;
    if (!handler) return;
    integrate(ctx, conn, routeKey, handler, messageEvent(ctx.gw, conn, routeKey, body, ctx.clock()));
  });
  socket.on('close', (code: number, reason: Buffer) => {
    conn.closed = true;
    clearTimeout(conn.idleTimer);
    ctx.connections.delete(conn.connectionId);
    const handler = ctx.handlers()?.routes.$disconnect;
    if (!handler) return;
    const event = disconnectEvent(ctx.gw, conn, code, reason.toString(), ctx.clock());
    ctx
      .invoke('$disconnect', handler, event)
      .catch((err) => ctx.log(`$disconnect failed: ${(err as Error).message}`));
  });
  socket.on('error', (err) => ctx.log(`socket error: ${err.message}`));
}

/**
 * Runs a route's integration as API Gateway does: its return value is ignored; a function error
 * (a throw, or its Timeout passing first) gets `Internal server error`, and an integration still
 * running after the integration timeout gets `Endpoint request timed out` while the function
 * runs on to its own Timeout.
 */
async function integrate(
  ctx: GatewayContext,
  conn: LiveConnection,
  routeKey: RouteKey,
  source: FunctionSource,
  event: ReturnType<typeof messageEvent>,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const integrationTimedOut = new Promise<'timed out'>((resolvePromise) => {
    timer = setTimeout(() => resolvePromise('timed out'), ctx.integrationTimeoutMs);
    timer.unref();
  });
  const invocation = ctx.invoke(routeKey, source, event).then(
    () => 'done' as const,
    (err: Error) => err,
  );
  const outcome = await Promise.race([invocation, integrationTimedOut]);
  clearTimeout(timer);
  if (outcome === 'done') return;
  if (outcome === 'timed out') ctx.log(`route ${routeKey}: integration timed out`);
  else ctx.log(`route ${routeKey} failed: ${outcome.message}`);
  const message = outcome === 'timed out' ? 'Endpoint request timed out' : 'Internal server error';
  if (!conn.closed)
    conn.socket.send(gatewayErrorFrame(message, conn.connectionId, event.requestContext.requestId));
}

/** `$request.body.action`: the action of a JSON object if it names a route, else `$default`. */
export function selectRoute(body: string): RouteKey {
  try {
    const value = JSON.parse(body) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const action = (value as { action?: unknown }).action;
      // Own keys only: `constructor` or `__proto__` must not select anything.
      if (typeof action === 'string' && Object.hasOwn(ROUTES, action) && !action.startsWith('$')) {
        return action as RouteKey;
      }
    }
  } catch {
    // Not JSON: the default route.
  }
  return '$default';
}

/**
 * API Gateway's own error frame, spaced exactly as the service writes it, e.g.
 * `{"message": "Endpoint request timed out", "connectionId":"L0SM9cOFvHcCIhw=", "requestId":"L0SM9FUOvHcFxNw="}`.
 */
export function gatewayErrorFrame(message: string, connectionId: string, requestId: string): string {
  const json = JSON.stringify;
  return `{"message": ${json(message)}, "connectionId":${json(connectionId)}, "requestId":${json(requestId)}}`;
}

const REASONS: Readonly<Record<number, string>> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

/** An upgrade refused with a bare HTTP answer, as API Gateway refuses a handshake. */
function refuse(socket: Socket, status: number, headers: Record<string, string> = {}): void {
  const reason = REASONS[status] ?? 'Error';
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 0\r\nConnection: close\r\n${extra}\r\n`);
}

function normalizeIp(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
