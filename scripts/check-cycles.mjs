/**
 * `npm run check:cycles`: fails when a module of lambda/, lib/, local/ or bin/ imports itself
 * through others (type-only imports count: a cycle of types still ties the modules together).
 *
 * Built on dpdm rather than madge: madge parses TypeScript with the `typescript` package's JS API,
 * which TypeScript 7 (the project's compiler) no longer ships; dpdm brings its own TypeScript 5 for
 * parsing. test/ is not followed (a test may import a harness that imports it back).
 */
import { parseCircular, parseDependencyTree, uniqueCirculars } from 'dpdm';

const ROOTS = ['lambda/**/*.ts', 'lib/**/*.ts', 'local/**/*.{ts,js,mjs}', 'bin/**/*.ts'];

const tree = await parseDependencyTree(ROOTS, {
  context: process.cwd(),
  extensions: ['.ts', '.js', '.mjs', '.json'],
  js: ['.ts', '.js', '.mjs'],
  exclude: /node_modules|(^|\/)test\//,
  transform: false,
  skipDynamicImports: false,
});
const cycles = uniqueCirculars(parseCircular(tree));
if (cycles.length === 0) {
  console.log(`check:cycles: no import cycle in ${Object.keys(tree).length} modules`);
} else {
  console.error(
    `check:cycles: ${cycles.length} import cycle(s); break each one (STYLE: arrows point one way):`,
  );
  cycles.forEach((cycle, i) => {
    console.error(`  ${i + 1}) ${[...cycle, cycle[0]].join('\n       -> ')}`);
  });
  process.exitCode = 1;
}
