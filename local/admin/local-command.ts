import { type ParseArgsConfig, parseArgs } from 'node:util';

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
