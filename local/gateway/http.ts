import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayContext } from './context';
import { readBody, sendAwsError, sendJson } from './http-io';
import { serveHealth, serveInvoke } from './invoke-api';
import { manageConnection } from './management-api';
import type { LocalRoute } from './options';
import { serveStatic } from './static';

/** What the HTTP side serves besides the APIs. */
export interface HttpRoutes {
  /** Static files served at `/` (the chat page). */
  readonly staticDir?: string;
  /** Local-only routes (`/local-stack/...`). */
  readonly localRoutes?: Readonly<Record<string, LocalRoute>>;
}

/** The gateway's HTTP requests: `@connections`, the Invoke API, `/health`, local routes, the page. */
export function httpListener(
  ctx: GatewayContext,
  routes: HttpRoutes,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(ctx, routes, req, res).catch((err) => {
      ctx.log(`http error: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
    });
  };
}

async function route(
  ctx: GatewayContext,
  routes: HttpRoutes,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', `http://${ctx.gw.domainName}`);
  const management = new RegExp(`^/${ctx.stage}/@connections/([^/]+)$`).exec(url.pathname);
  if (management) return manageConnection(ctx, req, res, decodeURIComponent(management[1]!));
  // API Gateway answers any other path of the stage with 403, not 404.
  if (url.pathname.startsWith(`/${ctx.stage}/`))
    return sendAwsError(res, 403, 'ForbiddenException', 'Forbidden');
  const invocation = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
  if (invocation && req.method === 'POST')
    return serveInvoke(ctx, req, res, decodeURIComponent(invocation[1]!));
  if (req.method === 'GET' && url.pathname === '/health') return serveHealth(ctx, res);
  const localRoute = routes.localRoutes?.[url.pathname];
  if (url.pathname.startsWith('/local-stack/') && localRoute) return serveLocal(req, res, url, localRoute);
  if (req.method === 'GET' && routes.staticDir) return serveStatic(res, routes.staticDir, url.pathname);
  sendJson(res, 404, { message: 'Not Found' });
}

/** A local-only route: the body read (small), the answer as JSON. */
async function serveLocal(req: IncomingMessage, res: ServerResponse, url: URL, route: LocalRoute) {
  const body = await readBody(req, 64 * 1024);
  if (body === null) return sendJson(res, 413, { message: 'Payload too large' });
  const answer = await route({ method: req.method ?? 'GET', url, body: body.toString('utf8') });
  sendJson(res, answer.status, answer.body);
}
