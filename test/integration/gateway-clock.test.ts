import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway } from '../../local/gateway';

const STACK_NOW = Date.parse('2026-01-31T23:59:50Z');

/** The instants API Gateway puts in events are the stack's (LOCAL_CLOCK), not the machine's. */
describe('the local gateway on the stack clock', () => {
  it('stamps requestTimeEpoch, requestTime and connectedAt of every event with the stack clock', async () => {
    type Ctx = { requestTimeEpoch: number; requestTime: string; connectedAt: number; routeKey: string };
    const seen: Ctx[] = [];
    const record = async (event: never) => {
      seen.push((event as { requestContext: Ctx }).requestContext);
      return { statusCode: 200 };
    };
    const gw = await startGateway({
      port: 0,
      log: () => {},
      clock: () => STACK_NOW,
      handlers: {
        authorizer: async () => ({
          principalId: 'u',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke' }],
          },
        }),
        routes: { $connect: record, $default: record },
      },
    });
    try {
      const ws = new WebSocket(`${gw.wsUrl}?token=t`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send('hello');
      const deadline = Date.now() + 5_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      ws.close();
      expect(seen.map((c) => c.routeKey)).toEqual(['$connect', '$default']);
      for (const ctx of seen) {
        expect(ctx).toMatchObject({ requestTimeEpoch: STACK_NOW, connectedAt: STACK_NOW });
        expect(ctx.requestTime).toBe('31/Jan/2026:23:59:50 +0000');
      }
    } finally {
      await gw.stop();
    }
  });
});
