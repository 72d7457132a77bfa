/**
 * `npm run check:size`: fails when a source file (.ts, .js, .mjs) in lambda/, lib/, local/ or bin/
 * is over 300 lines, and names each one. STYLE: a file over ~300 lines usually holds two ideas.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOTS = ['lambda', 'lib', 'local', 'bin'];
const SOURCE = /\.(ts|js|mjs)$/;
const MAX_LINES = 300;

/** Every source file under `dir`, recursively (node_modules and dot-folders skipped). */
function* sources(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (SOURCE.test(entry.name)) yield path;
  }
}

/** Lines as `wc -l` counts them, plus a last line without its newline. */
const lineCount = (text) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

const over = ROOTS.flatMap((root) => [...sources(root)])
  .map((path) => ({ path, lines: lineCount(readFileSync(path, 'utf8')) }))
  .filter((file) => file.lines > MAX_LINES)
  .sort((a, b) => b.lines - a.lines);
if (over.length === 0) {
  console.log(`check:size: every source file in ${ROOTS.join('/, ')}/ is within ${MAX_LINES} lines`);
} else {
  console.error(`check:size: ${over.length} source file(s) over ${MAX_LINES} lines; split each by idea:`);
  for (const { path, lines } of over) console.error(`  ${path}: ${lines} lines`);
  process.exitCode = 1;
}
