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

/** The groups of modules that reach each other (Tarjan): every module a cycle runs through. */
function tangledGroups(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const groups = [];
  const visit = (node) => {
    index.set(node, index.size);
    low.set(node, index.get(node));
    stack.push(node);
    onStack.add(node);
    for (const dep of graph[node] ?? []) {
      if (!dep.id || !(dep.id in graph)) continue;
      if (!index.has(dep.id)) {
        visit(dep.id);
        low.set(node, Math.min(low.get(node), low.get(dep.id)));
      } else if (onStack.has(dep.id)) low.set(node, Math.min(low.get(node), index.get(dep.id)));
    }
    if (low.get(node) !== index.get(node)) return;
    const group = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      group.push(member);
    } while (member !== node);
    if (group.length > 1) groups.push(group.sort());
  };
  for (const node of Object.keys(graph)) if (!index.has(node)) visit(node);
  return groups;
}
if (cycles.length === 0) {
  console.log(`check:cycles: no import cycle in ${Object.keys(tree).length} modules`);
} else {
  console.error(
    `check:cycles: ${cycles.length} import cycle(s); break each one (STYLE: arrows point one way):`,
  );
  cycles.forEach((cycle, i) => {
    console.error(`  ${i + 1}) ${[...cycle, cycle[0]].join('\n       -> ')}`);
  });
  console.error('modules tied together by them (each group must become a one-way chain):');
  for (const group of tangledGroups(tree)) console.error(`  - ${group.join(', ')}`);
  process.exitCode = 1;
}
