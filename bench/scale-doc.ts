/**
 * docs/scale.md's generated part: the model's tables, written between two markers so the prose
 * around them stays hand-written. `npm run bench -- scale` writes it; test/unit/scale-doc.test.ts
 * checks the committed file against what the committed bench/results give.
 */
import { blockOf, markers, replaceBlock } from './doc-markers';
import type { MeasuredInputs, Prices, QuotaCheck, ScaleModel } from './scale-model';

const SCALE = markers('scale', 'npm run bench -- scale');
export const BEGIN = SCALE.begin;
export const END = SCALE.end;

/** One workload's model and its label ("5,000 req/s"). */
export interface Scenario {
  readonly label: string;
  readonly model: ScaleModel;
}

const n = (v: number, digits = v >= 100 ? 0 : v >= 10 ? 1 : 2) =>
  v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const usd = (v: number) => `$${v >= 1 ? n(v, 2) : n(v, 4)}`;
const times = (q: QuotaCheck) => `${n(q.ratio)}×${q.ratio > 1 ? ' **over**' : ''}`;
const table = (header: readonly string[], rows: readonly (readonly string[])[]) =>
  [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

function inputsTable(m: MeasuredInputs, ranAt: Record<string, string>): string {
  const rows: [string, string][] = [
    ['WU, a typical request (decide + settle, index writes included)', n(m.directWu)],
    ['WU of the same on the user item alone (dynalite)', n(m.directUserItemWu)],
    [
      'WU, a settle (index write included) / on the user item alone',
      `${n(m.settleWu)} / ${n(m.settleUserItemWu)}`,
    ],
    [`WU, decide + settle with global limits on (${m.globalShardsMeasured} shards)`, n(m.globalWu)],
    ['RU, decide + settle with global limits on', n(m.globalRu, 3)],
    [
      "WU / RU, one enqueue; WU, a refusal by another instance (the issue's user: every per-user kind on, 10 long prompts waiting)",
      `${n(m.enqueueWu)} / ${n(m.enqueueRu)}; ${n(m.refusalWu)}`,
    ],
    [
      "WU, one write of a waiter's own line entry (index write included) / the entry alone",
      `${n(m.lineEntryWu)} / ${n(m.lineEntryItemWu)}`,
    ],
    [
      "user item: the issue's user / the largest, bytes",
      `${n(m.scenarioUserItemBytes, 0)} / ${n(m.largestUserItemBytes, 0)}`,
    ],
    [
      'largest shard / line entry / usage-index entry, bytes',
      [m.largestShardBytes, m.largestLineBytes, m.largestIndexEntryBytes].map((b) => n(b, 0)).join(' / '),
    ],
    ['route function duration (local, first chunk p50), ms', n(m.routeMs, 0)],
    ["the runner's own work (local, complete − first chunk p50), ms", n(m.runnerOverheadMs, 0)],
  ];
  const from = Object.entries(ranAt)
    .map(([part, at]) => `\`${part}.json\` ${at.slice(0, 16).replace('T', ' ')} UTC`)
    .join(', ');
  const caveat =
    m.backend === 'dynalite'
      ? ' **No DynamoDB Local run: dynalite leaves index writes out, so the indexes read 0 here.**'
      : '';
  return `Measured inputs (${m.backend}; ${from}):${caveat}\n\n${table(['input', 'value'], rows)}`;
}

function workloadTable(scenarios: readonly Scenario[]): string {
  const w = scenarios[0]!.model.workload;
  const pct = (v: number) => `${n(v * 100, 0)} %`;
  const rows: [string, string][] = [
    [
      'users and chat requests a second',
      scenarios
        .map(
          (s) => `${n(s.model.workload.users, 0)} users at ${n(s.model.workload.requestsPerSecond, 0)} req/s`,
        )
        .join('; '),
    ],
    [
      'requests queued (then replayed) / refused / admitted at once',
      `${pct(w.queuedShare)} / ${pct(w.refusedShare)} / ${pct(1 - w.queuedShare - w.refusedShare)}`,
    ],
    [
      'admitted requests under global limits; requests waiting in the global line',
      `${pct(w.globalShare)}; ${pct(w.lineShare)}, waiting ${w.lineWaitSeconds} s on average (${scenarios.map((s) => `${n(s.model.lineWaiters, 0)} waiting at ${s.label}`).join(', ')})`,
    ],
    [
      'global shards a stack serving the load has (max(configured, ceil(in flight / 13)), at most 1,000)',
      scenarios.map((s) => `${n(s.model.globalShards, 0)} at ${s.label}`).join(', '),
    ],
    ['`bySweep` writes per mark (the mark, the sweep taking it out)', String(w.sweepWritesPerMark)],
    [
      'prompt; reply (bytes); reply streaming time (the runner)',
      `${n(w.promptBytes, 0)} B; ${n(w.replyBytes, 0)} B; ${w.replySeconds} s`,
    ],
    ['replies kept for `resume` (nobody connected)', pct(w.keptReplyShare)],
    [
      'server messages: admitted (besides chunks); more when queued',
      `${w.postsPerAdmitted}; +${w.extraPostsPerQueued}`,
    ],
    [
      'SQS calls per queued request',
      Object.entries(w.sqsPerQueued)
        .map(([a, k]) => `${a} ${k}`)
        .join(', '),
    ],
    [
      'processor records per queued request (a deferral, then the admit)',
      String(w.processorBatchesPerQueued),
    ],
    [
      'users connected at the peak; average connection',
      `${pct(w.connectedShare)}; ${n(w.sessionSeconds / 60, 0)} min`,
    ],
    [
      'Redis limiter: commands per request; commands/s per cache.r7g.large primary',
      `${w.redisCommandsPerRequest}; ${n(w.redisCommandsPerNode, 0)}`,
    ],
  ];
  return `Assumed workload (\`typicalWorkload\` in bench/scale-inputs.ts):\n\n${table(['assumption', 'value'], rows)}`;
}

function pricesTable(p: Prices): string {
  const perM = (v: number) => `$${n(v * 1e6, 4)} per million`;
  const rows: [string, string][] = [
    [
      'DynamoDB on-demand write / read request unit',
      `${perM(p.dynamoWriteUnit)} / ${perM(p.dynamoReadUnit)}`,
    ],
    ['SQS FIFO request (64 KB chunk)', perM(p.sqsFifoRequest)],
    ['Lambda request; GB-second (Arm)', `${perM(p.lambdaRequest)}; $${p.lambdaGbSecond}`],
    [
      'API Gateway WebSocket message (32 KB); connection minute',
      `${perM(p.wsMessage)}; ${perM(p.wsConnectionMinute)}`,
    ],
    [
      'ElastiCache Serverless (Redis OSS): ECPU; GB-hour (minimum)',
      `${perM(p.redisServerlessEcpu)}; $${p.redisServerlessGbHour} (${p.redisServerlessMinGb} GB)`,
    ],
    ['ElastiCache cache.r7g.large node-hour', `$${p.redisNodeHour}`],
  ];
  return `Prices used (\`PRICES\` in bench/scale-inputs.ts; sources below):\n\n${table(['price', 'USD, us-east-1'], rows)}`;
}

function itemsTable(scenarios: readonly Scenario[]): string {
  const header = ['item kind', 'table'];
  for (const s of scenarios)
    header.push(`WU/s · RU/s at ${s.label}`, `hottest partition WU/s (of 1,000) at ${s.label}`);
  header.push('note');
  const kinds = scenarios[0]!.model.items;
  const rows = kinds.map((item, i) => {
    const row = [item.kind, item.table];
    for (const s of scenarios) {
      const it = s.model.items[i]!;
      row.push(`${n(it.wuPerSecond)} · ${n(it.ruPerSecond)}`, n(it.hottestPartitionWu));
    }
    row.push(item.note);
    return row;
  });
  return table(header, rows);
}

/** The rate at which a quota's demand reaches its limit (demands grow with the rate). */
function breaksAt(rate: number, q: QuotaCheck): string {
  const at = rate / q.ratio;
  return at > 1_000_000 ? '> 1,000,000 req/s' : `${n(at, 0)} req/s`;
}

function quotasTable(scenarios: readonly Scenario[]): string {
  const header = ['quota', 'limit', 'breaks at'];
  for (const s of scenarios) header.push(`demand at ${s.label}`, 'of the limit');
  header.push('what moves it');
  const rows = scenarios[0]!.model.quotas.map((q, i) => {
    const base = scenarios[0]!.model.workload.requestsPerSecond;
    const row = [q.what, `${n(q.limit, 0)} ${q.unit}`, breaksAt(base, q)];
    for (const s of scenarios) {
      const sq = s.model.quotas[i]!;
      row.push(n(sq.demand), times(sq));
    }
    row.push(q.setting);
    return row;
  });
  return table(header, rows);
}

function breaksTable(scenarios: readonly Scenario[]): string {
  const rows = scenarios.flatMap((s) =>
    s.model.breaksFirst
      .filter((q) => q.ratio > 1)
      .map((q, i) => [s.label, String(i + 1), q.what, times(q), q.setting]),
  );
  return table(['at', 'order', 'quota', 'of the limit', 'what moves it'], rows);
}

function costsTable(scenarios: readonly Scenario[]): string {
  const header = ['design', 'service', 'item', `per million requests (${scenarios[0]!.label})`];
  for (const s of scenarios) header.push(`USD at ${s.label}`);
  header.push('in');
  const rows = scenarios[0]!.model.costs.map((c, i) => {
    const row = [c.design, c.service, c.item, `${n(c.perMillion)} ${c.unit}`];
    for (const s of scenarios) row.push(usd(s.model.costs[i]!.usd));
    row.push(c.part);
    return row;
  });
  const totals: [string, (m: ScaleModel) => number][] = [
    ['**chat-limiter, limiting layer**', (m) => m.usdPerMillion.ours],
    ['**Redis limiter, cache.r7g.large pair(s)**', (m) => m.usdPerMillion.redisNodes],
    ['**Redis limiter, ElastiCache Serverless**', (m) => m.usdPerMillion.redisServerless],
    ['the reply stream, either design (not in the totals)', (m) => m.usdPerMillion.stream],
  ];
  for (const [what, of] of totals)
    rows.push([what, '', '', '', ...scenarios.map((s) => `**${usd(of(s.model))}**`), '']);
  return table(header, rows);
}

/** The generated block: every table, for every scenario. */
export function renderScaleBlock(
  measured: MeasuredInputs,
  ranAt: Record<string, string>,
  scenarios: readonly Scenario[],
  prices: Prices,
): string {
  return [
    BEGIN,
    '',
    inputsTable(measured, ranAt),
    '',
    workloadTable(scenarios),
    '',
    pricesTable(prices),
    '',
    '### Units per item kind and per partition',
    '',
    itemsTable(scenarios),
    '',
    '### Quotas',
    '',
    quotasTable(scenarios),
    '',
    '### What breaks first (every quota over its limit, in order)',
    '',
    breaksTable(scenarios),
    '',
    '### US dollars per million chat requests (us-east-1, prices of 2026-12-03)',
    '',
    costsTable(scenarios),
    '',
    END,
  ].join('\n');
}

/** `doc` with the text between the markers replaced by `block` (markers included). */
export function replaceScaleBlock(doc: string, block: string): string {
  return replaceBlock(doc, SCALE, block, 'docs/scale.md');
}

/** The generated block as it stands in `doc`. */
export function scaleBlockOf(doc: string): string {
  return blockOf(doc, SCALE);
}
