/**
 * The capacity part's block in docs/performance.md, made from whatever rows
 * bench/results/capacity.json holds: a metric "<measure>, <scenario> [<backend>]" is a cell of the
 * scenario's row under the measure's and backend's column, a metric without a scenario ("largest
 * user item [dynalite]") a row of the second table. New or renamed rows need no code change.
 */

import { type BenchResult, type Cell, pivot, provenance, withUnit } from './perf-doc-tables';
import type { BenchRow } from './report';

interface Parsed {
  readonly measure: string;
  readonly scenario: string;
  readonly backend: string;
  readonly row: BenchRow;
}

/** "write units per decision, a settle [DynamoDB Local]" → measure, scenario, backend. */
export function parseCapacityMetric(row: BenchRow): Parsed {
  const m = /^(.*?)(?: \[([^\]]+)\])?$/.exec(row.metric)!;
  const name = m[1]!;
  const backend = m[2] ?? '';
  const comma = name.indexOf(', ');
  return comma < 0
    ? { measure: name, scenario: '', backend, row }
    : { measure: name.slice(0, comma), scenario: name.slice(comma + 2), backend, row };
}

/** A column: the unit stands for the measure when each measure has its own unit ("WU, dynalite"). */
function columnNamer(parsed: readonly Parsed[]): (p: Parsed) => string {
  const unitsOf = new Map<string, Set<string>>();
  for (const p of parsed) unitsOf.set(p.measure, (unitsOf.get(p.measure) ?? new Set()).add(p.row.unit));
  const units = [...unitsOf.values()].flatMap((s) => [...s]);
  const byUnit = units.length === new Set(units).size && units.length === unitsOf.size;
  return (p) => {
    const what = byUnit ? p.row.unit : p.measure;
    return p.backend ? `${what}, ${p.backend}` : what;
  };
}

function cellsOf(
  parsed: readonly Parsed[],
  rowOf: (p: Parsed) => string,
  column: (p: Parsed) => string,
): Cell[] {
  return parsed.map((p) => ({
    row: rowOf(p),
    column: column(p),
    text: withUnit(p.row.value, '').trim(),
    note: p.row.note,
    source: p.backend || undefined,
  }));
}

export function capacityBlock(r: BenchResult): string {
  const parsed = r.rows.map(parseCapacityMetric);
  const perScenario = parsed.filter((p) => p.scenario);
  const others = parsed.filter((p) => !p.scenario);
  const measures = [...new Set(perScenario.map((p) => `${p.measure} (${p.row.unit})`))].join(', ');
  const parts = [provenance(r)];
  if (perScenario.length)
    parts.push(
      `Per scenario — ${measures}:`,
      pivot(
        'scenario',
        cellsOf(perScenario, (p) => p.scenario, columnNamer(perScenario)),
      ),
    );
  // A metric without a scenario is its own row: its column is its unit and backend ("bytes, dynalite").
  const unitColumn = (p: Parsed) => (p.backend ? `${p.row.unit}, ${p.backend}` : p.row.unit);
  if (others.length)
    parts.push(
      pivot(
        'measured',
        cellsOf(others, (p) => p.measure, unitColumn),
      ),
    );
  const notes = r.details?.notes;
  if (Array.isArray(notes) && notes.length) parts.push(notes.map((note) => `- ${note}`).join('\n'));
  return parts.join('\n\n');
}
