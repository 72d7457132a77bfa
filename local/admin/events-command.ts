import { parseArgs } from 'node:util';
import { UsageError } from '../errors';
import { type LocalEvent, renderEvent, requestEvents } from '../events';
import { callLocalStack, type Io, isLocalCommand, usageFailure } from './local-command';

/** `npm run admin -- events [--follow] [--json]`: the flags it takes. */
const EVENTS_OPTIONS = {
  follow: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  endpoint: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  function: { type: 'string' },
} as const;

/** How often `--follow` asks the stack for new events. */
const FOLLOW_EVERY_MS = 1000;

export interface EventsCommandOptions {
  /** `--follow` stops when this aborts (a test; the person: Ctrl-C). */
  readonly signal?: AbortSignal;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Is this command line `events …`? */
export const isEventsCommand = (argv: readonly string[]) => isLocalCommand(argv, 'events', EVENTS_OPTIONS);

/**
 * Prints the events the local stack kept: one line each, or with `--json` a JSON array (with
 * `--follow`, one JSON object a line). Local only: in AWS they go to the default bus, where a rule
 * sends them on (docs/operations.md). Resolves with the exit code: 0 ok, 1 no stack, 2 bad input.
 */
export async function runEventsCommand(
  argv: readonly string[],
  io: Io,
  options: EventsCommandOptions = {},
): Promise<number> {
  let values: { follow?: boolean; json?: boolean; endpoint?: string };
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: EVENTS_OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    const extra = parsed.positionals.slice(1);
    if (extra.length > 0) throw new UsageError(`events takes no userId: unexpected ${extra.join(' ')}`);
    const { stack, function: fn, region } = parsed.values;
    if (stack !== undefined || fn !== undefined || region !== undefined)
      throw new UsageError(
        'events is local only: a deployed stack publishes to the default EventBridge bus; a rule ' +
          'sends them to email or chat (docs/operations.md#events)',
      );
  } catch (err) {
    return usageFailure(err, io);
  }
  const done = await callLocalStack(values.endpoint, io, (target) =>
    printEvents(target.httpUrl, values, io, options),
  );
  return done ? done.value : 1;
}

async function printEvents(
  httpUrl: string,
  flags: { follow?: boolean; json?: boolean },
  io: Io,
  options: EventsCommandOptions,
): Promise<number> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const events = await requestEvents(httpUrl);
  if (!flags.follow) {
    io.out(flags.json ? JSON.stringify(events, null, 2) : events.map(renderEvent).join('\n'));
    return 0;
  }
  const print = (list: readonly LocalEvent[]) => {
    for (const event of list) io.out(flags.json ? JSON.stringify(event) : renderEvent(event));
  };
  print(events);
  let after = events.at(-1)?.id ?? 0;
  while (!options.signal?.aborted) {
    await sleep(FOLLOW_EVERY_MS);
    const more = await requestEvents(httpUrl, after);
    print(more);
    after = more.at(-1)?.id ?? after;
  }
  return 0;
}
