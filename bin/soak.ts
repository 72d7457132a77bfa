/**
 * `npm run soak -- --runs N [--seed S] [--family F]`: the fault-and-timeline harness
 * (test/model/harness) for longer than CI runs it: N randomized runs per family on embedded
 * emulators, each failure shrunk and printed with its seed, path and replay command.
 */
import '../local/quiet-sdk-notice';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { localDynamoClient, localSqsClient } from '../local/aws-clients';
import { startEmulators } from '../local/emulators';
import { createLocalResources } from '../local/resources';
import { FAMILIES, type Family } from '../test/model/harness/commands';
import { runFamily } from '../test/model/harness/property';

const USAGE = `usage: npm run soak -- [--runs N] [--seed S] [--family F ...] [--path P --replay-path R]

Runs the fault-and-timeline harness (docs/reliability.md, "harness") on embedded dynalite: for each
family, N randomized runs of commands (sends, cancels, processor receives, runner events, clock
advances, faults and crashes), the invariants checked after every command and after the drain.
A failure is shrunk and printed with its seed and path; replay it with the same --seed, --path and
--replay-path (or the HARNESS_* variables with vitest).

  --runs N         runs per family (default 100)
  --seed S         base seed (default: a random one, printed)
  --family F       one of ${FAMILIES.join(', ')} (repeatable; default all)
  --path P         replay the run at this path (with --seed; one family)
  --replay-path R  the commands' replay path printed with a failure (with --path)
  --time-limit S   stop shrinking a failure after S seconds (default 120)
  -h, --help       this help

Exit status: 0 every family held, 1 a family failed, 2 bad arguments.`;

interface SoakArgs {
  readonly runs: number;
  readonly seed: number;
  readonly families: readonly Family[];
  readonly path?: string;
  readonly replayPath?: string;
  readonly timeLimitMs: number;
}

function parse(argv: readonly string[]): SoakArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      family: { type: 'string', multiple: true },
      path: { type: 'string' },
      'replay-path': { type: 'string' },
      'time-limit': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return 'help';
  if (positionals.length) throw new Error(`unexpected argument: ${positionals[0]}`);
  const int = (name: string, text: string | undefined, fallback: number, min: number) => {
    if (text === undefined) return fallback;
    if (!/^-?\d+$/.test(text) || Number(text) < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return Number(text);
  };
  const families = (values.family ?? [...FAMILIES]).map((f) => {
    if (!(FAMILIES as readonly string[]).includes(f)) {
      throw new Error(`unknown family "${f}"; the families are ${FAMILIES.join(', ')}`);
    }
    return f as Family;
  });
  if (values.path !== undefined && (values.seed === undefined || families.length !== 1)) {
    throw new Error('--path replays one run: give --seed and exactly one --family');
  }
  if (values['replay-path'] !== undefined && values.path === undefined) {
    throw new Error('--replay-path goes with --path');
  }
  return {
    runs: int('runs', values.runs, 100, 1),
    seed: int('seed', values.seed, randomInt(2 ** 31 - 1), -(2 ** 31)),
    families,
    path: values.path,
    replayPath: values['replay-path'],
    timeLimitMs: int('time-limit', values['time-limit'], 120, 1) * 1000,
  };
}

async function main(): Promise<number> {
  let args: SoakArgs;
  try {
    const parsed = parse(process.argv.slice(2));
    if (parsed === 'help') {
      console.log(USAGE);
      return 0;
    }
    args = parsed;
  } catch (err) {
    console.error(`soak: ${(err as Error).message}\n(npm run soak -- --help for usage)`);
    return 2;
  }
  const emulators = await startEmulators();
  try {
    const dynamo = localDynamoClient(emulators.dynamodbEndpoint);
    const resources = await createLocalResources(dynamo, localSqsClient(emulators.sqsEndpoint), 'soak');
    const env = { dynamo, tables: { limits: resources.tables.limits, requests: resources.tables.requests } };
    console.log(
      `soak: seed ${args.seed}, ${args.runs} run(s) per family, families ${args.families.join(', ')}`,
    );
    let failed = 0;
    for (const family of args.families) {
      const started = Date.now();
      const report = await runFamily(family, env, {
        numRuns: args.path ? 1 : args.runs,
        seed: args.seed,
        path: args.path,
        replayPath: args.replayPath,
        timeLimitMs: args.timeLimitMs,
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (report) {
        failed++;
        console.log(`\n✗ ${family} failed (${seconds} s):\n${report}`);
      } else {
        console.log(`✓ ${family}: ${args.path ? 'the run' : `${args.runs} runs`} held (${seconds} s)`);
      }
    }
    return failed ? 1 : 0;
  } finally {
    await emulators.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
