/**
 * `npm run bench [-- PART ...]`: runs the benchmark parts (all by default, or the ones named),
 * prints a table per part, writes bench/results/<part>.json and rewrites docs/performance.md's
 * tables from the results. `npm run bench -- doc` only rewrites the tables.
 */
import '../local/quiet-sdk-notice';
import { parseArgs } from 'node:util';
import { printTable, writeReport } from '../bench/report';

/**
 * The parts, by name, in the order `npm run bench` runs them. One line each, loaded only when
 * they run (or for --help), so `npm run bench -- bundles` does not load the limiter benchmark.
 */
const PARTS = {
  limiter: () => import('../bench/limiter').then((m) => m.limiterBench),
  global: () => import('../bench/global').then((m) => m.globalBench),
  gateway: () => import('../bench/gateway').then((m) => m.gatewayBench),
  queue: () => import('../bench/queue').then((m) => m.queueBench),
  load: () => import('../bench/load').then((m) => m.loadBench),
  bundles: () => import('../bench/bundles').then((m) => m.bundlesBench),
  burst: () => import('../bench/burst').then((m) => m.burstBench),
  capacity: () => import('../bench/capacity').then((m) => m.capacityBench),
  scale: () => import('../bench/scale').then((m) => m.scaleBench),
  simulate: () => import('../bench/simulate').then((m) => m.simulateBench),
} as const;

type PartName = keyof typeof PARTS;
const NAMES = Object.keys(PARTS) as PartName[];

const isPart = (name: string): name is PartName => Object.hasOwn(PARTS, name);

/** Not a part: rewrites docs/performance.md's tables from the results already in bench/results. */
const DOC = 'doc';

async function writeDoc(): Promise<void> {
  const file = (await import('../bench/perf-doc')).writePerfDoc();
  console.log(`rewrote the tables of ${file} from bench/results`);
}

async function usage(): Promise<string> {
  const parts = await Promise.all(
    NAMES.map(async (name) => `  ${name.padEnd(9)} ${(await PARTS[name]()).description}`),
  );
  return `usage: npm run bench [-- PART ...]

Runs the benchmark parts named (all of them by default, in this order), prints a table per part
and writes bench/results/PART.json. Each part starts what it needs and stops it.

parts:
${parts.join('\n')}

  ${DOC.padEnd(9)} no benchmark: rewrite docs/performance.md's tables from bench/results/*.json
            (every part above does it after writing its results)

  -h, --help  this help`;
}

async function main(): Promise<number> {
  let wanted: string[];
  try {
    const { values, positionals } = parseArgs({
      options: { help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(await usage());
      return 0;
    }
    wanted = positionals;
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n(npm run bench -- --help for usage)`);
    return 2;
  }
  if (wanted.length === 1 && wanted[0] === DOC) {
    await writeDoc();
    return 0;
  }
  const unknown = wanted.filter((name) => !isPart(name));
  if (unknown.length) {
    console.error(`bench: unknown part(s): ${unknown.join(', ')}; the parts are ${NAMES.join(', ')}`);
    return 2;
  }
  const names = wanted.length ? NAMES.filter((name) => wanted.includes(name)) : NAMES;
  console.log(`node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString()}`);
  try {
    for (const name of names) {
      const part = await PARTS[name]();
      console.log(`\nrunning ${part.name}: ${part.description}`);
      const started = Date.now();
      const { rows, details } = await part.run();
      printTable(part.name, rows);
      const file = writeReport(part.name, {
        part: part.name,
        description: part.description,
        node: process.version,
        ranAt: new Date().toISOString(),
        seconds: (Date.now() - started) / 1000,
        rows,
        details,
      });
      console.log(`\nwrote ${file}`);
      await writeDoc();
    }
  } finally {
    await (await import('../bench/stack')).stopBenchStack();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
