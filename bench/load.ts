import { type BenchPart, percentile } from './report';
import { benchClient, benchStack, countNotEndingOnce, TERMINAL_TYPES } from './stack';
import { writeLatencySvg } from './svg';

const CHATTY = Number(process.env.BENCH_LOAD_USERS ?? 12);
const BURSTY = Math.max(1, Math.round(CHATTY / 3));
const TURNS = 20;

/**
 * Mixed load over real WebSockets: "chatty" enterprise users holding a conversation (one message
 * at a time, all admitted) alongside "bursty" free users sending 30 at once (25 admitted, 5
 * queued). Reports throughput, latency percentiles, and checks that every request got exactly
 * one terminal message.
 */
export const loadBench: BenchPart = {
  name: 'load',
  description: `${CHATTY} chatty users × ${TURNS} turns + ${BURSTY} bursty users × 30 at once, real WebSockets, loopback`,
  async run() {
    const { stack, dynamoCalls, resetDynamoCalls } = await benchStack();
    const chatty = await Promise.all(
      Array.from({ length: CHATTY }, () => benchClient(stack.wsUrl, 'enterprise')),
    );
    const bursty = await Promise.all(Array.from({ length: BURSTY }, () => benchClient(stack.wsUrl)));
    resetDynamoCalls();
    const t0 = performance.now();
    const firstChunk: number[] = [];
    const complete: number[] = [];
    const points: { atS: number; latencyMs: number; queued: boolean }[] = [];
    const burstSends = new Map<string, number>();
    await Promise.all([
      ...chatty.map(async (c) => {
        for (let i = 0; i < TURNS; i++) {
          const id = `t${i}`;
          const sent = performance.now();
          const chunk = c.waitFor((f) => f.type === 'chunk' && f.requestId === id, 60_000);
          const done = c.waitFor((f) => f.type === 'message_complete' && f.requestId === id, 60_000);
          c.socket.send(
            JSON.stringify({ action: 'sendMessage', requestId: id, message: `turn ${i} of a conversation` }),
          );
          firstChunk.push((await chunk) - sent);
          const latency = (await done) - sent;
          complete.push(latency);
          points.push({ atS: (sent - t0) / 1000, latencyMs: latency, queued: false });
        }
      }),
      ...bursty.map(async (c, u) => {
        await new Promise((resolve) => setTimeout(resolve, u * 500));
        for (let i = 0; i < 30; i++) {
          burstSends.set(`${c.userId}/b${i}`, performance.now());
          c.socket.send(JSON.stringify({ action: 'sendMessage', requestId: `b${i}`, message: `burst ${i}` }));
        }
        for (let i = 0; i < 30; i++)
          await c.waitFor((f) => f.requestId === `b${i}` && TERMINAL_TYPES.has(f.type), 120_000);
      }),
    ]);
    const seconds = (performance.now() - t0) / 1000;
    const total = CHATTY * TURNS + BURSTY * 30;
    const notExactlyOnce = countNotEndingOnce(
      [...chatty, ...bursty],
      (frames) =>
        new Set(frames.map((f) => f.frame.requestId).filter((id): id is string => typeof id === 'string')),
    );
    const waitErrors: number[] = [];
    for (const c of bursty) {
      for (const { at, frame } of c.frames) {
        if (frame.type !== 'message_complete') continue;
        const queuedFrames = c.frames.filter(
          (f) =>
            f.frame.requestId === frame.requestId &&
            (f.frame.type === 'request_queued' || f.frame.type === 'queue_position'),
        );
        const started = c.frames.find(
          (f) => f.frame.requestId === frame.requestId && f.frame.type === 'queue_processing_started',
        );
        const sent = burstSends.get(`${c.userId}/${frame.requestId}`)!;
        points.push({ atS: (sent - t0) / 1000, latencyMs: at - sent, queued: queuedFrames.length > 0 });
        const told = queuedFrames.at(-1);
        if (told && started) {
          waitErrors.push(
            Math.abs(
              (started.frame.timestamp - told.frame.timestamp) / 1000 -
                (told.frame.estimatedWaitTime as number),
            ),
          );
        }
      }
    }
    if (notExactlyOnce > 0) throw new Error(`${notExactlyOnce} requests did not end exactly once`);
    writeLatencySvg('load-latency.svg', points);
    const calls = dynamoCalls();
    for (const c of [...chatty, ...bursty]) c.socket.close();
    return {
      rows: [
        {
          metric: 'messages/s (all)',
          value: total / seconds,
          unit: '/s',
          note: `${total} messages in ${seconds.toFixed(1)} s`,
        },
        { metric: 'admitted: first chunk p50', value: percentile(firstChunk, 50), unit: 'ms' },
        { metric: 'admitted: first chunk p95', value: percentile(firstChunk, 95), unit: 'ms' },
        { metric: 'admitted: first chunk p99', value: percentile(firstChunk, 99), unit: 'ms' },
        { metric: 'admitted: complete p50', value: percentile(complete, 50), unit: 'ms' },
        { metric: 'admitted: complete p95', value: percentile(complete, 95), unit: 'ms' },
        { metric: 'admitted: complete p99', value: percentile(complete, 99), unit: 'ms' },
        {
          metric: '|queue wait − estimate| p50',
          value: percentile(waitErrors, 50),
          unit: 's',
          note: `${waitErrors.length} queued`,
        },
        { metric: '|queue wait − estimate| p99', value: percentile(waitErrors, 99), unit: 's' },
        {
          metric: 'DynamoDB calls per message, all paths',
          value: Object.values(calls).reduce((a, b) => a + b, 0) / total,
          unit: 'calls',
          note: JSON.stringify(calls),
        },
        {
          metric: 'requests not ending exactly once',
          value: notExactlyOnce,
          unit: 'requests',
          note: `of ${total}`,
        },
      ],
      details: { chatty: CHATTY, bursty: BURSTY, turns: TURNS, firstChunk, complete, waitErrors },
    };
  },
};
