import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIMIT_KINDS } from '../../../lambda/core/limiter/kinds/registry';

/** The rows of the first table under `## <heading>` in docs/limiter.md, cells trimmed. */
function tableUnder(heading: string): string[][] {
  const text = readFileSync(new URL('../../../docs/limiter.md', import.meta.url), 'utf8');
  const section = text.split(`\n## ${heading}\n`)[1]?.split('\n## ')[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2) // the header and its rule
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
}

const code = (names: readonly string[]) => names.map((n) => `\`${n}\``).join(', ');

describe('docs/limiter.md', () => {
  it('lists every registered kind, in status order, as the registry declares it', () => {
    expect(tableUnder('The kinds')).toEqual(
      LIMIT_KINDS.map((k) => [
        `\`${k.name}\``,
        k.label,
        k.unit,
        `\`${k.policyField.name}\``,
        `\`--${k.adminFlag.flag}\``,
        k.resetScope,
        code(k.attributes),
        k.markerField === undefined ? '' : `\`${k.markerField}\``,
      ]),
    );
  });

  it('explains every attribute a kind keeps in the item table', () => {
    const explained = tableUnder('The item').map(([attributes]) => attributes ?? '');
    for (const attribute of LIMIT_KINDS.flatMap((k) => k.attributes)) {
      expect(
        explained.some((cell) => cell.includes(`\`${attribute}\``)),
        `${attribute} is not in the item table`,
      ).toBe(true);
    }
  });
});
