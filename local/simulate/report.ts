import { basename } from 'node:path';
import type { SimulationResult } from './result';

/** Seconds with one decimal, from ms. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
/** To the µUSD the limiter counts in. */
const usd = (value: number) => `$${value.toFixed(6)}`;
const count = (value: number) => value.toLocaleString('en-US');

/**
 * The configurations side by side: one column per limits file, one row per figure (a row per
 * refusal reason that any configuration has), then the users most affected, rank by rank.
 */
export function renderComparison(results: readonly SimulationResult[]): string {
  const reasons = [...new Set(results.flatMap((r) => Object.keys(r.refused)))].sort();
  const rows: (readonly string[])[] = [
    ['', ...results.map((r) => basename(r.limits ?? ''))],
    ['requests', ...results.map((r) => count(r.requests))],
    ['admitted', ...results.map((r) => count(r.admitted.total))],
    ['  directly', ...results.map((r) => count(r.admitted.directly))],
    ['  after queueing', ...results.map((r) => count(r.admitted.afterQueueing))],
    ['queued', ...results.map((r) => count(r.queued))],
    ['refused', ...results.map((r) => count(r.refusedTotal))],
    ...reasons.map((reason) => [`  ${reason}`, ...results.map((r) => count(r.refused[reason] ?? 0))]),
    ['wait p50 (queued)', ...results.map((r) => (r.waitMs ? seconds(r.waitMs.p50) : '-'))],
    ['wait p99 (queued)', ...results.map((r) => (r.waitMs ? seconds(r.waitMs.p99) : '-'))],
    ['input tokens', ...results.map((r) => count(r.tokens.input))],
    ['output tokens', ...results.map((r) => count(r.tokens.output))],
    ['cost (USD)', ...results.map((r) => usd(r.costUsd))],
  ];
  const ranks = Math.max(0, ...results.map((r) => r.mostAffected.length));
  const affected: (readonly string[])[] = [['most affected (refused/queued)', ...results.map(() => '')]];
  for (let i = 0; i < ranks; i++) {
    affected.push([
      `  ${i + 1}`,
      ...results.map((r) => {
        const u = r.mostAffected[i];
        return u ? `${u.userId} ${u.refused}/${u.queued}` : '';
      }),
    ]);
  }
  return `${table([...rows, ...affected])}\n`;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
