import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  perfBlockOf,
  readPerfResults,
  renderPerfBlocks,
  renderPerfDoc,
  SECTION_NAMES,
  sectionMarkers,
} from '../../bench/perf-doc';
import { parseCapacityMetric } from '../../bench/perf-doc-capacity';
import type { BenchResult } from '../../bench/perf-doc-tables';

const doc = readFileSync(new URL('../../docs/performance.md', import.meta.url), 'utf8');
const results = readPerfResults(fileURLToPath(new URL('../../bench/results', import.meta.url)));

describe('docs/performance.md', () => {
  it.each(SECTION_NAMES)(
    'holds the %s table `npm run bench -- doc` makes from the committed results',
    (s) => {
      expect(doc).toContain(sectionMarkers(s).begin);
      expect(perfBlockOf(doc, s)).toBe(renderPerfBlocks(results)[s]);
    },
  );

  it('is unchanged by `npm run bench -- doc`', () => {
    expect(renderPerfDoc(doc, results)).toBe(doc);
  });

  it('shows a figure of the results, and a changed result changes the document', () => {
    const bursty: BenchResult = {
      ...results.burst,
      rows: results.burst.rows.map((r) => (r.metric === 'refused' ? { ...r, value: 264 } : r)),
    };
    expect(perfBlockOf(doc, 'burst')).toContain('| refused | 265 frames | QUEUE_FULL |');
    expect(renderPerfBlocks({ ...results, burst: bursty }).burst).toContain(
      '| refused | 264 frames | QUEUE_FULL |',
    );
    expect(renderPerfDoc(doc, { ...results, burst: bursty })).not.toBe(doc);
  });

  it('refuses a document without the markers', () => {
    expect(() => renderPerfDoc('# Performance\n', results)).toThrow(/perf-limiter:begin/);
  });
});

describe('the capacity block', () => {
  const row = (metric: string, value: number, unit: string) => ({ metric, value, unit });
  const capacity = (rows: BenchResult['rows']): string =>
    renderPerfBlocks({ ...results, capacity: { ...results.capacity, rows, details: {} } }).capacity;

  it('reads measure, scenario and backend from a metric', () => {
    expect(
      parseCapacityMetric(row('write units per decision, a settle [DynamoDB Local]', 3, 'WU')),
    ).toMatchObject({
      measure: 'write units per decision',
      scenario: 'a settle',
      backend: 'DynamoDB Local',
    });
    expect(parseCapacityMetric(row('largest user item', 4, 'bytes'))).toMatchObject({
      measure: 'largest user item',
      scenario: '',
      backend: '',
    });
  });

  it('makes new or renamed rows rows and columns of its tables, grouped by backend', () => {
    const block = capacity([
      row('write units per request, a typical user [dynalite]', 2, 'WU'),
      row('write units per request, a typical user [DynamoDB Local]', 6, 'WU'),
      row('read units per request, a new scenario [DynamoDB Local]', 0.5, 'RU'),
      row('largest request item [DynamoDB Local]', 1234, 'bytes'),
    ]);
    expect(block).toContain('| scenario | WU, dynalite | WU, DynamoDB Local | RU, DynamoDB Local |');
    expect(block).toContain('| a typical user | 2 | 6 |  |');
    expect(block).toContain('| a new scenario |  |  | 0.50 |');
    expect(block).toContain('| measured | bytes, DynamoDB Local |');
    expect(block).toContain('| largest request item | 1,234 |');
  });
});
