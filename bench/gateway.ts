import WebSocket, { WebSocketServer } from 'ws';
import { type BenchPart, percentile } from './report';
import { benchClient, benchStack } from './stack';

const CONNECTIONS = 16;
const PER_CONNECTION = 50;

/** The ceiling: a bare `ws` server answering each frame at once, over the same loopback. */
async function rawEchoCeiling(): Promise<{ perSecond: number; latencies: number[] }> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (ws) => ws.on('message', (data) => ws.send(String(data))));
  const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const ws = new WebSocket(url);
      await new Promise((resolve) => ws.once('open', resolve));
      for (let i = 0; i < PER_CONNECTION; i++) {
        const sent = performance.now();
        await new Promise((resolve) => {
          ws.once('message', resolve);
          ws.send(JSON.stringify({ action: 'sendMessage', message: `hello ${i}` }));
        });
        latencies.push(performance.now() - sent);
      }
      ws.close();
    }),
  );
  const perSecond = (CONNECTIONS * PER_CONNECTION) / ((performance.now() - started) / 1000);
  await new Promise((resolve) => server.close(resolve));
  return { perSecond, latencies };
}

export const gatewayBench: BenchPart = {
  name: 'gateway',
  description: `admitted echo messages through the local gateway (ECHO_DELAY_MS=0), ${CONNECTIONS} connections × ${PER_CONNECTION}, vs a raw ws echo server`,
  async run() {
    const { stack, dynamoCalls, resetDynamoCalls } = await benchStack();
    const ceiling = await rawEchoCeiling();
    const clients = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => benchClient(stack.wsUrl, 'enterprise')),
    );
    resetDynamoCalls();
    const complete: number[] = [];
    const firstChunk: number[] = [];
    const started = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < PER_CONNECTION; i++) {
          const requestId = `g${i}`;
          const sent = performance.now();
          const chunk = c.waitFor((f) => f.type === 'chunk' && f.requestId === requestId, 10_000);
          const done = c.waitFor((f) => f.type === 'message_complete' && f.requestId === requestId, 10_000);
          c.socket.send(JSON.stringify({ action: 'sendMessage', requestId, message: `hello ${i}` }));
          firstChunk.push((await chunk) - sent);
          complete.push((await done) - sent);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const total = CONNECTIONS * PER_CONNECTION;
    const calls = Object.values(dynamoCalls()).reduce((a, b) => a + b, 0);
    for (const c of clients) c.socket.close();
    const perSecond = total / seconds;
    return {
      rows: [
        {
          metric: 'messages/s through the gateway',
          value: perSecond,
          unit: '/s',
          peer: { name: 'raw ws echo', value: ceiling.perSecond, ratio: perSecond / ceiling.perSecond },
        },
        {
          metric: 'latency to message_complete p50',
          value: percentile(complete, 50),
          unit: 'ms',
          peer: {
            name: 'raw ws echo',
            value: percentile(ceiling.latencies, 50),
            ratio: percentile(complete, 50) / percentile(ceiling.latencies, 50),
          },
        },
        {
          metric: 'latency to message_complete p99',
          value: percentile(complete, 99),
          unit: 'ms',
          peer: {
            name: 'raw ws echo',
            value: percentile(ceiling.latencies, 99),
            ratio: percentile(complete, 99) / percentile(ceiling.latencies, 99),
          },
        },
        { metric: 'latency to first chunk p50', value: percentile(firstChunk, 50), unit: 'ms' },
        { metric: 'latency to first chunk p99', value: percentile(firstChunk, 99), unit: 'ms' },
        {
          metric: 'DynamoDB calls per admitted message',
          value: calls / total,
          unit: 'calls',
          note: JSON.stringify(dynamoCalls()),
        },
      ],
      details: { connections: CONNECTIONS, perConnection: PER_CONNECTION, dynamoCalls: dynamoCalls() },
    };
  },
};
