import * as z from 'zod';
import { DEFAULT_CONVERSATION_TTL_SECONDS, DEFAULT_CONVERSATION_TURNS } from './core/conversation';
import { ConfigError } from './core/errors';
import type { GlobalLimits } from './core/limiter/global/limits';
import { type LimitsConfig, parseLimitsConfig, type TierLimits } from './core/limiter/policy';
import { ECHO_MODEL, FREE_PRICE, type ModelSpec } from './core/models';
import { ENV, FUNCTIONS, type FunctionKey, QUEUES, TABLES, type TableKey } from './core/resources';

/**
 * Configuration of the chat functions, parsed once at cold start from the environment the stack
 * (or the local stack) sets. A missing or malformed value throws with the variable's name, so a
 * misconfigured function fails at its first invocation instead of misbehaving (a `ConfigError`).
 */
export interface ChatConfig {
  /** Names of the tables this function was given (FUNCTIONS[fn].tables); others are absent. */
  readonly tables: Readonly<Partial<Record<TableKey, string>>>;
  readonly requestQueueUrl?: string;
  /** Set for functions that move failed requests to the DLQ (the processor). */
  readonly deadLetterQueueUrl?: string;
  /** Set for functions that post to connections. */
  readonly wsManagementEndpoint?: string;
  /** Set for functions that hand replies to the reply runner (FUNCTIONS[fn].invokes). */
  readonly replyFunctionName?: string;
  /** Local only: the local gateway's Lambda Invoke API; undefined in AWS. */
  readonly lambdaEndpoint?: string;
  /** Local only: the local stack's EventBridge PutEvents; undefined in AWS (the default bus). */
  readonly eventsEndpoint?: string;
  /** Local emulators only; undefined in AWS. */
  readonly dynamodbEndpoint?: string;
  readonly sqsEndpoint?: string;
  readonly tiers: TierLimits;
  /** The models offered, with prices (LIMITS_CONFIG `models`, else the one MODEL configures). */
  readonly models: readonly ModelSpec[];
  /** Stack-wide limits (LIMITS_CONFIG `global`), when any is set. */
  readonly global?: GlobalLimits;
  /** Team limits (LIMITS_CONFIG `teams`, `teamDefaults`; SPEC §9.4), when any is set. */
  readonly teams?: Readonly<Record<string, GlobalLimits>>;
  readonly teamDefaults?: GlobalLimits;
  /** @default 'open' */
  readonly failPolicy: 'open' | 'closed';
  /** Per-call timeout of the limiter's DynamoDB calls. @default 2000 */
  readonly limiterTimeoutMs: number;
  /** No answer from the store for this long (with faults) opens the limiter's breaker. @default 3000 */
  readonly breakerSilenceMs: number;
  /** Connection attempts per source IP per minute at `$connect`. @default 20 */
  readonly connectLimitPerMinute: number;
  /** @default 8000 */
  readonly maxMessageChars: number;
  /** @default 10 */
  readonly maxQueuedPerUser: number;
  /** @default 900 */
  readonly maxQueueWaitSeconds: number;
  readonly model: ModelConfig;
  /**
   * The configured model's maximum output per reply: every output allowance is capped at it.
   * @default 4096 for Bedrock (MODEL_MAX_OUTPUT_TOKENS), none for the echo model
   */
  readonly modelMaxOutputTokens?: number;
  /** Earlier turns a conversation's message carries (0: none). @default 20 */
  readonly conversationTurns: number;
  /** @default 86400 */
  readonly conversationTtlSeconds: number;
}

export type ModelConfig =
  | { readonly kind: 'echo'; readonly echoDelayMs: number; readonly echoRepeat: number }
  | { readonly kind: 'bedrock'; readonly modelId: string };

/** The most output tokens a Bedrock model is assumed to produce when the stack does not say. */
export const DEFAULT_BEDROCK_MAX_OUTPUT_TOKENS = 4096;

type Env = Readonly<Record<string, string | undefined>>;

/** What a whole-number variable allows, as its refusal says it. */
const intFrom = (min: number, fallback: number) => {
  const error = `an integer ≥ ${min} (default ${fallback})`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).default(fallback);
};
const url = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
const name = z.string().min(1, { error: 'a name' });

const chatEnvSchema = z.object({
  [ENV.limitsTable]: name.optional(),
  [ENV.connectionsTable]: name.optional(),
  [ENV.requestsTable]: name.optional(),
  [ENV.requestQueueUrl]: url.optional(),
  [ENV.deadLetterQueueUrl]: url.optional(),
  [ENV.wsManagementEndpoint]: url.optional(),
  [ENV.replyFunctionName]: name.optional(),
  [ENV.lambdaEndpoint]: url.optional(),
  [ENV.eventsEndpoint]: url.optional(),
  [ENV.dynamodbEndpoint]: url.optional(),
  [ENV.sqsEndpoint]: url.optional(),
  [ENV.limitsConfig]: z.string().optional(),
  [ENV.failPolicy]: z.enum(['open', 'closed'], { error: 'open or closed (default open)' }).default('open'),
  [ENV.limiterTimeoutMs]: intFrom(1, 2000),
  [ENV.breakerSilenceMs]: intFrom(1, 3000),
  [ENV.connectLimitPerMinute]: intFrom(1, 20),
  [ENV.maxMessageChars]: intFrom(1, 8000),
  [ENV.maxQueuedPerUser]: intFrom(0, 10),
  [ENV.maxQueueWaitSeconds]: intFrom(0, 900),
  [ENV.model]: z.enum(['echo', 'bedrock'], { error: 'echo or bedrock (default echo)' }).default('echo'),
  [ENV.bedrockModelId]: name.optional(),
  [ENV.modelMaxOutputTokens]: z.coerce
    .number({ error: 'an integer ≥ 1' })
    .int({ error: 'an integer ≥ 1' })
    .min(1, { error: 'an integer ≥ 1' })
    .optional(),
  [ENV.echoDelayMs]: intFrom(0, 20),
  [ENV.echoRepeat]: intFrom(1, 1),
  [ENV.conversationTurns]: intFrom(0, DEFAULT_CONVERSATION_TURNS),
  [ENV.conversationTtlSeconds]: intFrom(60, DEFAULT_CONVERSATION_TTL_SECONDS),
});

type ChatEnv = z.infer<typeof chatEnvSchema>;

/**
 * The variables every function reads, parsed; throws one line naming each bad variable, what it
 * allows and what it got (`MAX_QUEUED_PER_USER: an integer ≥ 0 (default 10), got "ten"`).
 */
function parseEnv(env: Env): ChatEnv {
  const given = withoutBlanks(env);
  const parsed = chatEnvSchema.safeParse(given);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const variable = String(issue.path[0]);
    return `${variable}: ${issue.message}, got ${JSON.stringify(given[variable])}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

function modelOf(e: ChatEnv): ModelConfig {
  return e[ENV.model] === 'bedrock'
    ? { kind: 'bedrock', modelId: required(e[ENV.bedrockModelId], ENV.bedrockModelId) }
    : { kind: 'echo', echoDelayMs: e[ENV.echoDelayMs], echoRepeat: e[ENV.echoRepeat] };
}

/**
 * Checks the settings a person chooses (everything but the resources the stack fills in), the
 * way every function will read them: `npm start` calls it before starting anything, so a bad
 * value stops it there instead of failing each invocation (SPEC §9.5). Throws a `ConfigError`
 * of one line naming the variable; LIMITS_CONFIG's names the field.
 */
export function checkSettings(env: Env): void {
  const e = parseEnv(env);
  const model = modelOf(e);
  try {
    limitsOf(e[ENV.limitsConfig] ?? '', model, e[ENV.modelMaxOutputTokens]);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`${ENV.limitsConfig}: ${err.message.replace(/\s*\n\s*/g, ' ')}`, { cause: err });
  }
}

/**
 * Parses the environment of one function. The tables, queue and @connections endpoint listed for it
 * in `FUNCTIONS` are required; everything else has its documented default. Throws an error naming
 * every bad or missing variable.
 */
export function parseFunctionConfig(fn: FunctionKey, env: Env = process.env): ChatConfig {
  const e = parseEnv(env);
  const def = FUNCTIONS[fn];
  const tables: Partial<Record<TableKey, string>> = {};
  for (const { table } of def.tables) tables[table] = required(e[TABLES[table].env], TABLES[table].env);
  const queues: readonly { queue: string }[] = 'queues' in def ? def.queues : [];
  const usesQueue = queues.some(({ queue }) => queue === 'requests');
  const usesDlq = queues.some(({ queue }) => queue === 'dlq');
  const postsToConnections = 'postsToConnections' in def && def.postsToConnections;
  const invokesReply = 'invokes' in def && (def.invokes as readonly string[]).includes('reply');
  const model = modelOf(e);
  return Object.freeze({
    tables: Object.freeze(tables),
    requestQueueUrl: usesQueue ? required(e[ENV.requestQueueUrl], QUEUES.requests.env) : undefined,
    deadLetterQueueUrl: usesDlq ? required(e[ENV.deadLetterQueueUrl], QUEUES.dlq.env) : undefined,
    wsManagementEndpoint: postsToConnections
      ? required(e[ENV.wsManagementEndpoint], ENV.wsManagementEndpoint)
      : undefined,
    replyFunctionName: invokesReply ? required(e[ENV.replyFunctionName], ENV.replyFunctionName) : undefined,
    lambdaEndpoint: e[ENV.lambdaEndpoint],
    eventsEndpoint: e[ENV.eventsEndpoint],
    dynamodbEndpoint: e[ENV.dynamodbEndpoint],
    sqsEndpoint: e[ENV.sqsEndpoint],
    ...limitsOf(e[ENV.limitsConfig] ?? '', model, e[ENV.modelMaxOutputTokens]),
    failPolicy: e[ENV.failPolicy],
    limiterTimeoutMs: e[ENV.limiterTimeoutMs],
    breakerSilenceMs: e[ENV.breakerSilenceMs],
    connectLimitPerMinute: e[ENV.connectLimitPerMinute],
    maxMessageChars: e[ENV.maxMessageChars],
    maxQueuedPerUser: e[ENV.maxQueuedPerUser],
    maxQueueWaitSeconds: e[ENV.maxQueueWaitSeconds],
    model: Object.freeze(model),
    modelMaxOutputTokens:
      e[ENV.modelMaxOutputTokens] ??
      (model.kind === 'bedrock' ? DEFAULT_BEDROCK_MAX_OUTPUT_TOKENS : undefined),
    conversationTurns: e[ENV.conversationTurns],
    conversationTtlSeconds: e[ENV.conversationTtlSeconds],
  });
}

/**
 * The tiers and models: LIMITS_CONFIG's, or, when it names no models, the one `MODEL` configures
 * (echo at its default price; Bedrock at no price unless LIMITS_CONFIG gives one).
 */
function limitsOf(config: string, model: ModelConfig, maxOutputTokens: number | undefined): LimitsConfig {
  const fallback: ModelSpec =
    model.kind === 'bedrock'
      ? {
          id: 'bedrock',
          kind: 'bedrock',
          modelId: model.modelId,
          ...FREE_PRICE,
          maxOutputTokens: maxOutputTokens ?? DEFAULT_BEDROCK_MAX_OUTPUT_TOKENS,
        }
      : { ...ECHO_MODEL, ...(maxOutputTokens ? { maxOutputTokens } : {}) };
  return parseLimitsConfig(config, [fallback]);
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new ConfigError(`invalid configuration: ${name} is required`);
  return value;
}

/** An empty variable means "not set" (CDK and shells both produce them). */
function withoutBlanks(env: Env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => !!entry[1]));
}
