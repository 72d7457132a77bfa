import type {
  CostLine,
  CostPart,
  ItemLoad,
  MeasuredInputs,
  Prices,
  StackInputs,
  Workload,
} from './scale-types';

/** The bill per million chat requests, both designs. */
export function costLines(
  items: readonly ItemLoad[],
  m: MeasuredInputs,
  s: StackInputs,
  w: Workload,
  p: Prices,
): CostLine[] {
  const perM = 1_000_000 / w.requestsPerSecond; // seconds a million requests take at the rate
  const admitted = 1 - w.refusedShare;
  const wu = items.reduce((a, i) => a + i.wuPerSecond, 0) * perM;
  const ru = items.reduce((a, i) => a + i.ruPerSecond, 0) * perM;
  const sqs = Object.values(w.sqsPerQueued).reduce((a, n) => a + n, 0) * w.queuedShare * 1_000_000;
  const chunks = Math.ceil((w.replySeconds * 1000) / s.chunkIntervalMs);
  const conns = ((w.users * w.connectedShare) / w.sessionSeconds) * perM;
  const connMinutes = ((w.users * w.connectedShare) / 60) * perM;
  const gbs = (mb: number, ms: number, n: number) => (mb / 1024) * (ms / 1000) * n;
  const routeGbs = gbs(s.memoryMb.route, m.routeMs, 1_000_000);
  const processorGbs = gbs(
    s.memoryMb.processor,
    m.routeMs,
    1_000_000 * w.queuedShare * w.processorBatchesPerQueued,
  );
  const runnerGbs = gbs(s.memoryMb.runner, m.runnerOverheadMs, 1_000_000 * admitted);
  const streamGbs = gbs(s.memoryMb.runner, w.replySeconds * 1000, 1_000_000 * admitted);
  const connectGbs = gbs(s.memoryMb.connect, m.routeMs, 2 * conns);
  const invocations = 1_000_000 * (1 + admitted + w.queuedShare * w.processorBatchesPerQueued) + 2 * conns;
  const messages =
    1_000_000 * (1 + admitted * w.postsPerAdmitted + w.queuedShare * w.extraPostsPerQueued + w.refusedShare);
  // The same in either design: the gateway, the functions, the reply stream.
  const both: CostLine[] = [
    line(
      'both',
      'Lambda',
      'requests (route, runner, processor, connect)',
      invocations,
      'requests',
      p.lambdaRequest,
      'limiting',
    ),
    line(
      'both',
      'Lambda',
      "GB-seconds: routes, processor, connect, the runner's own work",
      routeGbs + processorGbs + runnerGbs + connectGbs,
      'GB-s',
      p.lambdaGbSecond,
      'limiting',
    ),
    line(
      'both',
      'API Gateway',
      'messages: sendMessage in, server messages out (no chunks)',
      messages,
      'messages',
      p.wsMessage,
      'limiting',
    ),
    line(
      'both',
      'API Gateway',
      'connection minutes',
      connMinutes,
      'minutes',
      p.wsConnectionMinute,
      'limiting',
    ),
    line(
      'both',
      'Lambda',
      `GB-seconds: the runner streaming a ${w.replySeconds} s reply`,
      streamGbs,
      'GB-s',
      p.lambdaGbSecond,
      'stream',
    ),
    line(
      'both',
      'API Gateway',
      `chunk messages (${chunks} per reply)`,
      1_000_000 * admitted * chunks,
      'messages',
      p.wsMessage,
      'stream',
    ),
  ];
  const seconds = perM;
  const pairs = Math.ceil((w.requestsPerSecond * w.redisCommandsPerRequest) / w.redisCommandsPerNode);
  return [
    line('chat-limiter', 'DynamoDB', 'write request units', wu, 'WRU', p.dynamoWriteUnit, 'limiting'),
    line('chat-limiter', 'DynamoDB', 'read request units', ru, 'RRU', p.dynamoReadUnit, 'limiting'),
    line('chat-limiter', 'SQS FIFO', 'requests', sqs, 'requests', p.sqsFifoRequest, 'limiting'),
    line(
      'Redis',
      'ElastiCache Serverless (Redis OSS)',
      'ECPUs (1 per command ≤ 1 KB)',
      1_000_000 * w.redisCommandsPerRequest,
      'ECPU',
      p.redisServerlessEcpu,
      'serverless',
    ),
    line(
      'Redis',
      'ElastiCache Serverless (Redis OSS)',
      `data stored (${p.redisServerlessMinGb} GB minimum)`,
      (p.redisServerlessMinGb * seconds) / 3600,
      'GB-h',
      p.redisServerlessGbHour,
      'serverless',
    ),
    line(
      'Redis',
      'ElastiCache cache.r7g.large',
      `${pairs} primary + replica pair(s)`,
      (2 * pairs * seconds) / 3600,
      'node-h',
      p.redisNodeHour,
      'limiting',
    ),
    ...both,
  ];
}

function line(
  design: CostLine['design'],
  service: string,
  item: string,
  perMillion: number,
  unit: string,
  price: number,
  part: CostPart,
): CostLine {
  return { design, service, item, perMillion, unit, usd: perMillion * price, part };
}
