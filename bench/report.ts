import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRow {
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** What this is compared with, and the ratio (ours / theirs). */
  readonly peer?: { readonly name: string; readonly value: number; readonly ratio: number };
  readonly note?: string;
}

export interface BenchPart {
  readonly name: string;
  readonly description: string;
  run(): Promise<{ rows: BenchRow[]; details?: Record<string, unknown> }>;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function printTable(part: string, rows: readonly BenchRow[]): void {
  const lines = rows.map((r) => [
    r.metric,
    `${round(r.value)} ${r.unit}`,
    r.peer ? `${r.peer.name}: ${round(r.peer.value)} ${r.unit}` : '',
    r.peer ? `${round(r.peer.ratio)}×` : '',
    r.note ?? '',
  ]);
  const header = ['metric', 'value', 'peer', 'ours/peer', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n## ${part}\n`);
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}

export function writeReport(part: string, payload: unknown): string {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${part}.json`);
  writeFileSync(file, `${JSON.stringify(payload, null, 2)}\n`);
  return file;
}
