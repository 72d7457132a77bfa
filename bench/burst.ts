import WebSocket from 'ws';
import { signDevToken } from '../local/dev-tokens';
import type { BenchPart } from './report';
import { benchStack, type Frame } from './stack';

const FRAMES = 300;
const CONNECTIONS = 5;
const FIRST = new Set(['message_accepted', 'request_queued', 'error']);

/**
 * The abusive client of issue 12: one free-tier user sends 300 frames at once over 5 connections.
 * What came back (admitted, queued, refused), how long until every frame was answered, and what
 * the store paid for it: DynamoDB calls per frame by command, first until the 25 admitted replies
 * are settled, then until the 10 queued ones have been replayed and settled too.
 */
export const burstBench: BenchPart = {
  name: 'burst',
  description: `one free-tier user, ${FRAMES} frames at once over ${CONNECTIONS} connections`,
  async run() {
    const { stack, dynamoCalls, resetDynamoCalls } = await benchStack();
    const token = await signDevToken({ userId: `burst-${Date.now()}` });
    const frames: Frame[] = [];
    const sockets = await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        const socket = new WebSocket(`${stack.wsUrl}?token=${token}`);
        socket.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame));
        await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
        return socket;
      }),
    );
    await stack.processorIdle();
    resetDynamoCalls();
    const started = performance.now();
    for (let i = 0; i < FRAMES; i++) {
      sockets[i % CONNECTIONS]!.send(
        JSON.stringify({ action: 'sendMessage', requestId: `b${i}`, message: `q ${i}` }),
      );
    }
    const first = new Map<string, Frame>();
    const count = (type: string) => frames.filter((f) => f.type === type).length;
    await until(() => {
      for (const f of frames)
        if (f.requestId && FIRST.has(f.type) && !first.has(f.requestId)) first.set(f.requestId, f);
      return first.size >= FRAMES;
    }, 60_000);
    const answeredMs = performance.now() - started;
    const of = (type: string) => [...first.values()].filter((f) => f.type === type);
    const admitted = of('message_accepted').length;
    const queued = of('request_queued').length;
    await until(() => count('message_complete') >= admitted, 60_000);
    const burstCalls = dynamoCalls();
    await until(() => count('message_complete') >= admitted + queued, 120_000);
    await stack.processorIdle();
    const allCalls = dynamoCalls();
    for (const s of sockets) s.close();
    const total = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);
    const queuedCost = (total(allCalls) - total(burstCalls)) / Math.max(1, queued);
    const codes = [...new Set(of('error').map((f) => String(f.code)))].join(', ');
    return {
      rows: [
        { metric: 'admitted at once', value: admitted, unit: 'frames', note: 'free tier: 25 back to back' },
        {
          metric: 'queued',
          value: queued,
          unit: 'frames',
          note: `positions ${of('request_queued')
            .map((f) => f.position)
            .sort((a, b) => Number(a) - Number(b))
            .join(',')}`,
        },
        { metric: 'refused', value: of('error').length, unit: 'frames', note: codes },
        { metric: 'every frame answered after', value: answeredMs, unit: 'ms' },
        {
          metric: 'DynamoDB calls per frame (burst + 25 replies)',
          value: total(burstCalls) / FRAMES,
          unit: 'calls',
          note: JSON.stringify(burstCalls),
        },
        {
          metric: 'DynamoDB calls per queued request (queue, replay, settle)',
          value: queuedCost,
          unit: 'calls',
          note: JSON.stringify(subtract(allCalls, burstCalls)),
        },
        {
          metric: 'DynamoDB calls per frame, everything drained',
          value: total(allCalls) / FRAMES,
          unit: 'calls',
        },
      ],
      details: { burstCalls, allCalls, answeredMs },
    };
  },
};

function subtract(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]));
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('burst bench: timed out waiting for the stack');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
