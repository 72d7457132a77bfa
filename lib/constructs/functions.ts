import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Stack } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ENV,
  FUNCTIONS,
  type FunctionDefinition,
  type FunctionKey,
  QUEUES,
  type QueueKey,
  TABLES,
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
  /** Repository root (entries and lockfile are relative to it). @default two levels up */
  readonly projectRoot?: string;
}

/**
 * One NodejsFunction per entry of `FUNCTIONS`: esbuild-bundled, minified, with source maps, on
 * arm64 and a current Node.js runtime, JSON logs into a log group with retention. The table and
 * queue environment variables each function gets are granted in the same place, read-only where
 * the definition says so: a function can touch exactly what its definition lists.
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
        logGroup,
        loggingFormat: LoggingFormat.JSON,
        environment: {
          ...props.environment,
          ...props.functionEnvironment?.[key],
          POWERTOOLS_SERVICE_NAME: 'chat-limiter',
          POWERTOOLS_METRICS_NAMESPACE: 'ChatLimiter',
          NODE_OPTIONS: '--enable-source-maps',
        },
        bundling: {
          minify: true,
          sourceMap: true,
          target: 'node22',
          format: OutputFormat.CJS,
        },
      });
      for (const { table, access } of def.tables) {
        fn.addEnvironment(TABLES[table].env, props.tables[table].tableName);
        if (access === 'read') props.tables[table].grantReadData(fn);
        else props.tables[table].grantReadWriteData(fn);
      }
      for (const { queue, access } of def.queues ?? []) {
        const env = QUEUES[queue].env;
        if (env) fn.addEnvironment(env, props.queues[queue].queueUrl);
        if (access === 'send') props.queues[queue].grantSendMessages(fn);
        else props.queues[queue].grantConsumeMessages(fn);
      }
      functions[key] = fn;
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
