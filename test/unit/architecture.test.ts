/**
 * The rules of docs/architecture.md that a reader cannot keep by eye: nothing outside the limit
 * kinds branches on a limit's name, and imports point the way STYLE's arrows do. Each failure
 * names the offending file:line, so the message says what to move where.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const SOURCE_ROOTS = ['lambda', 'lib', 'local', 'bin'];
const SOURCE = /\.(ts|js|mjs)$/;

/** Every source file under the four roots, as a path relative to the project (`lambda/…`). */
function sourceFiles(dir = ''): string[] {
  const roots = dir ? [dir] : SOURCE_ROOTS;
  return roots.flatMap((root) =>
    readdirSync(join(ROOT, root), { withFileTypes: true }).flatMap((entry) => {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') return [];
      const path = join(root, entry.name);
      if (entry.isDirectory()) return sourceFiles(path);
      return SOURCE.test(entry.name) ? [path] : [];
    }),
  );
}

const FILES = sourceFiles();
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The text with comments blanked (line breaks kept), so a comment quoting a rule is no offence. */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const lineAt = (text: string, index: number) => text.slice(0, index).split('\n').length;

// ---------------------------------------------------------------------------------------------
// Branches on a limit's name
// ---------------------------------------------------------------------------------------------

/** Where the limit kinds live; the only places that may branch on a name. */
const KINDS_HOME = (file: string) => file.startsWith('lambda/core/limiter/kinds/');

/** The limit names, read from the registry (kinds/registry.ts), so a new kind is checked too. */
async function limitNames(): Promise<string[]> {
  const candidates = ['kinds/registry.ts'];
  const names = new Set<string>();
  for (const candidate of candidates) {
    const path = join(ROOT, 'lambda/core/limiter', candidate);
    if (!existsSync(path)) continue;
    const mod = (await import(path)) as {
      LIMIT_KINDS?: readonly { readonly name: string }[];
      LIMIT_NAMES?: readonly string[];
    };
    for (const kind of mod.LIMIT_KINDS ?? []) names.add(kind.name);
    for (const name of mod.LIMIT_NAMES ?? []) names.add(name);
  }
  return [...names];
}

interface Offence {
  readonly at: string;
  readonly text: string;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Comparisons against a quoted name: `=== 'x'`, `'x' !==`, `case 'x'`, `['x', …].includes(`, `.includes('x')`. */
function nameBranches(file: string, names: readonly string[]): Offence[] {
  const text = withoutComments(read(file));
  const name = `(['"\`])(?:global\\.)?(?:${names.map(escapeRegExp).join('|')})\\1`;
  const patterns = [
    new RegExp(`(?:===?|!==?)\\s*${name}`, 'g'),
    new RegExp(`${name}\\s*(?:===?|!==?)`, 'g'),
    new RegExp(`\\bcase\\s+${name}`, 'g'),
    new RegExp(`\\[[^\\]]*${name}[^\\]]*\\]\\s*\\.(?:includes|indexOf|some)\\(`, 'g'),
    new RegExp(`\\.(?:includes|has|indexOf)\\(\\s*${name}`, 'g'),
  ];
  const lines = new Set<number>();
  for (const pattern of patterns) for (const m of text.matchAll(pattern)) lines.add(lineAt(text, m.index));
  const source = read(file).split('\n');
  return [...lines]
    .sort((a, b) => a - b)
    .map((line) => ({ at: `${file}:${line}`, text: source[line - 1]!.trim() }));
}

describe('limit names', () => {
  it('are branched on only inside lambda/core/limiter/kinds/ (ask the kind: unit, waitsFor, label, adminFlag)', async () => {
    const names = await limitNames();
    // The registry was found: an empty list would make this test pass for nothing.
    expect(names).toContain('messageRate');
    expect(names).toContain('dailyCostUsd');
    const offences = FILES.filter((file) => !KINDS_HOME(file)).flatMap((file) => nameBranches(file, names));
    expect(offences.map((o) => `${o.at}  ${o.text}`)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Stored attribute names
// ---------------------------------------------------------------------------------------------

/** Where stored names may be spelled: the attribute table, and the kinds that own their counters. */
const STORED_NAMES_HOME = (file: string) =>
  file === 'lambda/core/limiter/item/attributes.ts' || file.startsWith('lambda/core/limiter/kinds/');

/** Every short stored name: item/attributes.ts's constants and field tables, and each kind's counters. */
async function storedNames(): Promise<string[]> {
  const attributes = (await import(join(ROOT, 'lambda/core/limiter/item/attributes.ts'))) as Record<
    string,
    unknown
  >;
  const { LIMIT_KINDS } = await import(join(ROOT, 'lambda/core/limiter/kinds/registry.ts'));
  const names = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === 'string') names.add(value);
    else if (Array.isArray(value)) value.forEach(add);
    else if (value && typeof value === 'object' && !(value instanceof Function))
      Object.values(value).forEach(add);
  };
  Object.values(attributes).forEach(add);
  for (const kind of LIMIT_KINDS) kind.attributes.forEach(add);
  // Short names only: a long stored name (`waiting`) is also an ordinary word in code, and so are
  // `id`, `tier` (a policy change's field) and `pk` (every table's key, the Requests table's too).
  const words = new Set(['id', 'tier', 'pk']);
  return [...names].filter((n) => n.length <= 4 && !words.has(n));
}

describe('stored attribute names', () => {
  it('are quoted only in lambda/core/limiter/item/attributes.ts and the kinds (code above the store reads readable fields)', async () => {
    const names = await storedNames();
    expect(names).toEqual(expect.arrayContaining(['tu', 'cd', 'hw', 'fl', 'r_', 'lb', 'lo']));
    const quoted = new RegExp(`(['"\`])(?:${names.map(escapeRegExp).join('|')})\\1`, 'g');
    const offences = FILES.filter((file) => file.startsWith('lambda/') && !STORED_NAMES_HOME(file)).flatMap(
      (file) => {
        const text = withoutComments(read(file));
        return [...text.matchAll(quoted)].map((m) => `${file}:${lineAt(text, m.index)}  ${m[0]}`);
      },
    );
    expect(offences).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// STYLE's arrows
// ---------------------------------------------------------------------------------------------

interface Import {
  /** `file:line` of the import. */
  readonly at: string;
  readonly from: string;
  /** The imported module, relative to the project (`lambda/core/…`), or the package name. */
  readonly target: string;
  readonly typeOnly: boolean;
}

const IMPORT =
  /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?(?:[^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = withoutComments(read(file));
  return [...text.matchAll(IMPORT)].map((m) => {
    const spec = (m[2] ?? m[3])!;
    const target = spec.startsWith('.') ? normalize(join(dirname(file), spec)) : spec;
    const index = m.index + m[0].lastIndexOf(spec);
    return { at: `${file}:${lineAt(text, index)}`, from: file, target, typeOnly: !!m[1] };
  });
}

const IMPORTS = FILES.flatMap(importsOf);
const under = (path: string, ...folders: string[]) =>
  folders.some((f) => path === f || path.startsWith(`${f}/`));
const shown = (i: Import) => `${i.at} imports ${i.target}${i.typeOnly ? ' (types)' : ''}`;
const moduleOf = (path: string) => path.replace(/\.(ts|js|mjs)$/, '').replace(/\/index$/, '');

/**
 * The services proper: the modules a composition root builds an operation from (chat, replay,
 * reply runner, reply failure, sweep, admin). The others in lambda/services are ports and helpers.
 */
const SERVICES = new Set(
  IMPORTS.filter((i) => under(i.from, 'lambda/adapters/runtime') && under(i.target, 'lambda/services'))
    .map((i) => moduleOf(i.target))
    .filter((m) => m !== 'lambda/services/ports' && m !== 'lambda/services/errors'),
);

/**
 * Known exceptions, each with the reason it stands and what ends it. Empty is the goal; an entry
 * here is visible debt, not a permission.
 */
const KNOWN_EXCEPTIONS: readonly { readonly at: RegExp; readonly reason: string }[] = [];
const excused = (i: Import) => KNOWN_EXCEPTIONS.some((e) => e.at.test(shown(i)));

describe('imports follow the arrows of STYLE.md', () => {
  it('finds the composition roots and the services they build', () => {
    expect([...SERVICES]).toEqual(expect.arrayContaining(['lambda/services/chat-service']));
  });

  it('core imports nothing from services, adapters, handlers, lib or local', () => {
    const offences = IMPORTS.filter(
      (i) =>
        under(i.from, 'lambda/core') &&
        under(i.target, 'lambda/services', 'lambda/adapters', 'lambda/handlers', 'lib', 'local'),
    );
    expect(offences.filter((i) => !excused(i)).map(shown)).toEqual([]);
  });

  it('services import no sibling service (shared vocabulary belongs in core)', () => {
    const offences = IMPORTS.filter(
      (i) =>
        under(i.from, 'lambda/services') &&
        SERVICES.has(moduleOf(i.target)) &&
        moduleOf(i.from) !== moduleOf(i.target),
    );
    expect(offences.filter((i) => !excused(i)).map(shown)).toEqual([]);
  });

  it('services import no adapter, handler, lib or local (a port never derives from an adapter)', () => {
    const offences = IMPORTS.filter(
      (i) =>
        under(i.from, 'lambda/services') &&
        under(i.target, 'lambda/adapters', 'lambda/handlers', 'lib', 'local'),
    );
    expect(offences.filter((i) => !excused(i)).map(shown)).toEqual([]);
  });

  it('lib imports no service', () => {
    const offences = IMPORTS.filter((i) => under(i.from, 'lib') && under(i.target, 'lambda/services'));
    expect(offences.filter((i) => !excused(i)).map(shown)).toEqual([]);
  });

  it('lambda/ imports no module for its side effects alone (package.json declares `sideEffects: false`)', () => {
    // esbuild drops a module none of whose exports is used: a bare `import './x'` would vanish
    // from the bundle and its side effect with it. A registry lists its members instead.
    const bare = FILES.filter((file) => under(file, 'lambda')).flatMap((file) => {
      const text = withoutComments(read(file));
      return [...text.matchAll(/(?:^|[\n;])\s*import\s+['"]([^'"]+)['"]/g)].map(
        (m) =>
          `${file}:${lineAt(text, m.index + m[0].indexOf('import'))} imports ${m[1]} for its side effects`,
      );
    });
    expect(bare).toEqual([]);
  });

  it('reads imports the way they are written (the scanner sees static, re-export and dynamic imports)', () => {
    const seen = (from: string) => IMPORTS.filter((i) => i.from === from).map((i) => i.target);
    expect(seen('lambda/adapters/runtime/message.ts')).toContain('lambda/services/chat-service');
    expect(seen('lambda/core/resources.ts')).toContain('lambda/core/resources/env');
    expect(seen('bin/bench.ts')).toContain('bench/bundles');
  });
});
