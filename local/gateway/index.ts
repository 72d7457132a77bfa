import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { Clock } from '../../lambda/core/clock';
import {
  FUNCTIONS,
  type FunctionDefinition,
  LOCAL_STAGE,
  ROUTES,
  type RouteKey,
} from '../../lambda/core/resources';
import {
  authorizerEvent,
  type ConnectionInfo,
  connectEvent,
  disconnectEvent,
  type GatewayIdentity,
  messageEvent,
  newConnectionId,
} from './events';
import {
  createAsyncInvoker,
  type FunctionSource,
  FunctionTimeoutError,
  invokeFunction,
  type LambdaHandler,
  toLocalFunction,
} from './lambda-runner';

export {
  ASYNC_RETRY_DELAYS_MS,
  DEFAULT_FUNCTION_TIMEOUT_MS,
  type FunctionSource,
  FunctionTimeoutError,
  type LambdaHandler,
  type LocalAsyncInvoke,
  type LocalFunction,
} from './lambda-runner';

/**
 * The functions behind the API. Each runs under its Timeout (a bare handler under Lambda's
 * default, 3 s): see `local/gateway/lambda-runner.ts`.
 */
export interface GatewayHandlers {
  readonly authorizer: FunctionSource;
  readonly routes: Partial<Record<RouteKey, FunctionSource>>;
  /** Functions answering the Lambda Invoke API, by name. */
  readonly functions?: Readonly<Record<string, FunctionSource>>;
}

export interface GatewayOptions {
  /** 0 picks a free port. @default 3001 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 'local' */
  readonly stage?: string;
  /** Static files served at `/` (the chat page). */
  readonly staticDir?: string;
  /** API Gateway closes idle connections after 10 minutes. @default 600_000 */
  readonly idleTimeoutMs?: number;
  /**
   * How long a route integration may run before the client gets `Endpoint request timed out`
   * (a fixed quota of WebSocket APIs). @default 29_000
   */
  readonly integrationTimeoutMs?: number;
  /**
   * Waits before the retries of a failed `Event` invocation (Lambda: about a minute, then two).
   * @default [60_000, 120_000]
   */
  readonly asyncRetryDelaysMs?: readonly number[];
  /** The clock `Event` ages are measured on (max event age). @default Date.now */
  readonly asyncClock?: () => number;
  readonly handlers?: GatewayHandlers;
  readonly log?: (message: string) => void;
  /**
   * The stack's clock: the instants the gateway puts in events (`requestTimeEpoch`,
   * `connectedAt`) and in `@connections` answers. Idle and integration timeouts are real
   * durations and stay on timers. @default Date.now
   */
  readonly clock?: Clock;
  /** Local-only HTTP routes (`/local-stack/...`: `/local/` is the stage's), e.g. the stack clock's. */
  readonly localRoutes?: Readonly<Record<string, LocalRoute>>;
}

/** A local-only HTTP route: its answer as a status and a JSON body. */
export type LocalRoute = (request: {
  readonly method: string;
  readonly url: URL;
  readonly body: string;
}) => Promise<{ readonly status: number; readonly body: unknown }>;

export interface Gateway {
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** The `@connections` endpoint, stage included, as the SDK client wants it. */
  readonly managementEndpoint: string;
  /** Sets the handlers (they may load only after the gateway's address is known). */
  attach(handlers: GatewayHandlers): void;
  /** Resolves when no asynchronous (`Event`) invocation is running or waiting for a retry. */
  asyncIdle(): Promise<void>;
  /** Is an asynchronous invocation running or waiting for a retry now? */
  asyncBusy(): boolean;
  stop(): Promise<void>;
}

/** Largest payload of an asynchronous invocation (the Invoke API reference: 1 MB). */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;

/** API Gateway's WebSocket quotas: frames up to 32 KB, messages up to 128 KB. */
export const MAX_FRAME_BYTES = 32 * 1024;
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** API Gateway's integration timeout for WebSocket routes: 29 s, not adjustable upwards. */
export const INTEGRATION_TIMEOUT_MS = 29_000;

interface LiveConnection extends ConnectionInfo {
  readonly socket: WebSocket;
  lastActiveAt: number;
  idleTimer?: NodeJS.Timeout;
  closed: boolean;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * A local stand-in for an API Gateway WebSocket API (docs/local.md): the `$connect` authorizer and
 * route, route selection on `$request.body.action`, `$disconnect`, the `@connections` management
 * API, and the Lambda Invoke API for the admin function, all on one port of 127.0.0.1.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const stage = options.stage ?? LOCAL_STAGE;
  const host = options.host ?? '127.0.0.1';
  const idleTimeoutMs = options.idleTimeoutMs ?? 600_000;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS;
  const log = options.log ?? (() => undefined);
  const clock = options.clock ?? Date.now;
  let handlers = options.handlers;
  const connections = new Map<string, LiveConnection>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  const server: Server = createServer((req, res) => {
    handleHttp(req, res).catch((err) => {
      log(`http error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
    });
  });
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 3001, host, () => resolvePromise());
  });
  const port = (server.address() as AddressInfo).port;
  const gw: GatewayIdentity = { apiId: 'local', stage, domainName: `localhost:${port}` };

  const invoke = (name: string, source: FunctionSource, event: unknown): Promise<unknown> =>
    invokeFunction(toLocalFunction(source, name), event);
  // `Event` invocations: Lambda's asynchronous queue, retries, maximum age and destinations.
  const asyncInvoker = createAsyncInvoker({
    retryDelaysMs: options.asyncRetryDelaysMs,
    now: options.asyncClock,
    log,
  });
  const invokeAsync = (name: string, source: FunctionSource, event: unknown): void =>
    asyncInvoker.invoke(toLocalFunction(source, name), event);

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    upgrade(req, socket, head).catch((err) => {
      log(`upgrade error: ${(err as Error).message}`);
      refuse(socket, 500);
    });
  });

  async function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${gw.domainName}`);
    if (url.pathname !== `/${stage}` && url.pathname !== `/${stage}/`) return refuse(socket, 404);
    if (!handlers) return refuse(socket, 503);
    const conn: ConnectionInfo = {
      connectionId: newConnectionId(),
      connectedAt: clock(),
      sourceIp: normalizeIp(req.socket.remoteAddress),
      userAgent: req.headers['user-agent'],
    };
    // The identity source is the `token` query parameter: without it API Gateway answers 401
    // and does not call the authorizer.
    if (!url.searchParams.get('token')) return refuse(socket, 401);
    let policy: {
      principalId?: string;
      policyDocument?: { Statement?: { Effect?: string }[] };
      context?: Record<string, unknown>;
    };
    try {
      policy = (await invoke(
        'authorizer',
        handlers.authorizer,
        authorizerEvent(gw, conn, req.headers, url, clock()),
      )) as typeof policy;
    } catch (err) {
      return refuse(socket, (err as Error).message === 'Unauthorized' ? 401 : 500);
    }
    const allowed =
      policy?.policyDocument?.Statement?.length &&
      policy.policyDocument.Statement.every((s) => s.Effect === 'Allow');
    if (!allowed) return refuse(socket, 403);
    conn.authorizer = { ...(policy.context ?? {}), principalId: policy.principalId };
    const connectHandler = handlers.routes.$connect;
    if (connectHandler) {
      let result: { statusCode?: number; headers?: Record<string, string> } | undefined;
      try {
        result = (await invoke(
          '$connect',
          connectHandler,
          connectEvent(gw, conn, req.headers, url, clock()),
        )) as typeof result;
      } catch {
        return refuse(socket, 500);
      }
      const status = result?.statusCode ?? 200;
      if (status < 200 || status > 299) return refuse(socket, status, result?.headers);
    }
    wss.handleUpgrade(req, socket, head, (ws) => open(ws, conn));
  }

  function open(socket: WebSocket, info: ConnectionInfo): void {
    const conn: LiveConnection = { ...info, socket, lastActiveAt: clock(), closed: false };
    connections.set(conn.connectionId, conn);
    touch(conn);
    socket.on('message', (data: RawData, isBinary: boolean) => {
      touch(conn);
      if (isBinary) return socket.close(1003, 'Binary frames are not supported');
      const body = data.toString();
      const routeKey = selectRoute(body);
      const handler =
        handlers && Object.hasOwn(handlers.routes, routeKey) ? handlers.routes[routeKey] : undefined;
      if (!handler) return;
      integrate(conn, routeKey, handler, messageEvent(gw, conn, routeKey, body, clock()));
    });
    socket.on('close', (code: number, reason: Buffer) => {
      conn.closed = true;
      clearTimeout(conn.idleTimer);
      connections.delete(conn.connectionId);
      const handler = handlers?.routes.$disconnect;
      if (handler) {
        invoke('$disconnect', handler, disconnectEvent(gw, conn, code, reason.toString(), clock())).catch(
          (err) => log(`$disconnect failed: ${(err as Error).message}`),
        );
      }
    });
    socket.on('error', (err) => log(`socket error: ${err.message}`));
  }

  /**
   * Runs a route's integration as API Gateway does: its return value is ignored; a function error
   * (a throw, or its Timeout passing first) gets `Internal server error`, and an integration still
   * running after the integration timeout gets `Endpoint request timed out` while the function
   * runs on to its own Timeout.
   */
  async function integrate(
    conn: LiveConnection,
    routeKey: RouteKey,
    source: FunctionSource,
    event: ReturnType<typeof messageEvent>,
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const integrationTimedOut = new Promise<'timed out'>((resolvePromise) => {
      timer = setTimeout(() => resolvePromise('timed out'), integrationTimeoutMs);
      timer.unref();
    });
    const invocation = invoke(routeKey, source, event).then(
      () => 'done' as const,
      (err: Error) => err,
    );
    const outcome = await Promise.race([invocation, integrationTimedOut]);
    clearTimeout(timer);
    if (outcome === 'done') return;
    if (outcome === 'timed out') log(`route ${routeKey}: integration timed out`);
    else log(`route ${routeKey} failed: ${outcome.message}`);
    const message = outcome === 'timed out' ? 'Endpoint request timed out' : 'Internal server error';
    if (!conn.closed)
      conn.socket.send(gatewayErrorFrame(message, conn.connectionId, event.requestContext.requestId));
  }

  function touch(conn: LiveConnection): void {
    conn.lastActiveAt = clock();
    clearTimeout(conn.idleTimer);
    conn.idleTimer = setTimeout(() => conn.socket.close(1001, 'Going away'), idleTimeoutMs);
    conn.idleTimer.unref();
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${gw.domainName}`);
    const management = new RegExp(`^/${stage}/@connections/([^/]+)$`).exec(url.pathname);
    if (management) return manageConnection(req, res, decodeURIComponent(management[1]!));
    // API Gateway answers any other path of the stage with 403, not 404.
    if (url.pathname.startsWith(`/${stage}/`))
      return sendAwsError(res, 403, 'ForbiddenException', 'Forbidden');
    const invocation = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
    if (invocation && req.method === 'POST') return serveInvoke(req, res, decodeURIComponent(invocation[1]!));
    if (req.method === 'GET' && url.pathname === '/health') return serveHealth(res);
    const localRoute = options.localRoutes?.[url.pathname];
    if (url.pathname.startsWith('/local-stack/') && localRoute) return serveLocal(req, res, url, localRoute);
    if (req.method === 'GET' && options.staticDir) return serveStatic(res, options.staticDir, url.pathname);
    sendJson(res, 404, { message: 'Not Found' });
  }

  async function manageConnection(
    req: IncomingMessage,
    res: ServerResponse,
    connectionId: string,
  ): Promise<void> {
    const conn = connections.get(connectionId);
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      return sendAwsError(res, 403, 'ForbiddenException', 'Forbidden');
    }
    const body = req.method === 'POST' ? await readBody(req, MAX_MESSAGE_BYTES) : undefined;
    if (body === null) return sendAwsError(res, 413, 'PayloadTooLargeException', 'Payload too large');
    if (!conn || conn.closed)
      return sendAwsError(res, 410, 'GoneException', `Connection ${connectionId} is gone`);
    if (req.method === 'POST') {
      conn.socket.send(body!.toString('utf8'));
      touch(conn);
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

  async function serveInvoke(req: IncomingMessage, res: ServerResponse, nameOrArn: string): Promise<void> {
    const name = nameOrArn.split(':').pop() ?? nameOrArn;
    const handler = handlers?.functions?.[name];
    if (!handler) return sendAwsError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
    const isEvent = String(req.headers['x-amz-invocation-type'] ?? '').toLowerCase() === 'event';
    const raw = await readBody(req, isEvent ? MAX_ASYNC_PAYLOAD_BYTES : 6 * 1024 * 1024);
    if (raw === null) return sendAwsError(res, 413, 'RequestTooLargeException', 'Request too large');
    let event: unknown;
    try {
      event = raw.length ? JSON.parse(raw.toString('utf8')) : {};
    } catch {
      return sendAwsError(
        res,
        400,
        'InvalidRequestContentException',
        'Could not parse request body into json',
      );
    }
    if (isEvent) {
      invokeAsync(name, handler, event);
      res.writeHead(202, { 'Content-Length': 0 }).end();
      return;
    }
    const unhandled = { 'X-Amz-Function-Error': 'Unhandled', 'X-Amz-Executed-Version': '$LATEST' };
    try {
      const result = await invoke(name, handler, event);
      sendJson(res, 200, result ?? null, { 'X-Amz-Executed-Version': '$LATEST' });
    } catch (err) {
      const error = err as Error;
      // A timeout is reported by Lambda itself: its error type and message, no trace.
      const payload =
        error instanceof FunctionTimeoutError
          ? { errorType: error.errorType, errorMessage: error.message }
          : { errorType: error.name, errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
      sendJson(res, 200, payload, unhandled);
    }
  }

  /**
   * `GET /health`: the admin function's `health` report (invoked as the Invoke API would), 200
   * when every table and queue answers, 503 otherwise. Local only: API Gateway has no such route.
   */
  async function serveHealth(res: ServerResponse): Promise<void> {
    const admin = handlers?.functions?.[FUNCTIONS.admin.id];
    if (!admin) return sendJson(res, 503, { healthy: false, error: 'the admin function is not loaded' });
    try {
      const response = (await invoke(FUNCTIONS.admin.id, admin, { operation: 'health' })) as {
        ok?: boolean;
        result?: { healthy?: boolean };
      };
      const report = response?.ok ? response.result : undefined;
      if (!report) return sendJson(res, 503, { healthy: false, error: 'unexpected answer', response });
      sendJson(res, report.healthy === true ? 200 : 503, report);
    } catch (err) {
      sendJson(res, 503, { healthy: false, error: `${(err as Error).name}: ${(err as Error).message}` });
    }
  }

  /** A local-only route: the body read (small), the answer as JSON. */
  async function serveLocal(req: IncomingMessage, res: ServerResponse, url: URL, route: LocalRoute) {
    const body = await readBody(req, 64 * 1024);
    if (body === null) return sendJson(res, 413, { message: 'Payload too large' });
    const answer = await route({ method: req.method ?? 'GET', url, body: body.toString('utf8') });
    sendJson(res, answer.status, answer.body);
  }

  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}/${stage}`,
    managementEndpoint: `${httpUrl}/${stage}`,
    attach: (next) => {
      handlers = next;
    },
    asyncIdle: () => asyncInvoker.idle(),
    asyncBusy: () => asyncInvoker.busy(),
    stop: async () => {
      for (const conn of connections.values()) conn.socket.terminate();
      wss.close();
      await new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
    },
  };
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

/** Loads a handler by its Lambda entry point, as the Lambda runtime would. */
export async function loadHandler(fn: FunctionDefinition): Promise<LambdaHandler> {
  const root = resolve(new URL('../..', import.meta.url).pathname);
  const module = (await import(pathToFileURL(join(root, fn.entry)).href)) as Record<string, unknown>;
  const handler = module[fn.handler];
  if (typeof handler !== 'function') throw new Error(`${fn.entry} does not export ${fn.handler}`);
  return handler as LambdaHandler;
}

function refuse(socket: Socket, status: number, headers: Record<string, string> = {}): void {
  const reason =
    {
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      429: 'Too Many Requests',
      500: 'Internal Server Error',
    }[status] ?? 'Error';
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: 0\r\nConnection: close\r\n${extra}\r\n`);
}

function normalizeIp(address: string | undefined): string {
  if (!address) return '127.0.0.1';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolvePromise(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Errors as AWS services send them: the SDK reads the type from `x-amzn-ErrorType`. */
function sendAwsError(res: ServerResponse, status: number, type: string, message: string): void {
  sendJson(res, status, { message, __type: type }, { 'x-amzn-ErrorType': type });
}

function serveStatic(res: ServerResponse, dir: string, pathname: string): void {
  const root = resolve(dir);
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  const file = resolve(root, relative === '' ? 'index.html' : relative);
  if (file !== root && !file.startsWith(root + sep)) {
    sendJson(res, 404, { message: 'Not Found' });
    return;
  }
  try {
    const stats = statSync(file);
    const target = stats.isDirectory() ? join(file, 'index.html') : file;
    const size = statSync(target).size;
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(target)] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    createReadStream(target).pipe(res);
  } catch {
    sendJson(res, 404, { message: 'Not Found' });
  }
}
