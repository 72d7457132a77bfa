import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { drain } from './actions';
import { commandsOf, type Family, type HarnessStep, skewsArb, startArb, usersOf } from './commands';
import { checkSettled } from './invariants';
import { HARNESS_GLOBAL, World } from './world';

export interface HarnessEnv {
  readonly dynamo: DynamoDBClient;
  readonly tables: { readonly limits: string; readonly requests: string };
}

export interface HarnessRun {
  readonly numRuns: number;
  readonly seed?: number;
  readonly path?: string;
  /** fast-check's `replayPath` of the commands (printed with a failure), to replay faster. */
  readonly replayPath?: string;
  /** Stop shrinking after this long (the failure found so far is reported). */
  readonly timeLimitMs?: number;
  /** Shrink a failure to a smaller counterexample. @default true */
  readonly shrink?: boolean;
}

let runSeq = 0;

/**
 * One family's property: a start near a time boundary, skewed instance clocks, and a sequence of
 * commands; after them the drain and the settled invariants. Users are new in every run (the
 * tables are shared by the runs of one process).
 */
export function familyProperty(family: Family, env: HarnessEnv, replayPath?: string) {
  return fc.asyncProperty(
    startArb(family),
    skewsArb,
    commandsOf(family, replayPath),
    async (startMs, skews, cmds) => {
      const run = ++runSeq;
      const w = new World({
        dynamo: env.dynamo,
        tables: env.tables,
        startMs,
        skewsMs: skews,
        users: Array.from({ length: usersOf(family) }, (_, i) => `h${process.pid}-${run}-${i}`),
        global: family === 'global' ? HARNESS_GLOBAL : undefined,
      });
      if (w.global) await w.clearGlobal();
      w.trace(`start ${new Date(startMs).toISOString()} skews ${skews.join(',')} ms`);
      try {
        await fc.asyncModelRun(() => ({ model: {}, real: w }), cmds);
        await drain(w);
        await checkSettled(w);
      } catch (err) {
        if (w.violations.length === 0) throw err;
      }
      if (process.env.HARNESS_TRACE) console.info(w.log.join('\n'));
      if (w.violations.length > 0) {
        throw new Error(
          `${w.violations.join('\n')}\n--- trace (last lines) ---\n${w.log.slice(-Number(process.env.HARNESS_TRACE_LINES ?? 40)).join('\n')}`,
        );
      }
    },
  );
}

/**
 * Runs one family and returns fast-check's report, or undefined when it held. The report names the
 * seed, the path and the shrunk counterexample, and how to replay it.
 */
export async function runFamily(
  family: Family,
  env: HarnessEnv,
  options: HarnessRun,
): Promise<string | undefined> {
  const details = await fc.check(familyProperty(family, env, options.replayPath), {
    numRuns: options.numRuns,
    seed: options.seed,
    path: options.path,
    endOnFailure: options.shrink === false,
    interruptAfterTimeLimit: options.timeLimitMs,
    markInterruptAsFailure: false,
  });
  if (!details.failed) return undefined;
  const report = fc.defaultReportMessage(details) ?? 'failed';
  // Commands replay from the seed and path only with their own replay path (printed in the report).
  const replayPath = /replayPath="([^"]*)"/.exec(report)?.[1] ?? '';
  const path = details.counterexamplePath ?? '';
  const replay =
    `replay: HARNESS_FAMILY=${family} HARNESS_SEED=${details.seed} HARNESS_PATH=${path} HARNESS_REPLAY_PATH='${replayPath}' ` +
    `npx vitest run test/model/harness.test.ts\n    or: npm run soak -- --family ${family} --seed ${details.seed} --path ${path} --replay-path '${replayPath}'`;
  const error =
    details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  return `${report}\n--- what broke ---\n${error}\n${replay}`;
}

/**
 * Runs one fixed sequence of commands (a shrunk counterexample, written out) through the same
 * world, drain and invariants; returns the violations (empty when every invariant held).
 */
export async function runScenario(
  env: HarnessEnv,
  setup: {
    readonly startMs: number;
    readonly skewsMs?: readonly [number, number, number, number];
    /** With the `global` family's stack-wide limits. */
    readonly global?: boolean;
  },
  steps: readonly HarnessStep[],
): Promise<{ violations: string[]; log: string[] }> {
  const run = ++runSeq;
  const w = new World({
    dynamo: env.dynamo,
    tables: env.tables,
    startMs: setup.startMs,
    skewsMs: setup.skewsMs ?? [0, 0, 0, 0],
    users: [`s${process.pid}-${run}-0`],
    global: setup.global ? HARNESS_GLOBAL : undefined,
  });
  if (w.global) await w.clearGlobal();
  try {
    for (const step of steps) await step.run({}, w);
    await drain(w);
    await checkSettled(w);
  } catch (err) {
    if (w.violations.length === 0) throw err;
  }
  return { violations: w.violations, log: w.log };
}
