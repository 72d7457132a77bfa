import { parseArgs } from 'node:util';
import { parseAdvance, renderClock, requestClock } from '../clock';
import { UsageError } from '../errors';
import { callLocalStack, type Io, isLocalCommand, usageFailure } from './local-command';

/** `npm run admin -- clock [--advance D]`: the flags it takes. */
const CLOCK_OPTIONS = {
  advance: { type: 'string' },
  endpoint: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  function: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/**
 * `--advance -3d` as `--advance=-3d`: parseArgs would otherwise call `-3d` an ambiguous option, and
 * the person should hear that the clock only moves forward.
 */
function joinNegativeAdvance(argv: readonly string[]): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === '--advance' && next?.startsWith('-')) {
      args.push(`--advance=${next}`);
      i++;
    } else args.push(argv[i]!);
  }
  return args;
}

/** Is this command line `clock …`? */
export const isClockCommand = (argv: readonly string[]) => isLocalCommand(argv, 'clock', CLOCK_OPTIONS);

/**
 * Prints the local stack's clock, or moves it forward with `--advance`. Local only: a deployed
 * stack runs on AWS's clock, which no one moves, so `--stack` and `--function` are refused (exit 2).
 * Resolves with the exit code: 0 ok, 1 the stack did not answer, 2 bad input.
 */
export async function runClockCommand(argv: readonly string[], io: Io): Promise<number> {
  let values: ReturnType<
    typeof parseArgs<{ options: typeof CLOCK_OPTIONS; allowPositionals: true }>
  >['values'];
  let advanceMs: number | undefined;
  try {
    const parsed = parseArgs({
      args: joinNegativeAdvance(argv),
      options: CLOCK_OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    const extra = parsed.positionals.slice(1);
    if (extra.length > 0) throw new UsageError(`clock takes no userId: unexpected ${extra.join(' ')}`);
    if (values.stack !== undefined || values.function !== undefined || values.region !== undefined) {
      throw new UsageError(
        'clock is local only: a deployed stack runs on AWS’s clock, which cannot be read as another ' +
          'instant or moved (leave out --stack/--function/--region, and run it against `npm start`)',
      );
    }
    if (values.advance !== undefined) {
      const ms = parseAdvance(values.advance);
      if (ms instanceof Error) throw new UsageError(ms.message);
      advanceMs = ms;
    }
  } catch (err) {
    return usageFailure(err, io);
  }
  const done = await callLocalStack(values.endpoint, io, async (target) => {
    const answer = await requestClock(target.httpUrl, advanceMs);
    io.out(values.json ? JSON.stringify(answer, null, 2) : renderClock(answer));
  });
  return done ? 0 : 1;
}
