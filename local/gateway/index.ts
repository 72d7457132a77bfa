import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type FunctionDefinition, LOCAL_STAGE } from '../../lambda/core/resources';
import type { GatewayContext, LiveConnection } from './context';
import { httpListener } from './http';
import { createAsyncInvoker, invokeFunction, type LambdaHandler, toLocalFunction } from './lambda-runner';
import { type Gateway, type GatewayHandlers, type GatewayOptions, INTEGRATION_TIMEOUT_MS } from './options';
import { attachWebSockets } from './websocket';

export {
  ASYNC_RETRY_DELAYS_MS,
  DEFAULT_FUNCTION_TIMEOUT_MS,
  type FunctionSource,
  FunctionTimeoutError,
  type LambdaHandler,
  type LocalAsyncInvoke,
  type LocalFunction,
} from './lambda-runner';
export {
  type Gateway,
  type GatewayHandlers,
  type GatewayOptions,
  INTEGRATION_TIMEOUT_MS,
  type LocalRoute,
  MAX_ASYNC_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
} from './options';
export { gatewayErrorFrame, selectRoute } from './websocket';

/**
 * A local stand-in for an API Gateway WebSocket API (docs/local.md): the `$connect` authorizer and
 * route, route selection on `$request.body.action`, `$disconnect`, the `@connections` management
 * API, and the Lambda Invoke API for the admin function, all on one port of 127.0.0.1. Its parts:
 * websocket.ts, management-api.ts, invoke-api.ts, static.ts, http.ts.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const server: Server = createServer();
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 3001, options.host ?? '127.0.0.1', () => resolvePromise());
  });
  const port = (server.address() as AddressInfo).port;
  let handlers = options.handlers;
  const { ctx, asyncInvoker } = gatewayContext(options, port, () => handlers);
  server.on('request', httpListener(ctx, options));
  const sockets = attachWebSockets(server, ctx);
  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}/${ctx.stage}`,
    managementEndpoint: `${httpUrl}/${ctx.stage}`,
    attach: (next) => {
      handlers = next;
    },
    asyncIdle: () => asyncInvoker.idle(),
    asyncBusy: () => asyncInvoker.busy(),
    stop: async () => {
      sockets.close();
      await new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
    },
  };
}

/** The options resolved to their defaults, the invokers, and the connections: what the parts share. */
function gatewayContext(
  options: GatewayOptions,
  port: number,
  handlers: () => GatewayHandlers | undefined,
): { ctx: GatewayContext; asyncInvoker: ReturnType<typeof createAsyncInvoker> } {
  const stage = options.stage ?? LOCAL_STAGE;
  const log = options.log ?? (() => undefined);
  // `Event` invocations: Lambda's asynchronous queue, retries, maximum age and destinations.
  const asyncInvoker = createAsyncInvoker({
    retryDelaysMs: options.asyncRetryDelaysMs,
    now: options.asyncClock,
    log,
  });
  const ctx: GatewayContext = {
    stage,
    gw: { apiId: 'local', stage, domainName: `localhost:${port}` },
    clock: options.clock ?? Date.now,
    log,
    idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
    integrationTimeoutMs: options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS,
    connections: new Map<string, LiveConnection>(),
    handlers,
    invoke: (name, source, event) => invokeFunction(toLocalFunction(source, name), event),
    invokeAsync: (name, source, event) => asyncInvoker.invoke(toLocalFunction(source, name), event),
  };
  return { ctx, asyncInvoker };
}

/** Loads a handler by its Lambda entry point, as the Lambda runtime would. */
export async function loadHandler(fn: FunctionDefinition): Promise<LambdaHandler> {
  const root = resolve(new URL('../..', import.meta.url).pathname);
  const module = (await import(pathToFileURL(join(root, fn.entry)).href)) as Record<string, unknown>;
  const handler = module[fn.handler];
  if (typeof handler !== 'function') throw new Error(`${fn.entry} does not export ${fn.handler}`);
  return handler as LambdaHandler;
}
