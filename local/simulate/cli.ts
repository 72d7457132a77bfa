import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lambda/core/errors';
import { type LimitsConfig, parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { errorMessage } from '../error-message';
import { UsageError } from '../errors';
import { simulate } from './engine';
import { renderComparison } from './report';
import type { SimulationResult } from './result';
import { parseTraffic, TrafficError, type TrafficRequest } from './traffic';

export const SIMULATE_USAGE = `usage: npm run simulate -- --traffic FILE --limits FILE [--limits FILE2 ...] [options]

Replays recorded traffic (JSON lines: {"at", "userId", "tier", "team"?, "model"?, "inputTokens",
"outputTokens"}) through the limiter's own rules, once per limits file (LIMITS_CONFIG's JSON), in
simulated time, and prints the configurations side by side.

options:
  --traffic FILE             the traffic (npm run admin -- export-traffic writes one)
  --limits FILE              a limits configuration; repeat to compare several
  --json                     one JSON object per configuration, one per line, in order
  --tokens-per-second N      how fast a reply is written (default 50): its duration
  --max-queue-wait SECONDS   MAX_QUEUE_WAIT_SECONDS (default 900)
  --max-queued N             MAX_QUEUED_PER_USER (default 10)
  -h, --help                 this help

exit: 0 done, 2 a bad command line, traffic line or limits file (named)`;

export interface SimulateIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readFile?: (path: string) => string;
}

const OPTIONS = {
  traffic: { type: 'string' },
  limits: { type: 'string', multiple: true },
  json: { type: 'boolean', default: false },
  'tokens-per-second': { type: 'string' },
  'max-queue-wait': { type: 'string' },
  'max-queued': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** `npm run simulate`: returns the exit code. */
export async function runSimulateCli(argv: readonly string[], io: SimulateIo): Promise<number> {
  try {
    const { values } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: false });
    if (values.help) {
      io.out(`${SIMULATE_USAGE}\n`);
      return 0;
    }
    if (!values.traffic) throw new UsageError('--traffic FILE is required');
    if (!values.limits?.length) throw new UsageError('--limits FILE is required (repeat it to compare)');
    const read = io.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
    const traffic = parseTraffic(readOrFail(read, values.traffic), values.traffic);
    const configs = values.limits.map((file) => ({ file, config: configOf(read, file) }));
    for (const { file, config } of configs) checkModels(traffic, config, values.traffic, file);
    const settings = {
      tokensPerSecond: number(values['tokens-per-second'], '--tokens-per-second', 1e-9),
      maxQueueWaitSeconds: number(values['max-queue-wait'], '--max-queue-wait', 0),
      maxQueuedPerUser: number(values['max-queued'], '--max-queued', 0),
    };
    const results: SimulationResult[] = configs.map(({ file, config }) => ({
      limits: file,
      ...simulate(traffic, config, settings),
    }));
    if (values.json) io.out(results.map((r) => `${JSON.stringify(r)}\n`).join(''));
    else io.out(renderComparison(results));
    return 0;
  } catch (err) {
    const bad =
      err instanceof UsageError ||
      err instanceof ConfigError ||
      (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'));
    if (!bad) throw err;
    io.err(`simulate: ${errorMessage(err)}${err instanceof TrafficError ? '' : ' (see --help)'}\n`);
    return 2;
  }
}

function readOrFail(read: (path: string) => string, path: string): string {
  try {
    return read(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${errorMessage(err)}`);
  }
}

function configOf(read: (path: string) => string, file: string): LimitsConfig {
  try {
    return parseLimitsConfig(readOrFail(read, file));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.message}`);
    throw err;
  }
}

/** A model the configuration does not offer cannot be priced: the line that names it is an error. */
function checkModels(
  traffic: readonly TrafficRequest[],
  config: LimitsConfig,
  trafficFile: string,
  file: string,
): void {
  const ids = new Set(config.models.map((m) => m.id));
  const bad = traffic.find((r) => r.model !== undefined && !ids.has(r.model));
  if (bad) {
    throw new TrafficError(
      `${trafficFile}:${bad.line}: unknown model "${bad.model}" (${file} offers ${[...ids].join(', ')})`,
    );
  }
}

function number(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag}: a number ≥ ${min}, got "${value}"`);
  return n;
}
