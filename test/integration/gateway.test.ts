import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws-clients';
import { type Gateway, gatewayErrorFrame, startGateway } from '../../local/gateway';

interface SeenEvent {
  requestContext: {
    routeKey: string;
    connectionId: string;
    requestId: string;
    authorizer?: Record<string, unknown>;
  };
  body?: string;
}

/** How a slow function spends its time (the tests themselves wait for events, never for time). */
const work = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const seen: SeenEvent[] = [];
const record = async (event: never) => {
  seen.push(event as SeenEvent);
  return { statusCode: 200 };
};

/** Token decides the authorizer's answer, so each refusal path is reachable from the client. */
async function authorizer(event: never) {
  const token = (event as { queryStringParameters: { token: string } }).queryStringParameters.token;
  if (token === 'bad') throw new Error('Unauthorized');
  if (token === 'boom') throw new Error('database down');
  const effect = token === 'deny' ? 'Deny' : 'Allow';
  return {
    principalId: token,
    policyDocument: { Version: '2012-10-17', Statement: [{ Effect: effect, Action: 'execute-api:Invoke' }] },
    context: { userId: token },
  };
}

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway({
    port: 0,
    idleTimeoutMs: 60_000,
    log: () => {},
    handlers: {
      authorizer,
      routes: {
        $connect: async (event: never) => {
          const q = (event as { queryStringParameters: { token: string } }).queryStringParameters;
          return { statusCode: q.token === 'busy' ? 429 : 200 };
        },
        ping: record,
        $default: record,
        $disconnect: record,
      },
      functions: {
        admin: async (event: never) => ({ echoed: event }),
        broken: async () => {
          throw new TypeError('nope');
        },
        sleepy: {
          name: 'sleepy',
          timeoutMs: 200,
          handler: async () => {
            await work(1000);
            return 'too late';
          },
        },
      },
    },
  });
});

afterAll(async () => {
  await gw.stop();
});

/** Resolves with the HTTP status of a refused handshake, or 101 when it opens. */
function handshakeStatus(query: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.wsUrl}${query}`);
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', reject);
  });
}

function connect(token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.wsUrl}?token=${token}`);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

async function waitFor<T>(find: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const management = () =>
  new ApiGatewayManagementApiClient({
    endpoint: gw.managementEndpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });

describe('the $connect handshake', () => {
  it('refuses a missing token with 401, Unauthorized with 401, Deny with 403, other faults with 500', async () => {
    expect(await handshakeStatus('')).toBe(401);
    expect(await handshakeStatus('?token=bad')).toBe(401);
    expect(await handshakeStatus('?token=deny')).toBe(403);
    expect(await handshakeStatus('?token=boom')).toBe(500);
  });

  it("refuses with the $connect route's status (429) and opens on 2xx", async () => {
    expect(await handshakeStatus('?token=busy')).toBe(429);
    expect(await handshakeStatus('?token=alice')).toBe(101);
  });
});

describe('route selection', () => {
  it('routes on body.action, falls back to $default, and passes the authorizer context', async () => {
    const ws = await connect('route-user');
    ws.send(JSON.stringify({ action: 'ping' }));
    ws.send('not json');
    ws.send(JSON.stringify({ action: 'constructor' }));
    const events = await waitFor(() => {
      const mine = seen.filter((e) => e.requestContext.authorizer?.userId === 'route-user');
      return mine.length >= 3 ? mine : undefined;
    });
    expect(events.map((e) => e.requestContext.routeKey)).toEqual(['ping', '$default', '$default']);
    ws.close();
    await waitFor(() =>
      seen.find(
        (e) =>
          e.requestContext.routeKey === '$disconnect' && e.requestContext.authorizer?.userId === 'route-user',
      ),
    );
  });
});

describe('frame limits', () => {
  it('closes with 1009 on a frame over 32 KB and 1003 on a binary frame', async () => {
    const big = await connect('limits-a');
    const bigClosed = new Promise<number>((r) => big.on('close', (code) => r(code)));
    big.send('x'.repeat(33 * 1024));
    expect(await bigClosed).toBe(1009);

    const bin = await connect('limits-b');
    const binClosed = new Promise<number>((r) => bin.on('close', (code) => r(code)));
    bin.send(Buffer.from([1, 2, 3]));
    expect(await binClosed).toBe(1003);
  });
});

describe('the @connections API through the real SDK client', () => {
  it('posts, gets and deletes a connection, then reports it gone', async () => {
    const ws = await connect('mgmt-user');
    ws.send(JSON.stringify({ action: 'ping' }));
    const { requestContext } = await waitFor(() =>
      seen.find((e) => e.requestContext.authorizer?.userId === 'mgmt-user'),
    );
    const id = requestContext.connectionId;
    const client = management();
    const received = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: '{"type":"pong"}' }));
    expect(await received).toBe('{"type":"pong"}');

    const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(info.Identity?.SourceIp).toBe('127.0.0.1');
    expect(info.ConnectedAt).toBeInstanceOf(Date);

    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    await closed;
    await expect(
      client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x' })),
    ).rejects.toBeInstanceOf(GoneException);
  });
});

describe('the Lambda Invoke API through the real SDK client', () => {
  const lambda = () =>
    new LambdaClient({ endpoint: gw.httpUrl, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });

  it("returns the handler's result, and an Unhandled function error when it throws", async () => {
    const ok = await lambda().send(
      new InvokeCommand({ FunctionName: 'admin', Payload: new TextEncoder().encode('{"op":"usage"}') }),
    );
    expect(JSON.parse(new TextDecoder().decode(ok.Payload))).toEqual({ echoed: { op: 'usage' } });

    const failed = await lambda().send(new InvokeCommand({ FunctionName: 'broken' }));
    expect(failed.FunctionError).toBe('Unhandled');
    expect(JSON.parse(new TextDecoder().decode(failed.Payload))).toMatchObject({
      errorMessage: 'nope',
      errorType: 'TypeError',
    });
  });

  it('answers a function that runs past its Timeout as Lambda does: 200, Unhandled, Sandbox.Timedout', async () => {
    const timedOut = await lambda().send(new InvokeCommand({ FunctionName: 'sleepy' }));
    expect(timedOut.StatusCode).toBe(200);
    expect(timedOut.FunctionError).toBe('Unhandled');
    const payload = JSON.parse(new TextDecoder().decode(timedOut.Payload));
    expect(Object.keys(payload)).toEqual(['errorType', 'errorMessage']);
    expect(payload.errorType).toBe('Sandbox.Timedout');
    expect(payload.errorMessage).toMatch(
      /^RequestId: [0-9a-f-]{36} Error: Task timed out after 0\.20 seconds$/,
    );
  });

  it('answers ResourceNotFoundException for an unknown function', async () => {
    await expect(lambda().send(new InvokeCommand({ FunctionName: 'missing' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });
});

describe('the @connections API over raw HTTP', () => {
  it('answers 410 GoneException for an unknown id and 403 ForbiddenException for a bad path', async () => {
    const gone = await fetch(
      `${gw.managementEndpoint}/@connections/${encodeURIComponent('AAAAAAAAAAAAAAA=')}`,
      {
        method: 'POST',
        body: 'x',
      },
    );
    expect(gone.status).toBe(410);
    expect(gone.headers.get('x-amzn-errortype')).toBe('GoneException');
    const forbidden = await fetch(`${gw.httpUrl}/local/nowhere`, { method: 'POST', body: 'x' });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
  });

  it('answers 413 PayloadTooLargeException for data over 128 KB', async () => {
    const ws = await connect('big-post');
    ws.send(JSON.stringify({ action: 'ping' }));
    const { requestContext } = await waitFor(() =>
      seen.find((e) => e.requestContext.authorizer?.userId === 'big-post'),
    );
    const res = await fetch(
      `${gw.managementEndpoint}/@connections/${encodeURIComponent(requestContext.connectionId)}`,
      {
        method: 'POST',
        body: 'x'.repeat(129 * 1024),
      },
    );
    expect(res.status).toBe(413);
    expect(res.headers.get('x-amzn-errortype')).toBe('PayloadTooLargeException');
    ws.close();
  });
});

describe('the idle timeout', () => {
  it('closes an idle connection with 1001 and runs $disconnect once', async () => {
    const disconnects: SeenEvent[] = [];
    const short = await startGateway({
      port: 0,
      idleTimeoutMs: 50,
      log: () => {},
      handlers: {
        authorizer,
        routes: {
          $disconnect: async (event: never) => {
            disconnects.push(event as SeenEvent);
            return { statusCode: 200 };
          },
        },
      },
    });
    try {
      const ws = new WebSocket(`${short.wsUrl}?token=idle-user`);
      const code = await new Promise<number>((resolve, reject) => {
        ws.on('close', (c) => resolve(c));
        ws.on('error', reject);
      });
      expect(code).toBe(1001);
      await waitFor(() => (disconnects.length > 0 ? disconnects : undefined));
      expect(disconnects).toHaveLength(1);
    } finally {
      await short.stop();
    }
  });
});

describe('route timeouts', () => {
  /** A gateway whose `$default` route runs `handler` under `timeoutMs`, with a 300 ms integration timeout. */
  async function gatewayWith(
    timeoutMs: number,
    handler: (event: SeenEvent, post: (data: string) => Promise<string>) => Promise<void>,
  ): Promise<Gateway> {
    const local: Gateway = await startGateway({
      port: 0,
      integrationTimeoutMs: 300,
      log: () => {},
      handlers: {
        authorizer,
        routes: {
          $default: {
            name: 'Slow',
            timeoutMs,
            handler: async (event: never) => {
              const e = event as SeenEvent;
              const client = new ApiGatewayManagementApiClient({
                endpoint: local.managementEndpoint,
                region: LOCAL_REGION,
                credentials: LOCAL_CREDENTIALS,
              });
              // Posting back reports how it went, so the test can wait for the handler's end.
              const post = (data: string) =>
                client
                  .send(
                    new PostToConnectionCommand({ ConnectionId: e.requestContext.connectionId, Data: data }),
                  )
                  .then(
                    () => 'sent',
                    (err: Error) => err.message,
                  );
              await handler(e, post);
            },
          },
        },
      },
    });
    return local;
  }

  async function open(local: Gateway): Promise<{ ws: WebSocket; frames: string[] }> {
    const ws = new WebSocket(`${local.wsUrl}?token=timeouts`);
    await new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('error', reject);
    });
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(data.toString()));
    return { ws, frames };
  }

  it('sends "Endpoint request timed out" past the integration timeout, while the function runs on', async () => {
    let event: SeenEvent | undefined;
    let lateOutcome: string | undefined;
    const local = await gatewayWith(5_000, async (e, post) => {
      event = e;
      await work(600);
      lateOutcome = await post('still running');
    });
    try {
      const { ws, frames } = await open(local);
      ws.send('hello');
      await waitFor(() => lateOutcome);
      const { connectionId, requestId } = event!.requestContext as {
        connectionId: string;
        requestId: string;
      };
      expect(frames[0]).toBe(
        `{"message": "Endpoint request timed out", "connectionId":"${connectionId}", "requestId":"${requestId}"}`,
      );
      // As in AWS, the function is not stopped by the gateway: it runs to its own Timeout.
      expect(lateOutcome).toBe('sent');
      await waitFor(() => (frames.length === 2 ? frames : undefined));
      expect(frames[1]).toBe('still running');
      ws.close();
    } finally {
      await local.stop();
    }
  });

  it("answers Internal server error when the function's Timeout comes first, and abandons the function", async () => {
    let event: SeenEvent | undefined;
    let lateOutcome: string | undefined;
    const local = await gatewayWith(100, async (e, post) => {
      event = e;
      await work(400);
      lateOutcome = await post('after my timeout');
    });
    try {
      const { ws, frames } = await open(local);
      ws.send('hello');
      await waitFor(() => lateOutcome);
      const { connectionId, requestId } = event!.requestContext as {
        connectionId: string;
        requestId: string;
      };
      expect(frames).toEqual([gatewayErrorFrame('Internal server error', connectionId, requestId)]);
      expect(frames[0]).toBe(
        `{"message": "Internal server error", "connectionId":"${connectionId}", "requestId":"${requestId}"}`,
      );
      // Lambda would have stopped it: its later @connections call never leaves the process.
      expect(lateOutcome).toMatch(/Slow timed out/);
      ws.close();
    } finally {
      await local.stop();
    }
  });
});
