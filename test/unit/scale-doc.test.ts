import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { scaleScenarios } from '../../bench/scale';
import { BEGIN, END, scaleBlockOf } from '../../bench/scale-doc';
import { readScaleSources } from '../../bench/scale-inputs';

const doc = readFileSync(new URL('../../docs/scale.md', import.meta.url), 'utf8');
const results = fileURLToPath(new URL('../../bench/results', import.meta.url));

describe('docs/scale.md', () => {
  it('holds the tables `npm run bench -- scale` makes from the committed bench results', () => {
    expect(doc).toContain(BEGIN);
    expect(doc).toContain(END);
    expect(scaleBlockOf(doc)).toBe(scaleScenarios(readScaleSources(results)).block);
  });
});
