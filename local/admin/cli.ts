import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import type { AdminResponse, HealthReport } from '../../lambda/core/admin';
import type { AuditReport } from '../../lambda/core/queue/audit';
import { FUNCTIONS } from '../../lambda/core/resources';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../aws-clients';
import { localStackNow } from '../clock';
import {
  findLocalStack,
  isConnectionRefused,
  LocalStackNotFoundError,
  type LocalTarget,
  unreachableMessage,
} from '../discovery';
import {
  isParseArgsError,
  type Options,
  type ParsedCommand,
  parseCommand,
  parseExpiry,
  UsageError,
} from './args';
import { isClockCommand, runClockCommand } from './clock-command';
import { isEventsCommand, runEventsCommand } from './events-command';
import { isExportTrafficCommand, runExportTrafficCommand } from './export-traffic-command';
import { adminUsage } from './help';
import {
  renderAdminResponse,
  renderAudit,
  renderHealthReport,
  renderTeamUsage,
  renderTop,
  type TeamUsageResult,
  type TopResult,
} from './render';
import { readStackOutputs, stackOutput } from './stack-outputs';

/** Where the CLI writes: lines of output and of errors. */
export interface AdminIo {
  out(s: string): void;
  err(s: string): void;
}

interface Target {
  readonly client: LambdaClient;
  readonly functionName: string;
  /** The local stack, when the target is one: for messages when it does not answer. */
  readonly local?: LocalTarget;
}

const STDIO: AdminIo = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
};

/** Runs `npm run admin`; resolves with the exit code (0 ok, 1 failed, 2 bad input). */
export async function runAdminCli(argv: readonly string[], io: AdminIo = STDIO): Promise<number> {
  // The stack's clock is the local gateway's, not an admin function's operation.
  if (isClockCommand(argv) && !argv.some((a) => a === '--help' || a === '-h'))
    return runClockCommand(argv, io);
  // The events the local stack kept: its emulated bus's, not an admin function's operation.
  if (isEventsCommand(argv) && !argv.some((a) => a === '--help' || a === '-h'))
    return runEventsCommand(argv, io);
  // Traffic for `npm run simulate`, from the local stack's request log.
  if (isExportTrafficCommand(argv) && !argv.some((a) => a === '--help' || a === '-h'))
    return runExportTrafficCommand(argv, io);
  let parsed: 'help' | ParsedCommand;
  try {
    parsed = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError || isParseArgsError(err))) throw err;
    io.err(`admin: ${(err as Error).message}\n(npm run admin -- --help shows every operation and option)`);
    return 2;
  }
  if (parsed === 'help') {
    io.out(adminUsage());
    return 0;
  }
  const { payload, options } = parsed;
  let target: Target;
  try {
    target = await resolveTarget(options);
  } catch (err) {
    if (!(err instanceof LocalStackNotFoundError)) throw err;
    io.err(`admin: ${err.message}`);
    return 1;
  }
  // Locally "now" is the stack's clock (LOCAL_CLOCK, `clock --advance`): expiries and today are on it.
  const nowMs = target.local ? await localStackNow(target.local.httpUrl) : Date.now();
  if (options.expires && payload.expiresAtEpochMs !== undefined)
    payload.expiresAtEpochMs = parseExpiry(options.expires, nowMs);
  return invokeAndPrint(target, payload, options, nowMs, io);
}

/** Invokes the admin function and prints its answer; resolves with the exit code. */
async function invokeAndPrint(
  target: Target,
  payload: Record<string, unknown>,
  options: Options,
  nowMs: number,
  io: AdminIo,
): Promise<number> {
  let response: InvokeCommandOutput;
  try {
    response = await target.client.send(
      new InvokeCommand({ FunctionName: target.functionName, Payload: Buffer.from(JSON.stringify(payload)) }),
    );
  } catch (err) {
    if (!(target.local && isConnectionRefused(err))) throw err;
    io.err(`admin: ${unreachableMessage(target.local)}`);
    return 1;
  }
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : 'null';
  if (response.FunctionError) {
    io.err(`admin function failed (${response.FunctionError}): ${text}`);
    return 1;
  }
  return printAnswer(JSON.parse(text) as AdminResponse, options, nowMs, io);
}

/** The answer as JSON (`--json`) or for people; `health` and `audit` exit 1 when something is wrong. */
function printAnswer(result: AdminResponse, options: Options, nowMs: number, io: AdminIo): number {
  const json = () => JSON.stringify(result, null, 2);
  if (result.ok && result.operation === 'health') {
    const report = result.result as HealthReport;
    io.out(options.json ? json() : renderHealthReport(report));
    return report.healthy ? 0 : 1;
  }
  if (result.ok && result.operation === 'audit') {
    const report = result.result as AuditReport;
    io.out(options.json ? json() : renderAudit(report));
    return report.ok ? 0 : 1;
  }
  if (options.json) io.out(json());
  else if (result.ok && result.operation === 'top') io.out(renderTop(result.result as TopResult, nowMs));
  else if (result.ok && result.operation === 'team-usage')
    io.out(renderTeamUsage(result.result as TeamUsageResult, nowMs));
  else io[result.ok ? 'out' : 'err'](renderAdminResponse(result, nowMs));
  return result.ok ? 0 : 2;
}

async function resolveTarget(options: Options): Promise<Target> {
  if (options.stack || (options.function && !options.endpoint)) {
    const client = new LambdaClient({ region: options.region });
    if (options.function) return { client, functionName: options.function };
    return { client, functionName: await adminFunctionFromStack(options.stack!, options.region) };
  }
  const local = findLocalStack({ endpoint: options.endpoint, flag: '--endpoint http://localhost:PORT' });
  const client = new LambdaClient({
    endpoint: local.httpUrl,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    // Nothing listening is not a transient fault here: say so at once rather than after retries.
    maxAttempts: 1,
  });
  return { client, functionName: options.function ?? FUNCTIONS.admin.id, local };
}

/** The admin function of a deployed stack, from its `AdminFunctionName` output. */
export async function adminFunctionFromStack(stackName: string, region: string | undefined): Promise<string> {
  return stackOutput(await readStackOutputs(stackName, region), 'AdminFunctionName', stackName);
}
