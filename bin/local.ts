/**
 * `npm start`: the whole stack on this machine — embedded DynamoDB and SQS emulators (or
 * DYNAMODB_ENDPOINT / SQS_ENDPOINT), the tables and queues, the handlers behind a local API
 * Gateway, the queue processor, and the chat page. Prints where everything is and a dev token.
 */
import '../local/quiet-sdk-notice';
import { parseArgs } from 'node:util';
import { checkSettings } from '../lambda/config';
import { stackClock } from '../lambda/core/clock';
import { ConfigError } from '../lambda/core/errors';
import { checkItemSizes } from '../lambda/core/limiter/item/size';
import { parseLimitsConfig } from '../lambda/core/limiter/policy';
import { ECHO_MODEL } from '../lambda/core/models';
import { ENV, LOCAL_STAGE } from '../lambda/core/resources';
import { LOCAL_CLOCK_ENV, parseLocalClock } from '../local/clock';
import { DATA_DIR_ENV, parseDataDir, storageLine } from '../local/data-dir';
import { signDevToken } from '../local/dev-tokens';
import { removeLocalState, writeLocalState } from '../local/discovery';
import { errorMessage } from '../local/error-message';
import { startLocalStack } from '../local/stack';

const USAGE = `usage: npm start

Runs the whole stack on this machine: DynamoDB and SQS emulators, the tables and queues, the
handlers behind a local API Gateway (WebSocket, @connections, Lambda Invoke for admin), the queue
processor and the chat page. Prints the chat page URL with a ready token, then
\`ready: ws://localhost:PORT/${LOCAL_STAGE}\`. Stop it with Ctrl-C.

Settings are environment variables (docs/configuration.md):
  PORT                        gateway port (default 3001; 0 picks a free one)
  JWT_SECRET                  HS256 secret of dev tokens (default: the development secret)
  MODEL                       echo | bedrock (default echo); BEDROCK_MODEL_ID
  ECHO_DELAY_MS               delay between streamed chunks of the echo model (default 20)
  DYNAMODB_ENDPOINT           use this DynamoDB instead of the embedded emulator
  SQS_ENDPOINT                use this SQS instead of the embedded emulator
  DATA_DIR                    keep the tables on disk in this directory across restarts (default:
                              in memory, lost when npm start stops); queues stay in memory
  LIMITS_CONFIG               tier limits as JSON
  LIMITER_FAIL_POLICY         open | closed, when DynamoDB fails
  MAX_QUEUED_PER_USER, MAX_QUEUE_WAIT_SECONDS, MAX_MESSAGE_CHARS, CONNECT_LIMIT_PER_MINUTE
  CONVERSATION_TURNS          earlier turns a conversation's message carries (default 20)
  CONVERSATION_TTL_SECONDS    how long a conversation's turn is kept (default 86400)
  LOCAL_CLOCK                 the stack's clock starts at this ISO instant (e.g. 2026-01-31T23:59:50Z)
                              and runs at real speed: windows, leases, TTL; \`npm run admin -- clock\`
                              prints it, \`clock --advance 3d\` moves it forward

While it runs, it leaves its port and pid in .chat-limiter/local.json (or $CHAT_LIMITER_STATE_DIR),
so \`npm run chat\`, \`admin\` and \`token\` find it whatever its PORT.`;

/** The gateway port and clock, or the exit code when there is nothing to start (help, bad input). */
function parseCommandLine():
  | { port: number; clockStartMs?: number; dataDir?: string }
  | { exitCode: number } {
  try {
    const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
    if (values.help) {
      console.log(USAGE);
      return { exitCode: 0 };
    }
  } catch (err) {
    console.error(`npm start: ${(err as Error).message}\n(npm start -- --help for usage)`);
    return { exitCode: 2 };
  }
  const clockStartMs = parseLocalClock(process.env[LOCAL_CLOCK_ENV]);
  if (clockStartMs instanceof Error) {
    console.error(`npm start: ${clockStartMs.message}`);
    return { exitCode: 2 };
  }
  const dataDir = parseDataDir(process.env[DATA_DIR_ENV], process.env[ENV.dynamodbEndpoint]);
  if (dataDir instanceof Error) {
    console.error(`npm start: ${dataDir.message}`);
    return { exitCode: 2 };
  }
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return { port: 3001, clockStartMs, dataDir };
  const port = Number(raw);
  if (Number.isInteger(port) && port >= 0 && port <= 65_535) return { port, clockStartMs, dataDir };
  console.error(`npm start: PORT must be a port number (0-65535, 0 picks a free one), got '${raw}'`);
  return { exitCode: 2 };
}

/** The settings of `npm start`'s environment that the handlers read. */
function handlerEnvironment(): Record<string, string> {
  const passThrough = [
    ENV.model,
    ENV.bedrockModelId,
    ENV.echoDelayMs,
    ENV.limitsConfig,
    ENV.failPolicy,
    ENV.maxQueuedPerUser,
    ENV.maxQueueWaitSeconds,
    ENV.maxMessageChars,
    ENV.connectLimitPerMinute,
    ENV.conversationTurns,
    ENV.conversationTtlSeconds,
  ];
  const environment: Record<string, string> = {
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  };
  for (const name of passThrough) if (process.env[name]) environment[name] = process.env[name]!;
  return environment;
}

async function main(): Promise<number | undefined> {
  const args = parseCommandLine();
  if ('exitCode' in args) return args.exitCode;
  const environment = handlerEnvironment();
  // Nothing starts half configured: a bad value stops here, naming the variable (SPEC §9.5).
  try {
    checkSettings(process.env);
    const model = environment[ENV.model] === 'bedrock' ? 'bedrock' : 'echo';
    const limits = parseLimitsConfig(environment[ENV.limitsConfig] ?? '', [
      model === 'bedrock'
        ? {
            ...ECHO_MODEL,
            id: 'bedrock',
            kind: 'bedrock',
            modelId: environment[ENV.bedrockModelId] ?? 'unset',
          }
        : ECHO_MODEL,
    ]);
    // No configuration may let a user's limiter item grow near DynamoDB's 400 KB (issue 22).
    checkItemSizes(limits.tiers, {
      maxQueuedPerUser: Number(environment[ENV.maxQueuedPerUser] ?? 10),
      modelIds: limits.models.map((m) => m.id),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`npm start: ${err.message}`);
    return 2;
  }
  // Before the stack fills in the development secret: did the person choose their own?
  const jwtSecret = process.env[ENV.jwtSecret] ? 'custom' : 'development';
  const stack = await startLocalStack({
    port: args.port,
    dynamodbEndpoint: process.env[ENV.dynamodbEndpoint],
    sqsEndpoint: process.env[ENV.sqsEndpoint],
    dataDir: args.dataDir,
    environment,
    clockStartMs: args.clockStartMs,
    // A function's failure shows here (route, error), never the event: no message content.
    log: (line) => console.error(`error: ${line}`),
  });
  const token = await signDevToken({ userId: 'alice' });
  const port = Number(new URL(stack.httpUrl).port);
  const host = `localhost:${port}`;
  const kind = (embedded: boolean) => (embedded ? 'embedded' : 'external');
  console.log(`dynamodb:  ${stack.emulators.dynamodbEndpoint} (${kind(stack.emulators.embedded.dynamodb)})`);
  console.log(`sqs:       ${stack.emulators.sqsEndpoint} (${kind(stack.emulators.embedded.sqs)})`);
  console.log(storageLine(args.dataDir, stack.emulators.embedded.dynamodb));
  console.log(`model:     ${environment[ENV.model] ?? 'echo'}`);
  if (args.clockStartMs !== undefined)
    console.log(
      `clock:     ${new Date(stackClock()).toISOString()} (${LOCAL_CLOCK_ENV}; npm run admin -- clock)`,
    );
  console.log(`chat page: http://${host}/#token=${token}`);
  console.log(`websocket: ws://${host}/${LOCAL_STAGE}?token=<JWT>`);
  console.log(`@connections: http://${host}/${LOCAL_STAGE}/@connections/{connectionId}`);
  console.log(`dev token (user alice, 24 h): ${token}`);
  console.log(
    'more:      npm run token -- --user bob --tier pro | npm run chat -- --user bob | npm run admin -- usage alice',
  );
  // For the other commands: where this stack is, until it exits (however it exits).
  const wsUrl = `ws://${host}/${LOCAL_STAGE}`;
  const startedAt = new Date().toISOString();
  writeLocalState({ pid: process.pid, port, httpUrl: `http://${host}`, wsUrl, jwtSecret, startedAt });
  process.once('exit', () => removeLocalState());
  console.log(`ready: ${wsUrl}`);
  // Tables kept from the last run, queues not: requests that were waiting lost their wake-ups. The
  // sweep re-arms them (the ones due now at once, the rest on its minute schedule).
  if (args.dataDir)
    void stack.runSweep().catch((err) => console.error(`error: sweep failed: ${errorMessage(err)}`));

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    removeLocalState();
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return undefined;
}

main().then(
  (code) => {
    if (code !== undefined) process.exit(code);
  },
  (err) => {
    console.error(`npm start failed: ${errorMessage(err)}`);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      console.error('Port in use: set PORT=3002 (or another free port).');
    process.exit(1);
  },
);
