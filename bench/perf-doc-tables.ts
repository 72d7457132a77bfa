/**
 * The table builders behind docs/performance.md's generated blocks (bench/perf-doc.ts): every
 * figure comes from a bench/results/<part>.json as `npm run bench` wrote it.
 */
import type { BenchRow } from './report';

/** A bench/results/<part>.json, as bin/bench.ts writes it. */
export interface BenchResult {
  readonly part: string;
  readonly description: string;
  readonly node: string;
  readonly ranAt: string;
  readonly seconds: number;
  readonly rows: readonly BenchRow[];
  readonly details?: Record<string, unknown>;
}

/** A number as the docs print it: 3 significant places or so, thousands separated. */
export function num(v: number, digits?: number): string {
  const places = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: places, maximumFractionDigits: places });
}

/** A value with its unit; whole counts print whole, calls per decision keep their two places. */
export function withUnit(value: number, unit: string): string {
  const text = Number.isInteger(value) && unit !== 'calls' ? num(value, 0) : num(value);
  return unit.startsWith('/') ? `${text}${unit}` : `${text} ${unit}`;
}

/** A note as stored; a JSON map of call counts (`{"UpdateItem":85}`) reads "85 UpdateItem". */
export function noteText(note: string | undefined): string {
  if (!note) return '';
  if (!note.startsWith('{')) return note;
  try {
    const counts = JSON.parse(note) as Record<string, number>;
    return Object.entries(counts)
      .map(([call, count]) => `${num(count, 0)} ${call}`)
      .join(', ');
  } catch {
    return note;
  }
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (c: string) => c.replaceAll('|', '\\|');
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** "`bench/results/limiter.json`: run 2026-12-03 13:20 UTC on Node.js v20.20.2, 144 s." */
export function provenance(r: BenchResult): string {
  const at = r.ranAt.slice(0, 16).replace('T', ' ');
  return `\`bench/results/${r.part}.json\`: run ${at} UTC on Node.js ${r.node}, ${num(r.seconds, 0)} s.`;
}

/**
 * A part's rows as they are: metric, value, the peer (one column named after it when every row
 * has the same peer), ours / peer, note.
 */
export function rowsTable(rows: readonly BenchRow[]): string {
  const peers = [...new Set(rows.flatMap((r) => (r.peer ? [r.peer.name] : [])))];
  const hasNote = rows.some((r) => r.note);
  const header = ['metric', 'value'];
  if (peers.length) header.push(peers.length === 1 ? peers[0]! : 'compared with', 'ours / peer');
  if (hasNote) header.push('note');
  const body = rows.map((r) => {
    const line = [r.metric, withUnit(r.value, r.unit)];
    if (peers.length) {
      const peer = r.peer ? withUnit(r.peer.value, r.unit) : '';
      line.push(
        r.peer && peers.length > 1 ? `${r.peer.name}: ${peer}` : peer,
        r.peer ? `${num(r.peer.ratio)}×` : '',
      );
    }
    if (hasNote) line.push(noteText(r.note));
    return line;
  });
  return table(header, body);
}

/** One cell of a pivoted table: its row, its column, its text, and the note it carries. */
export interface Cell {
  readonly row: string;
  readonly column: string;
  readonly text: string;
  readonly note?: string;
  /** Who the note is from when rows gather several sources (a backend): shown when notes differ. */
  readonly source?: string;
}

/**
 * Cells gathered into a table: rows and columns in the order they first appear, so new or
 * renamed metrics make new rows or columns without a code change. A row's notes are shown once
 * when every source says the same, else each with its source.
 */
export function pivot(rowHeader: string, cells: readonly Cell[]): string {
  const rows = [...new Set(cells.map((c) => c.row))];
  const columns = [...new Set(cells.map((c) => c.column))];
  const hasNote = cells.some((c) => c.note);
  const body = rows.map((row) => {
    const mine = cells.filter((c) => c.row === row);
    const line = [row, ...columns.map((col) => mine.find((c) => c.column === col)?.text ?? '')];
    if (hasNote) line.push(notesOf(mine));
    return line;
  });
  return table([rowHeader, ...columns, ...(hasNote ? ['note'] : [])], body);
}

function notesOf(cells: readonly Cell[]): string {
  const noted = cells.filter((c) => c.note);
  const distinct = [...new Set(noted.map((c) => noteText(c.note)))];
  if (distinct.length <= 1) return distinct[0] ?? '';
  if (!noted.some((c) => c.source)) return distinct.join('; ');
  return noted.map((c) => `${c.source ? `${c.source}: ` : ''}${noteText(c.note)}`).join(' / ');
}
