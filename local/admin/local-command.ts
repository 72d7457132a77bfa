import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  findLocalStack,
  isConnectionRefused,
  LocalStackNotFoundError,
  type LocalTarget,
  unreachableMessage,
} from '../discovery';
import { UsageError } from '../errors';
import { isParseArgsError } from './args';

/** Where a local-only admin command writes (the CLI: stdout and stderr). */
export type Io = { out: (s: string) => void; err: (s: string) => void };

/**
 * Is this command line the local-only operation `name` (`clock`, `events`): its first positional
 * argument, read with that command's own options so their values are not taken for it.
 */
export function isLocalCommand(
  argv: readonly string[],
  name: string,
  options: NonNullable<ParseArgsConfig['options']>,
): boolean {
  const { positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false });
  return positionals[0] === name;
}

/** What a local-only command does with its arguments' error: said on stderr, exit 2. */
export function usageFailure(err: unknown, io: Io): number {
  if (!(err instanceof UsageError || isParseArgsError(err))) throw err;
  io.err(`admin: ${(err as Error).message}\n(npm run admin -- --help shows every operation and option)`);
  return 2;
}

/**
 * Calls the local stack that `endpoint` names (else this checkout's `npm start`): `{ value }`, or
 * undefined, said on stderr, when no stack is found or it does not answer (the caller's exit 1).
 */
export async function callLocalStack<T>(
  endpoint: string | undefined,
  io: Io,
  call: (target: LocalTarget) => Promise<T>,
): Promise<{ readonly value: T } | undefined> {
  let target: LocalTarget;
  try {
    target = findLocalStack({ endpoint, flag: '--endpoint http://localhost:PORT' });
  } catch (err) {
    if (!(err instanceof LocalStackNotFoundError)) throw err;
    io.err(`admin: ${err.message}`);
    return undefined;
  }
  try {
    return { value: await call(target) };
  } catch (err) {
    if (!isConnectionRefused(err)) throw err;
    io.err(`admin: ${unreachableMessage(target)}`);
    return undefined;
  }
}
