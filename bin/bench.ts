/**
 * `npm run bench [-- part ...]`: runs the benchmark parts (all by default), prints a table per part
 * and writes bench/results/<part>.json.
 */
import { PARTS } from '../bench/index';
import { printTable, writeReport } from '../bench/report';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<number> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !PARTS.some((p) => p.name === w));
  if (unknown.length) {
    console.error(
      `unknown bench part(s): ${unknown.join(', ')}; parts: ${PARTS.map((p) => p.name).join(', ')}`,
    );
    return 2;
  }
  const parts = wanted.length ? PARTS.filter((p) => wanted.includes(p.name)) : PARTS;
  console.log(`node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString()}`);
  for (const part of parts) {
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
  }
  await (await import('../bench/stack')).stopBenchStack();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
