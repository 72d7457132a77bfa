import { describe, expect, it } from 'vitest';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';
import { parseCommand } from '../../local/admin/args';
import { adminUsage } from '../../local/admin/help';
import { LIMIT_LABELS, limitLabelsModule, limitName } from '../../local/limit-names';

describe('the admin CLI and the clients take limits from the registry', () => {
  it.each(LIMIT_KINDS.map((k) => [k.name, k] as const))('lists and parses the flag of %s', (_, kind) => {
    expect(adminUsage()).toContain(`[--${kind.adminFlag.flag} `);
    const parsed = parseCommand(['set-override', 'alice', `--${kind.adminFlag.flag}`, '7']);
    expect(parsed).not.toBe('help');
    if (parsed === 'help') return;
    expect(parsed.payload.limits).toEqual({ [kind.adminFlag.field]: 7 });
  });

  it('offers every reset scope a kind declares, and all', () => {
    const scopes = /--scope (\S+)/.exec(adminUsage())![1]!.split('|');
    expect(scopes).toEqual([...new Set(LIMIT_KINDS.map((k) => k.resetScope)), 'all']);
  });

  it('names every kind by its label, in the terminal and in the page’s generated module', async () => {
    for (const kind of LIMIT_KINDS) expect(limitName(kind.name)).toBe(kind.label);
    const source = limitLabelsModule();
    const page = (await import(`data:text/javascript,${encodeURIComponent(source)}`)) as {
      LIMIT_LABELS: Record<string, string>;
    };
    expect(page.LIMIT_LABELS).toEqual(LIMIT_LABELS);
    expect(Object.keys(page.LIMIT_LABELS)).toEqual(LIMIT_KINDS.map((k) => k.name));
  });
});
