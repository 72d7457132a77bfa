import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Event shapes of API Gateway WebSocket APIs with Lambda proxy integrations, as documented by AWS
 * (see test/fixtures/apigw/). Only what API Gateway itself would put there.
 */

export interface ConnectionInfo {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly userAgent?: string;
  authorizer?: Record<string, unknown>;
}

export interface GatewayIdentity {
  readonly apiId: string;
  readonly stage: string;
  readonly domainName: string;
}

/** Connection ids look like AWS's: 12 random bytes in base64, e.g. `L0SM9cOFvHcCIhw=`. */
export function newConnectionId(): string {
  return randomBytes(11).toString('base64');
}

function requestTime(ms: number): string {
  // API Gateway's format: 24/Nov/2026:10:00:00 +0000
  const d = new Date(ms);
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${month}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

function requestContext(
  gw: GatewayIdentity,
  conn: ConnectionInfo,
  routeKey: string,
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
  nowMs: number,
) {
  const requestId = randomBytes(6).toString('base64').replace(/[+/=]/g, 'A');
  return {
    routeKey,
    eventType,
    extendedRequestId: requestId,
    requestTime: requestTime(nowMs),
    messageDirection: 'IN',
    stage: gw.stage,
    connectedAt: conn.connectedAt,
    requestTimeEpoch: nowMs,
    identity: { sourceIp: conn.sourceIp, ...(conn.userAgent ? { userAgent: conn.userAgent } : {}) },
    requestId,
    domainName: gw.domainName,
    connectionId: conn.connectionId,
    apiId: gw.apiId,
    ...(eventType === 'MESSAGE'
      ? { messageId: randomBytes(6).toString('base64').replace(/[+/=]/g, 'B') }
      : {}),
    ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
  };
}

function headerMaps(headers: IncomingHttpHeaders) {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    single[name] = values.join(',');
    multi[name] = values;
  }
  return { headers: single, multiValueHeaders: multi };
}

function queryMaps(url: URL) {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [key, value] of url.searchParams) {
    single[key] = value;
    multi[key] = [...(multi[key] ?? []), value];
  }
  return Object.keys(single).length
    ? { queryStringParameters: single, multiValueQueryStringParameters: multi }
    : {};
}

/** The REQUEST authorizer event of `$connect`. */
export function authorizerEvent(
  gw: GatewayIdentity,
  conn: ConnectionInfo,
  headers: IncomingHttpHeaders,
  url: URL,
  nowMs: number,
) {
  return {
    type: 'REQUEST',
    methodArn: `arn:aws:execute-api:us-east-1:000000000000:${gw.apiId}/${gw.stage}/$connect`,
    ...headerMaps(headers),
    ...queryMaps(url),
    stageVariables: {},
    requestContext: requestContext(gw, { ...conn, authorizer: undefined }, '$connect', 'CONNECT', nowMs),
  };
}

export function connectEvent(
  gw: GatewayIdentity,
  conn: ConnectionInfo,
  headers: IncomingHttpHeaders,
  url: URL,
  nowMs: number,
) {
  return {
    ...headerMaps(headers),
    ...queryMaps(url),
    requestContext: requestContext(gw, conn, '$connect', 'CONNECT', nowMs),
    isBase64Encoded: false,
  };
}

export function messageEvent(
  gw: GatewayIdentity,
  conn: ConnectionInfo,
  routeKey: string,
  body: string,
  nowMs: number,
) {
  return {
    requestContext: requestContext(gw, conn, routeKey, 'MESSAGE', nowMs),
    body,
    isBase64Encoded: false,
  };
}

export function disconnectEvent(
  gw: GatewayIdentity,
  conn: ConnectionInfo,
  code: number,
  reason: string,
  nowMs: number,
) {
  return {
    headers: { Host: gw.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' },
    multiValueHeaders: { Host: [gw.domainName] },
    requestContext: {
      ...requestContext(gw, conn, '$disconnect', 'DISCONNECT', nowMs),
      disconnectStatusCode: code,
      disconnectReason: reason,
    },
    isBase64Encoded: false,
  };
}

/** A Lambda context as the runtime would pass it. */
export function lambdaContext(functionName: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${randomUUID()}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
