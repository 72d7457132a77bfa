import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ADMIN_OPERATIONS, type AdminResponse } from '../../lambda/core/admin';
import { FUNCTIONS } from '../../lambda/core/resources';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../aws-clients';

export const ADMIN_USAGE = `usage: npm run admin -- <operation> <userId> [options]

operations:
  usage <user>                          limits, usage and queue (consumes nothing)
  reset <user> --scope messages|tokens|all
  set-tier <user> --tier free|pro|enterprise
  set-override <user> [--messages-per-minute N] [--burst N] [--hourly N] [--daily N]
                      [--daily-tokens N] [--max-output N] [--limits JSON] [--expires 2h|ISO-8601]
  clear-override <user>
  purge-queue <user>                    cancel every queued request (clients are told)

target (local by default: the gateway of \`npm start\`):
  --endpoint URL      local gateway (default http://localhost:$PORT or 3001)
  --stack NAME        a deployed stack: the admin function is found from its outputs
  --region R          AWS region of --stack
  --function NAME     invoke this function name or ARN directly
  --json              print the raw JSON response`;

interface Target {
  readonly client: LambdaClient;
  readonly functionName: string;
}

/** Runs `npm run admin`; resolves with the exit code (0 ok, 1 failed, 2 bad input). */
export async function runAdminCli(
  argv: readonly string[],
  io: { out: (s: string) => void; err: (s: string) => void } = {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  },
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${ADMIN_USAGE}`);
    return 2;
  }
  const { payload, options } = parsed;
  const target = await resolveTarget(options);
  const response = await target.client.send(
    new InvokeCommand({ FunctionName: target.functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
  );
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : 'null';
  if (response.FunctionError) {
    io.err(`admin function failed (${response.FunctionError}): ${text}`);
    return 1;
  }
  const result = JSON.parse(text) as AdminResponse;
  if (options.json) io.out(JSON.stringify(result, null, 2));
  else io[result.ok ? 'out' : 'err'](renderHuman(result));
  return result.ok ? 0 : 2;
}

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const OPTIONS = {
  scope: { type: 'string' },
  tier: { type: 'string' },
  limits: { type: 'string' },
  'messages-per-minute': { type: 'string' },
  burst: { type: 'string' },
  hourly: { type: 'string' },
  daily: { type: 'string' },
  'daily-tokens': { type: 'string' },
  'max-output': { type: 'string' },
  expires: { type: 'string' },
  endpoint: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  function: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function parse(argv: readonly string[]): { payload: Record<string, unknown>; options: Options } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const [operation, userId, ...rest] = positionals;
  if (!operation || !(ADMIN_OPERATIONS as readonly string[]).includes(operation)) {
    throw new Error(`unknown operation: ${operation ?? '(none)'}`);
  }
  if (!userId) throw new Error('a userId is required');
  if (rest.length > 0) throw new Error(`unexpected arguments: ${rest.join(' ')}`);
  const payload: Record<string, unknown> = { operation, userId };
  if (operation === 'reset') payload.scope = values.scope ?? 'all';
  if (operation === 'set-tier') payload.tier = values.tier;
  if (operation === 'set-override') {
    const limits: Record<string, unknown> = values.limits ? JSON.parse(values.limits) : {};
    const flags: Record<string, string> = {
      'messages-per-minute': 'messagesPerMinute',
      burst: 'burst',
      hourly: 'hourlyMessages',
      daily: 'dailyMessages',
      'daily-tokens': 'dailyTokens',
      'max-output': 'defaultMaxOutputTokens',
    };
    for (const [flag, field] of Object.entries(flags)) {
      const raw = values[flag as keyof typeof values];
      // Numbers are passed as given; the admin function validates them and names what is wrong.
      if (typeof raw === 'string') limits[field] = Number.isNaN(Number(raw)) ? raw : Number(raw);
    }
    payload.limits = limits;
    if (values.expires) payload.expiresAtEpochMs = parseExpiry(values.expires, Date.now());
  }
  return { payload, options: values };
}

/** `90s`, `30m`, `2h`, `7d` from now, or an ISO-8601 instant. */
export function parseExpiry(text: string, nowMs: number): number {
  const relative = /^(\d+)(s|m|h|d)$/.exec(text);
  if (relative) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return nowMs + Number(relative[1]) * unit;
  }
  const absolute = Date.parse(text);
  if (Number.isNaN(absolute)) throw new Error(`--expires: not a duration (2h) or ISO-8601 time: ${text}`);
  return absolute;
}

async function resolveTarget(options: Options): Promise<Target> {
  if (options.stack || (options.function && !options.endpoint)) {
    const client = new LambdaClient({ region: options.region });
    if (options.function) return { client, functionName: options.function };
    return { client, functionName: await adminFunctionFromStack(options.stack!, options.region) };
  }
  const endpoint = options.endpoint ?? `http://localhost:${process.env.PORT ?? 3001}`;
  const client = new LambdaClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  return { client, functionName: options.function ?? FUNCTIONS.admin.id };
}

async function adminFunctionFromStack(stackName: string, region: string | undefined): Promise<string> {
  const cfn = new CloudFormationClient({ region });
  const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const output = Stacks?.[0]?.Outputs?.find((o) => o.OutputKey?.startsWith('AdminFunctionName'));
  if (!output?.OutputValue) throw new Error(`stack ${stackName} has no AdminFunctionName output`);
  return output.OutputValue;
}

function renderHuman(response: AdminResponse): string {
  if (!response.ok) return `error: ${response.error.code}: ${response.error.message}`;
  const result = response.result as {
    known?: boolean;
    purged?: string[];
    status?: {
      tier: string;
      limits: { name: string; limit: number; used: number; remaining: number; resetAt: number }[];
      queue: { queued: number };
    };
  };
  const lines = [
    `${response.operation} ${response.userId}: ok${result.known === false ? ' (user not seen before)' : ''}`,
  ];
  if (result.purged)
    lines.push(
      `purged ${result.purged.length} queued request(s)${result.purged.length ? `: ${result.purged.join(', ')}` : ''}`,
    );
  if (result.status) {
    lines.push(`tier: ${result.status.tier}   queued: ${result.status.queue.queued}`);
    for (const l of result.status.limits) {
      lines.push(
        `  ${l.name.padEnd(16)} ${String(l.used).padStart(9)} used of ${String(l.limit).padEnd(9)} resets ${new Date(l.resetAt).toISOString()}`,
      );
    }
  }
  return lines.join('\n');
}
