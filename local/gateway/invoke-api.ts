import type { IncomingMessage, ServerResponse } from 'node:http';
import { FUNCTIONS } from '../../lambda/core/resources';
import type { GatewayContext } from './context';
import { readBody, sendAwsError, sendJson } from './http-io';
import { FunctionTimeoutError } from './lambda-runner';
import { MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES } from './options';

/**
 * The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`): `Event` invocations
 * are queued (202), `RequestResponse` ones answer the function's result or its error as Lambda
 * reports it (`X-Amz-Function-Error: Unhandled`).
 */
export async function serveInvoke(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  nameOrArn: string,
): Promise<void> {
  const name = nameOrArn.split(':').pop() ?? nameOrArn;
  const handler = ctx.handlers()?.functions?.[name];
  if (!handler) return sendAwsError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
  const isEvent = String(req.headers['x-amz-invocation-type'] ?? '').toLowerCase() === 'event';
  const raw = await readBody(req, isEvent ? MAX_ASYNC_PAYLOAD_BYTES : MAX_SYNC_PAYLOAD_BYTES);
  if (raw === null) return sendAwsError(res, 413, 'RequestTooLargeException', 'Request too large');
  let event: unknown;
  try {
    event = raw.length ? JSON.parse(raw.toString('utf8')) : {};
  } catch {
    const message = 'Could not parse request body into json';
    return sendAwsError(res, 400, 'InvalidRequestContentException', message);
  }
  if (isEvent) {
    ctx.invokeAsync(name, handler, event);
    res.writeHead(202, { 'Content-Length': 0 }).end();
    return;
  }
  try {
    const result = await ctx.invoke(name, handler, event);
    sendJson(res, 200, result ?? null, { 'X-Amz-Executed-Version': '$LATEST' });
  } catch (err) {
    const unhandled = { 'X-Amz-Function-Error': 'Unhandled', 'X-Amz-Executed-Version': '$LATEST' };
    sendJson(res, 200, functionErrorPayload(err as Error), unhandled);
  }
}

/** A function's error as Lambda reports it; a timeout is Lambda's own: its type and message, no trace. */
function functionErrorPayload(error: Error): Record<string, unknown> {
  if (error instanceof FunctionTimeoutError)
    return { errorType: error.errorType, errorMessage: error.message };
  return { errorType: error.name, errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
}

/**
 * `GET /health`: the admin function's `health` report (invoked as the Invoke API would), 200
 * when every table and queue answers, 503 otherwise. Local only: API Gateway has no such route.
 */
export async function serveHealth(ctx: GatewayContext, res: ServerResponse): Promise<void> {
  const admin = ctx.handlers()?.functions?.[FUNCTIONS.admin.id];
  if (!admin) return sendJson(res, 503, { healthy: false, error: 'the admin function is not loaded' });
  try {
    const response = (await ctx.invoke(FUNCTIONS.admin.id, admin, { operation: 'health' })) as {
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
