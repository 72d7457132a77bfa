import { createServer, request, type Server } from 'node:http';

/** What to do with one DynamoDB request instead of (or before) forwarding it. */
export type DynamoFault =
  /** Answer as DynamoDB does when the item's partition is hot. */
  | { readonly kind: 'throttle' }
  /** Hold the request this long, then forward it (a slow store, from the caller's side). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Never answer and never apply it: the caller's timeout is all it sees. */
  | { readonly kind: 'hang' }
  /**
   * Forward it, let the emulator apply it, and drop the answer: the write landed, and the caller's
   * timeout is all it sees (a lost answer, SPEC §9.1).
   */
  | { readonly kind: 'lose-answer' }
  /** Apply it, then break the connection instead of answering: a write that landed, answer lost. */
  | { readonly kind: 'drop-answer' };

/** A fault for every picked request, or one chosen per request (e.g. the first one differently). */
export type DynamoFaultChoice = DynamoFault | ((operation: string, body: string) => DynamoFault | undefined);

/**
 * An HTTP proxy on 127.0.0.1 in front of a DynamoDB emulator that counts every operation by its
 * `X-Amz-Target` header and can inject a fault into the requests a rule picks (by operation and
 * body: e.g. every call about one user's item). Nothing about the client or the handlers is
 * mocked: they talk to it as to DynamoDB.
 */
export interface DynamoProxy {
  readonly endpoint: string;
  /** Operations seen since the last reset, by operation (`UpdateItem`, `GetItem`, ...). */
  calls(): Record<string, number>;
  total(): number;
  /** Operations seen since the last reset that `picks` chooses (by operation and body). */
  seen(picks: (operation: string, body: string) => boolean): number;
  /**
   * Requests a rule picked since the last reset, by fault (`hang`: requests that reached the
   * store's front door and were never answered). A fault test asserts this, so a fault that never
   * reached the store cannot pass for one that was survived.
   */
  faulted(): Record<DynamoFault['kind'], number>;
  reset(): void;
  /** Applies `fault` to every request for which `picks` is true, until cleared. */
  inject(picks: (operation: string, body: string) => boolean, fault: DynamoFaultChoice): void;
  clear(): void;
  stop(): Promise<void>;
}

/**
 * The reply runners' looks for a stop mark (SPEC §9.3: one Query on `stop#<requestId>` every
 * 500 ms while a model runs). Their number follows how long the replies stream, not the frames:
 * a test that counts calls per frame counts them apart.
 */
export const isStopLook = (operation: string, body: string): boolean =>
  operation === 'Query' && body.includes('"stop#');

export async function startDynamoProxy(target: string): Promise<DynamoProxy> {
  const upstream = new URL(target);
  const counts: Record<string, number> = {};
  const requests: { operation: string; body: string }[] = [];
  const faults: Record<DynamoFault['kind'], number> = {
    throttle: 0,
    delay: 0,
    hang: 0,
    'lose-answer': 0,
    'drop-answer': 0,
  };
  let rule: { picks: (operation: string, body: string) => boolean; fault: DynamoFaultChoice } | undefined;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const operation =
        String(req.headers['x-amz-target'] ?? 'unknown')
          .split('.')
          .pop() ?? 'unknown';
      counts[operation] = (counts[operation] ?? 0) + 1;
      const text = body.toString('utf8');
      requests.push({ operation, body: text });
      const chosen = rule?.picks(operation, text) ? rule.fault : undefined;
      const fault = typeof chosen === 'function' ? chosen(operation, text) : chosen;
      if (fault) faults[fault.kind]++;
      if (fault?.kind === 'throttle') {
        const text = JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
          message: 'Rate of requests exceeds the allowed throughput.',
        });
        res.writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      if (fault?.kind === 'hang') return; // the socket closes when the caller gives up
      if (fault?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.ms));
      const forward = request(
        {
          host: upstream.hostname,
          port: Number(upstream.port),
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          if (fault?.kind === 'lose-answer') {
            answer.resume(); // applied upstream; the caller never hears of it
            return;
          }
          if (fault?.kind === 'drop-answer') {
            answer.resume();
            answer.on('end', () => res.destroy());
            return;
          }
          res.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      // A caller that gave up does not take back a write already sent (a lost answer lands).
      res.on('close', () => {
        if (fault?.kind !== 'lose-answer' && fault?.kind !== 'drop-answer') forward.destroy();
      });
      forward.end(body);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls: () => ({ ...counts }),
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    seen: (picks) => requests.filter((r) => picks(r.operation, r.body)).length,
    faulted: () => ({ ...faults }),
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
      requests.length = 0;
      for (const k of Object.keys(faults) as DynamoFault['kind'][]) faults[k] = 0;
    },
    inject: (picks, fault) => {
      rule = { picks, fault };
    },
    clear: () => {
      rule = undefined;
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
