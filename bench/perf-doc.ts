/**
 * docs/performance.md's figures: one generated block per bench part, written between markers
 * from bench/results/<part>.json, so the prose around them explains and never copies a figure.
 * `npm run bench -- doc` rewrites them, and so does every `npm run bench` part after it writes
 * its results; test/unit/perf-doc.test.ts checks the committed file against the committed results.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blockOf, type Markers, markers, replaceBlock } from './doc-markers';
import { capacityBlock } from './perf-doc-capacity';
import { type BenchResult, type Cell, num, pivot, provenance, rowsTable, withUnit } from './perf-doc-tables';

const COMMAND = 'npm run bench -- doc';
const DOC = 'docs/performance.md';

/** The results docs/performance.md is made of, by part. */
export type PerfResults = Readonly<Record<Section, BenchResult>>;

function detail(r: BenchResult, key: string): number {
  const value = r.details?.[key];
  if (typeof value !== 'number') throw new Error(`bench/results/${r.part}.json has no number details.${key}`);
  return value;
}
const count = (v: number) => num(v, 0);

/** Each block's text (markers excluded), from its part's results. */
const SECTIONS = {
  limiter: (r: BenchResult) =>
    `${count(detail(r, 'sequential'))} sequential and ${count(detail(r, 'concurrent'))} ` +
    `${detail(r, 'width')}-way decisions over ${count(detail(r, 'users'))} users; ${provenance(r)}\n\n${rowsTable(r.rows)}`,
  global: (r: BenchResult) =>
    `${count(detail(r, 'decisions'))} decisions ${detail(r, 'width')}-way over ${count(detail(r, 'users'))} users ` +
    `per configuration; ${provenance(r)}\n\n${rowsTable(r.rows)}`,
  gateway: (r: BenchResult) =>
    `${detail(r, 'connections')} connections × ${detail(r, 'perConnection')} admitted echo messages; ` +
    `${provenance(r)}\n\n${rowsTable(r.rows)}`,
  queue: (r: BenchResult) =>
    `${detail(r, 'users')} free-tier users × ${detail(r, 'messages')} messages at once; ${provenance(r)}\n\n${rowsTable(r.rows)}`,
  burst: (r: BenchResult) => `${provenance(r)}\n\n${rowsTable(r.rows)}\n\n${burstInAws(r)}`,
  capacity: capacityBlock,
  load: (r: BenchResult) =>
    `${detail(r, 'chatty')} chatty users × ${detail(r, 'turns')} turns beside ${detail(r, 'bursty')} bursty ` +
    `users; ${provenance(r)}\n\n${rowsTable(r.rows)}`,
  bundles: bundlesBlock,
} as const;

export type Section = keyof typeof SECTIONS;
export const SECTION_NAMES = Object.keys(SECTIONS) as Section[];

/** The markers of a section's block in docs/performance.md. */
export function sectionMarkers(section: Section): Markers {
  return markers(`perf-${section}`, COMMAND);
}

function rowValue(r: BenchResult, metric: string): number {
  const row = r.rows.find((x) => x.metric === metric);
  if (!row) throw new Error(`bench/results/${r.part}.json has no row "${metric}"`);
  return row.value;
}

/**
 * What the same burst would cost in AWS, where each frame may reach another Lambda instance and
 * a refusal there costs one failed conditional write: the calls counted here plus one a refusal.
 */
function burstInAws(r: BenchResult): string {
  const calls = Object.values(r.details?.burstCalls as Record<string, number>).reduce((a, b) => a + b, 0);
  const refused = rowValue(r, 'refused');
  const frames = rowValue(r, 'admitted at once') + rowValue(r, 'queued') + refused;
  return (
    `In AWS, with every refusal one failed conditional write: (${count(calls)} calls counted here + ` +
    `${count(refused)} refusals) / ${count(frames)} frames ≈ **${num((calls + refused) / frames)} calls per frame**.`
  );
}

/** One row per function: its bundle, its cold load, its SDK clients alone, against its targets. */
function bundlesBlock(r: BenchResult): string {
  const cells: Cell[] = r.rows.flatMap((row) => {
    const [fn, measure] = row.metric.split(': ', 2) as [string, string];
    const own: Cell = { row: fn, column: measure, text: withUnit(row.value, row.unit), note: row.note };
    if (!row.peer) return [own];
    return [own, { row: fn, column: row.peer.name, text: withUnit(row.peer.value, row.unit) }];
  });
  const machine = r.details?.machine as { loadAverage1m: number; cpus: number } | undefined;
  const load = machine
    ? ` The machine's load average (1 min) at the start: ${num(machine.loadAverage1m)} on ${machine.cpus} CPUs.`
    : '';
  return `${provenance(r)}${load}\n\n${pivot('function', cells)}`;
}

/** Every section's block, markers included. */
export function renderPerfBlocks(results: PerfResults): Record<Section, string> {
  return Object.fromEntries(
    SECTION_NAMES.map((s) => {
      const { begin, end } = sectionMarkers(s);
      return [s, `${begin}\n\n${SECTIONS[s](results[s])}\n\n${end}`];
    }),
  ) as Record<Section, string>;
}

/** `doc` with every section's block rewritten from `results`. */
export function renderPerfDoc(doc: string, results: PerfResults): string {
  const blocks = renderPerfBlocks(results);
  return SECTION_NAMES.reduce((text, s) => replaceBlock(text, sectionMarkers(s), blocks[s], DOC), doc);
}

/** A section's block as it stands in `doc`. */
export function perfBlockOf(doc: string, section: Section): string {
  return blockOf(doc, sectionMarkers(section));
}

export function readPerfResults(dir = join(process.cwd(), 'bench', 'results')): PerfResults {
  return Object.fromEntries(
    SECTION_NAMES.map((s) => [s, JSON.parse(readFileSync(join(dir, `${s}.json`), 'utf8')) as BenchResult]),
  ) as PerfResults;
}

/** Rewrites docs/performance.md's generated blocks from bench/results; returns the file written. */
export function writePerfDoc(root = process.cwd()): string {
  const file = join(root, 'docs', 'performance.md');
  writeFileSync(
    file,
    renderPerfDoc(readFileSync(file, 'utf8'), readPerfResults(join(root, 'bench', 'results'))),
  );
  return file;
}
