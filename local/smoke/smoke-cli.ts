import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { decodeJwt } from 'jose';
import type { AdminResponse, HealthReport } from '../../lambda/core/admin';
import { FUNCTIONS, LOCAL_STAGE } from '../../lambda/core/resources';
import { readStackOutputs, StackOutputError, stackJwtSecret, stackOutput } from '../admin/stack-outputs';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../aws-clients';
import { signDevToken } from '../dev-tokens';
import { findLocalStack, LocalStackNotFoundError, tokenSecretMismatch } from '../discovery';
import { UsageError } from '../errors';
import { runSmokeChecks, type SmokeTarget, smokeChecks } from './checks';
import { describeNetworkError, SmokeFailure } from './session';

export const SMOKE_USAGE = `usage: npm run smoke -- [--stack NAME | --url WS_URL] [--token JWT] [options]

Checks a stack end to end, one line per check, and stops at the first failure:
health, connect, a chat reply, a burst of 30 messages that queues, status, admin usage.

target (the \`npm start\` of this checkout by default, whatever its PORT):
  --url URL        a WebSocket URL: ws://localhost:PORT/${LOCAL_STAGE} is a local stack (health from
                   GET /health, usage through its Lambda Invoke API); a wss:// URL needs --stack or
                   --function for the health and usage checks
  --stack NAME     a deployed stack: URL, admin function and token secret from its outputs
  --region R       AWS region of --stack / --function
  --function NAME  the admin function (name or ARN) of a deployed stack, for --url wss://…
  --token JWT      the token to connect with (its sub is the user checked); without it a token is
                   signed for a fresh user: with the development secret (or JWT_SECRET) locally,
                   with the stack's own secret for --stack (read with your AWS credentials)
  --user NAME      the user of that signed token (default: smoke-<random>)
  --timeout S      seconds each check may take (default 30; the burst gets 4 times as long)
  -h, --help       this help

exit status: 0 every check passed, 1 a check failed (or the stack was not found), 2 bad arguments`;

/** A command line the smoke check cannot run: the message says what is wrong. */
interface SmokeArgs {
  readonly url?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly function?: string;
  readonly token?: string;
  readonly user?: string;
  readonly timeoutMs: number;
}

interface Io {
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
};

/** Runs `npm run smoke`; resolves with the exit code (0 passed, 1 a check failed, 2 bad input). */
export async function runSmokeCli(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  let args: SmokeArgs | 'help';
  try {
    args = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError || isParseArgsError(err))) throw err;
    io.err(`smoke: ${(err as Error).message}\n(npm run smoke -- --help for usage)`);
    return 2;
  }
  if (args === 'help') {
    io.out(SMOKE_USAGE);
    return 0;
  }
  let target: SmokeTarget & { readonly source: string };
  try {
    target = await resolveTarget(args);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`smoke: ${err.message}\n(npm run smoke -- --help for usage)`);
      return 2;
    }
    if (
      !(
        err instanceof LocalStackNotFoundError ||
        err instanceof StackOutputError ||
        err instanceof SmokeFailure
      )
    )
      throw err;
    io.err(`smoke: ${err.message}`);
    return 1;
  }
  io.out(`smoke: ${target.wsUrl} as ${target.userId} (${target.source})`);
  const { checks, close } = smokeChecks(target, {
    timeoutMs: args.timeoutMs,
    burstTimeoutMs: args.timeoutMs * 4,
  });
  try {
    const failed = await runSmokeChecks(checks, io.out);
    if (failed) {
      io.err(`smoke: failed at "${failed}"`);
      return 1;
    }
    io.out(`smoke: all ${checks.length} checks passed`);
    return 0;
  } finally {
    close();
  }
}

function parse(argv: readonly string[]): SmokeArgs | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      stack: { type: 'string' },
      region: { type: 'string' },
      function: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  if (values.url !== undefined && !/^wss?:\/\/./.test(values.url))
    throw new UsageError(`--url must be a ws:// or wss:// URL, got '${values.url}'`);
  if (values.url?.startsWith('wss://') && !values.stack && !values.function)
    throw new UsageError(
      '--url wss://… needs --stack NAME or --function ADMIN_FUNCTION for the health and usage checks',
    );
  if (values.token !== undefined && values.user !== undefined)
    throw new UsageError("--user names the user of a signed token; with --token the token's sub is the user");
  const timeout = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!(timeout > 0))
    throw new UsageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
  return {
    url: values.url,
    stack: values.stack,
    region: values.region,
    function: values.function,
    token: values.token,
    user: values.user,
    timeoutMs: Math.round(timeout * 1000),
  };
}

/** node:util parseArgs reports unknown options and missing values as coded TypeErrors. */
function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
}

async function resolveTarget(args: SmokeArgs): Promise<SmokeTarget & { readonly source: string }> {
  const user = args.user ?? `smoke-${randomUUID().slice(0, 8)}`;
  if (args.stack || args.url?.startsWith('wss://')) {
    const outputs = args.stack ? await readStackOutputs(args.stack, args.region) : {};
    const wsUrl = args.url ?? stackOutput(outputs, 'WebSocketUrl', args.stack!);
    const functionName = args.function ?? stackOutput(outputs, 'AdminFunctionName', args.stack!);
    const token =
      args.token ??
      (await signDevToken({ userId: user, secret: await stackJwtSecret(args.stack!, args.region, outputs) }));
    const lambda = new LambdaClient({ region: args.region });
    return {
      wsUrl,
      token,
      userId: userOf(token),
      source: args.stack ? `stack ${args.stack}` : '--url',
      health: async (timeoutMs) =>
        healthOf(await invokeAdmin(lambda, functionName, { operation: 'health' }, timeoutMs)),
      admin: (payload, timeoutMs) => invokeAdmin(lambda, functionName, payload, timeoutMs),
    };
  }
  let wsUrl = args.url;
  let source = '--url';
  let mismatch: string | undefined;
  if (!wsUrl) {
    const local = findLocalStack({ flag: `--url ws://localhost:PORT/${LOCAL_STAGE}` });
    wsUrl = local.wsUrl;
    source = local.source;
    mismatch = tokenSecretMismatch(local);
  }
  if (!args.token && mismatch) throw new SmokeFailure(`${mismatch} (or pass --token)`);
  const token = args.token ?? (await signDevToken({ userId: user }));
  // The local gateway serves GET /health and the Lambda Invoke API on the WebSocket's host.
  const httpUrl = new URL(wsUrl.replace(/^ws/, 'http')).origin;
  const lambda = new LambdaClient({
    endpoint: httpUrl,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  return {
    wsUrl,
    token,
    userId: userOf(token),
    source,
    health: (timeoutMs) => localHealth(`${httpUrl}/health`, timeoutMs),
    admin: (payload, timeoutMs) => invokeAdmin(lambda, FUNCTIONS.admin.id, payload, timeoutMs),
  };
}

/** The user a token is for (its `sub`); the token is not verified here, the stack does that. */
function userOf(token: string): string {
  let sub: unknown;
  try {
    sub = decodeJwt(token).sub;
  } catch (err) {
    throw new UsageError(`--token is not a JWT (${(err as Error).message})`);
  }
  if (typeof sub !== 'string' || !sub) throw new UsageError('--token has no sub claim');
  return sub;
}

/** GET /health of a local gateway: 200 healthy, 503 with the report of what does not answer. */
async function localHealth(url: string, timeoutMs: number): Promise<HealthReport> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new SmokeFailure(describeNetworkError(err, url));
  }
  const text = await response.text();
  let body: Partial<HealthReport> & { error?: string };
  try {
    body = JSON.parse(text);
  } catch {
    throw new SmokeFailure(`${url} answered ${response.status} with no health report: ${text.slice(0, 120)}`);
  }
  if (!body.tables || !body.queues)
    throw new SmokeFailure(`${url} answered ${response.status}: ${body.error ?? text.slice(0, 120)}`);
  return body as HealthReport;
}

async function invokeAdmin(
  client: LambdaClient,
  functionName: string,
  payload: Record<string, unknown>,
  timeoutMs: number,
): Promise<AdminResponse> {
  let text: string;
  try {
    const response = await client.send(
      new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
      { abortSignal: AbortSignal.timeout(timeoutMs) },
    );
    text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : 'null';
    if (response.FunctionError)
      throw new SmokeFailure(`the admin function failed (${response.FunctionError}): ${text}`);
  } catch (err) {
    if (err instanceof SmokeFailure) throw err;
    throw new SmokeFailure(`invoking ${functionName}: ${describeNetworkError(err, functionName)}`);
  }
  return JSON.parse(text) as AdminResponse;
}

function healthOf(response: AdminResponse): HealthReport {
  if (!response.ok) throw new SmokeFailure(`${response.error.code}: ${response.error.message}`);
  return response.result as HealthReport;
}
