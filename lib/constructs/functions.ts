import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Stack } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type IDestination, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/core/metrics';
import {
  type AsyncInvokeDefinition,
  ENV,
  FUNCTIONS,
  type FunctionDefinition,
  type FunctionKey,
  QUEUES,
  type QueueKey,
  TABLES,
  type TableAccess,
  type TableDefinition,
  type TableKey,
} from '../../lambda/core/resources';

export interface ChatFunctionsProps {
  readonly tables: Readonly<Record<TableKey, TableV2>>;
  readonly queues: Readonly<Record<QueueKey, Queue>>;
  /** Variables every function gets (limits, model, queue settings...). */
  readonly environment: Readonly<Record<string, string>>;
  /** Extra variables per function (the authorizer's JWT settings). */
  readonly functionEnvironment?: Partial<Record<FunctionKey, Record<string, string>>>;
  /** @default 30 days */
  readonly logRetention?: RetentionDays;
  /** Reserved concurrency of single functions (the reply runner's bound). @default none reserved */
  readonly reservedConcurrency?: Partial<Record<FunctionKey, number>>;
  /** Repository root (entries and lockfile are relative to it). @default two levels up */
  readonly projectRoot?: string;
}

/**
 * One NodejsFunction per entry of `FUNCTIONS`: esbuild-bundled, minified, with source maps, on
 * arm64 and a current Node.js runtime, JSON logs into a log group with retention. The table and
 * queue environment variables each function gets are granted in the same place, with exactly the
 * actions its definition lists: no Scan, no batch writes, nothing it does not call.
 */
export class ChatFunctions extends Construct {
  public readonly functions: Readonly<Record<FunctionKey, NodejsFunction>>;

  constructor(scope: Construct, id: string, props: ChatFunctionsProps) {
    super(scope, id);
    const root = props.projectRoot ?? fileURLToPath(new URL('../..', import.meta.url));
    const functions = {} as Record<FunctionKey, NodejsFunction>;
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const def: FunctionDefinition = FUNCTIONS[key];
      const logGroup = new LogGroup(this, `${def.id}Logs`, {
        retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      });
      // Its own role with nothing but its log group, instead of the broad managed basic role.
      const role = new Role(this, `${def.id}Role`, {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      });
      logGroup.grantWrite(role);
      const fn = new NodejsFunction(this, def.id, {
        role,
        entry: join(root, def.entry),
        handler: def.handler,
        depsLockFilePath: join(root, 'package-lock.json'),
        projectRoot: root,
        runtime: Runtime.NODEJS_22_X,
        architecture: Architecture.ARM_64,
        memorySize: def.memoryMb,
        timeout: Duration.seconds(def.timeoutSeconds),
        reservedConcurrentExecutions: props.reservedConcurrency?.[key],
        logGroup,
        loggingFormat: LoggingFormat.JSON,
        environment: {
          ...props.environment,
          ...props.functionEnvironment?.[key],
          POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          NODE_OPTIONS: '--enable-source-maps',
        },
        bundling: {
          minify: true,
          // Error classes name themselves from `new.target.name` (lambda/*/errors.ts): minified
          // without keepNames, a ConfigError would log as `yr`.
          keepNames: true,
          sourceMap: true,
          target: 'node22',
          format: OutputFormat.CJS,
        },
      });
      for (const access of def.tables) grantTable(fn, access, props.tables[access.table]);
      for (const { queue, actions } of def.queues ?? []) {
        const env = QUEUES[queue].env;
        if (env) fn.addEnvironment(env, props.queues[queue].queueUrl);
        props.queues[queue].grant(fn, ...actions);
      }
      // Operational events (SPEC §9.5): PutEvents on the account's default bus, no other bus.
      if (def.publishesEvents)
        fn.addToRolePolicy(
          new PolicyStatement({
            effect: Effect.ALLOW,
            actions: ['events:PutEvents'],
            resources: [
              Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }),
            ],
          }),
        );
      functions[key] = fn;
    }
    // How Lambda handles each function's asynchronous invocations (the reply runner's: a maximum
    // event age inside the request's lease, one retry, and an on-failure destination).
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const asyncInvoke: AsyncInvokeDefinition | undefined = (FUNCTIONS[key] as FunctionDefinition)
        .asyncInvoke;
      if (asyncInvoke) configureAsyncInvoke(functions[key], FUNCTIONS[key], asyncInvoke, functions);
    }
    // A function that hands work to another gets its name and the right to invoke it, nothing more.
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const def: FunctionDefinition = FUNCTIONS[key];
      for (const target of def.invokes ?? []) {
        functions[key].addEnvironment(ENV.replyFunctionName, functions[target].functionName);
        // The unqualified function only ($LATEST): grantInvoke would add every version (`:*`).
        functions[key].addToRolePolicy(
          new PolicyStatement({
            effect: Effect.ALLOW,
            actions: ['lambda:InvokeFunction'],
            resources: [functions[target].functionArn],
          }),
        );
      }
    }
    this.functions = functions;
  }

  /**
   * Lets the functions that reply to clients post to (and inspect, close) connections of this
   * stage only, and tells them its `@connections` endpoint.
   */
  grantManageConnections(apiId: string, stageName: string, callbackUrl: string): void {
    const stack = Stack.of(this);
    const resource = stack.formatArn({
      service: 'execute-api',
      resource: apiId,
      resourceName: `${stageName}/*/@connections/*`,
    });
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const def: FunctionDefinition = FUNCTIONS[key];
      if (!def.postsToConnections) continue;
      this.functions[key].addEnvironment(ENV.wsManagementEndpoint, callbackUrl);
      this.functions[key].addToRolePolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['execute-api:ManageConnections'],
          resources: [resource],
        }),
      );
    }
  }
}

/**
 * The function's `AWS::Lambda::EventInvokeConfig`. The on-failure destination is a function of
 * this stack: Lambda invokes it with the execution role of the function whose event failed, so
 * that role gets `lambda:InvokeFunction` on the unqualified destination only (CDK's
 * LambdaDestination would grant every version, `:*`).
 */
function configureAsyncInvoke(
  fn: NodejsFunction,
  def: FunctionDefinition,
  config: AsyncInvokeDefinition,
  functions: Readonly<Record<FunctionKey, NodejsFunction>>,
): void {
  const { maxEventAgeSeconds, retryAttempts, onFailure } = config;
  if (!Number.isInteger(maxEventAgeSeconds) || maxEventAgeSeconds < 60 || maxEventAgeSeconds > 21_600)
    throw new Error(`${def.id}: maxEventAgeSeconds must be 60..21600, got ${maxEventAgeSeconds}`);
  if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 2)
    throw new Error(`${def.id}: retryAttempts must be 0..2, got ${retryAttempts}`);
  // An event the reply runner starts must still own its in-flight slot (leased for the Timeout
  // and 60 s from its admission): one older than the lease would run on a slot that may be reused.
  if (maxEventAgeSeconds >= def.timeoutSeconds + 60)
    throw new Error(
      `${def.id}: maxEventAgeSeconds must be shorter than its lease (${def.timeoutSeconds + 60} s)`,
    );
  let destination: IDestination | undefined;
  if (onFailure) {
    const target = functions[onFailure];
    destination = { bind: () => ({ destination: target.functionArn }) };
    fn.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['lambda:InvokeFunction'],
        resources: [target.functionArn],
      }),
    );
  }
  fn.configureAsyncInvoke({
    maxEventAge: Duration.seconds(maxEventAgeSeconds),
    retryAttempts,
    onFailure: destination,
  });
}

/**
 * Tells the function the table's name and grants it the definition's actions: item actions on the
 * table, index actions on each of its named global secondary indexes (no `index/*` wildcard).
 */
function grantTable(fn: NodejsFunction, access: TableAccess, table: TableV2): void {
  const def: TableDefinition = TABLES[access.table];
  fn.addEnvironment(def.env, table.tableName);
  fn.addToRolePolicy(
    new PolicyStatement({ effect: Effect.ALLOW, actions: [...access.actions], resources: [table.tableArn] }),
  );
  if (!access.indexActions?.length) return;
  const indexes = (def.globalIndexes ?? []).filter(
    (i) => !access.indexes || access.indexes.includes(i.indexName),
  );
  if (!indexes.length) throw new Error(`the ${access.table} table has no index for ${access.indexActions}`);
  fn.addToRolePolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: [...access.indexActions],
      resources: indexes.map((index) => `${table.tableArn}/index/${index.indexName}`),
    }),
  );
}
