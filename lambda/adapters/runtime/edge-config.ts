import { ConfigError } from '../../core/errors';
import { ENV, FUNCTIONS, TABLES, type TableKey } from '../../core/resources';

/**
 * The configuration of `$connect` and `$disconnect`, read at cold start like lambda/config.ts reads
 * it for the chat functions, but only the variables these two use and without zod (most of their
 * bundle otherwise). Same names, same defaults, same refusals: test/unit/edge-config.test.ts holds
 * the two parsers to each other.
 */
export interface EdgeConfig {
  /** Names of the tables this function was given (FUNCTIONS[fn].tables); others are absent. */
  readonly tables: Readonly<Partial<Record<TableKey, string>>>;
  /** Local emulator only; undefined in AWS. */
  readonly dynamodbEndpoint?: string;
  /** Connection attempts per source IP per minute at `$connect`. @default 20 */
  readonly connectLimitPerMinute: number;
  /** Per-call timeout of the connection bucket's DynamoDB calls. @default 2000 */
  readonly limiterTimeoutMs: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Every bad variable of the edge functions' environment, named in one message. */
export class EdgeConfigError extends ConfigError {
  constructor(problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

/** Parses the environment of `connect` or `disconnect`; throws naming every bad variable. */
export function parseEdgeConfig(fn: 'connect' | 'disconnect', env: Env = process.env): EdgeConfig {
  const problems: string[] = [];
  const value = (name: string) => env[name] || undefined; // an empty variable means "not set"
  const integer = (name: string, min: number, fallback: number) => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      problems.push(`${name}: an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const url = (name: string) => {
    const raw = value(name);
    if (raw !== undefined && !URL.canParse(raw)) problems.push(`${name}: a URL, got ${JSON.stringify(raw)}`);
    return raw;
  };
  const tables: Partial<Record<TableKey, string>> = {};
  for (const { table } of FUNCTIONS[fn].tables) {
    const name = TABLES[table].env;
    tables[table] = value(name);
    if (!tables[table]) problems.push(`${name} is required`);
  }
  const config: EdgeConfig = {
    tables: Object.freeze(tables),
    dynamodbEndpoint: url(ENV.dynamodbEndpoint),
    connectLimitPerMinute: integer(ENV.connectLimitPerMinute, 1, 20),
    limiterTimeoutMs: integer(ENV.limiterTimeoutMs, 1, 2000),
  };
  if (problems.length) throw new EdgeConfigError(problems);
  return Object.freeze(config);
}
