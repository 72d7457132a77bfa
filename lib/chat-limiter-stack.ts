import {
  Annotations,
  type CfnElement,
  CfnOutput,
  Duration,
  Stack,
  type StackProps,
  Token,
  Validations,
} from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import {
  ENV,
  FUNCTIONS,
  type FunctionKey,
  logGroupOutputName,
  REQUEST_LOG_FUNCTIONS,
  ROUTES,
  type RouteKey,
} from '../lambda/core/resources';
import {
  parseStackConfig,
  type StackConfig,
  StackConfigError,
  type StackConfigInput,
  unpricedBedrockModels,
} from './config';
import {
  type BedrockModelAccess,
  bedrockStatements,
  inferenceProfileOf,
  isSourceRegionOf,
} from './constructs/bedrock-access';
import { ChatFunctions } from './constructs/functions';
import { Monitoring } from './constructs/monitoring';
import { RequestQueues } from './constructs/queues';
import { SweepSchedule } from './constructs/sweep';
import { ChatTables } from './constructs/tables';
import { ChatWebSocketApi } from './constructs/websocket-api';

export interface ChatLimiterStackProps extends StackProps {
  /** The stack configuration (validated; see lib/config.ts and docs/configuration.md). */
  readonly config?: StackConfigInput;
}

/** The whole product in AWS: tables, queue, functions, WebSocket API, monitoring. */
export class ChatLimiterStack extends Stack {
  public readonly config: StackConfig;

  constructor(scope: Construct, id: string, props: ChatLimiterStackProps = {}) {
    super(scope, id, props);
    const config = parseStackConfig(props.config ?? {});
    this.config = config;
    // A model priced 0 makes every cost budget a no-op: say so at synth (issue 23 item 9).
    for (const modelId of unpricedBedrockModels(config))
      Annotations.of(this).addWarningV2(
        'chat-limiter:unpriced-model',
        `Bedrock model ${modelId} has no price (list it in limits.models with inputUsdPerMillion and outputUsdPerMillion): its requests cost $0, so dailyCostUsd, monthlyCostUsd and global cost budgets never bind on it`,
      );
    const logRetention = retention(config.logRetentionDays);

    const { tables } = new ChatTables(this, 'Tables', { retainData: config.retainData });
    const processorTimeout = FUNCTIONS.processor.timeoutSeconds;
    const { queues } = new RequestQueues(this, 'Queues', {
      processorTimeout: Duration.seconds(processorTimeout),
    });

    // Secrets never travel in environment variables: the authorizer gets the secret's ARN and
    // reads it at cold start; OIDC mode needs no secret at all.
    const jwtSecret =
      config.jwt.mode === 'secret'
        ? new Secret(this, 'JwtSecret', {
            description: 'HS256 secret of chat-limiter tokens',
            generateSecretString: { passwordLength: 64, excludePunctuation: true },
          })
        : undefined;
    const jwtEnvironment: Record<string, string> =
      config.jwt.mode === 'oidc'
        ? {
            [ENV.jwtIssuer]: config.jwt.issuer,
            ...(config.jwt.jwksUrl ? { [ENV.jwtJwksUrl]: config.jwt.jwksUrl } : {}),
            [ENV.jwtAudience]: config.jwt.audience,
          }
        : { [ENV.jwtSecretArn]: jwtSecret!.secretArn };

    const environment: Record<string, string> = {
      [ENV.limitsConfig]: JSON.stringify(config.limits ?? { tiers: {} }),
      [ENV.failPolicy]: config.failPolicy,
      [ENV.limiterTimeoutMs]: String(config.limiterTimeoutMs),
      [ENV.connectLimitPerMinute]: String(config.connectLimitPerMinute),
      [ENV.maxMessageChars]: String(config.maxMessageChars),
      [ENV.maxQueuedPerUser]: String(config.maxQueuedPerUser),
      [ENV.maxQueueWaitSeconds]: String(config.maxQueueWaitSeconds),
      [ENV.conversationTurns]: String(config.conversationTurns),
      [ENV.conversationTtlSeconds]: String(config.conversationTtlSeconds),
      [ENV.model]: config.model.kind,
      ...(config.model.kind === 'bedrock'
        ? {
            [ENV.bedrockModelId]: config.model.modelId,
            [ENV.modelMaxOutputTokens]: String(config.model.maxOutputTokens),
          }
        : { [ENV.echoDelayMs]: String(config.model.echoDelayMs) }),
    };
    const chatFunctions = new ChatFunctions(this, 'Functions', {
      tables,
      queues,
      environment,
      functionEnvironment: { authorizer: jwtEnvironment },
      logRetention,
      // The runner's bound, so a burst of long replies never takes the route functions' share.
      reservedConcurrency: config.replyConcurrency === null ? {} : { reply: config.replyConcurrency },
    });
    const { functions } = chatFunctions;
    // Only the value, read once per cold start (grantRead would add DescribeSecret).
    if (jwtSecret) {
      functions.authorizer.addToRolePolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['secretsmanager:GetSecretValue'],
          resources: [jwtSecret.secretArn],
        }),
      );
    }

    if (config.model.kind === 'bedrock') this.allowBedrock(functions, config.model);

    const routeHandlers = Object.fromEntries(
      (Object.keys(ROUTES) as RouteKey[]).map((route) => [route, functions[ROUTES[route]]]),
    ) as Record<RouteKey, (typeof functions)[FunctionKey]>;
    const ws = new ChatWebSocketApi(this, 'WebSocket', {
      authorizer: functions.authorizer,
      routeHandlers,
      stageName: config.stageName,
      throttle: config.throttle,
      logRetention,
      setAccountLogsRole: config.apiGatewayAccountLogsRole,
    });
    chatFunctions.grantManageConnections(ws.api.apiId, ws.stage.stageName, ws.stage.callbackUrl);

    // A mapping rather than CDK's SqsEventSource, which would also grant the processor
    // grantConsumeMessages (GetQueueUrl among them); FUNCTIONS.processor lists what it needs.
    functions.processor.addEventSourceMapping('RequestQueueSource', {
      eventSourceArn: queues.requests.queueArn,
      batchSize: 10,
      reportBatchItemFailures: true,
      maxConcurrency: config.processorConcurrency,
    });

    const monitoring = new Monitoring(this, 'Monitoring', {
      functions,
      queue: queues.requests,
      deadLetterQueue: queues.dlq,
      maxQueueWaitSeconds: config.maxQueueWaitSeconds,
      globalDailyCostLimit: config.global?.dailyCostUsd !== undefined,
      alarmEmail: config.alarmEmail,
    });

    new SweepSchedule(this, 'Sweep', {
      fn: functions.sweep,
      alarmTopic: monitoring.topic,
      dashboard: monitoring.dashboard,
    });

    this.acknowledgeFindings(jwtSecret, ws);

    new CfnOutput(this, 'WebSocketUrl', { value: ws.stage.url, description: 'wss:// URL for chat clients' });
    new CfnOutput(this, 'ConnectionsEndpoint', {
      value: ws.stage.callbackUrl,
      description: '@connections endpoint',
    });
    new CfnOutput(this, 'AdminFunctionName', {
      value: functions.admin.functionName,
      description: 'invoke with IAM: aws lambda invoke / npm run admin -- --stack',
    });
    new CfnOutput(this, 'LimitsTableName', { value: tables.limits.tableName });
    new CfnOutput(this, 'ConnectionsTableName', { value: tables.connections.tableName });
    new CfnOutput(this, 'RequestsTableName', { value: tables.requests.tableName });
    new CfnOutput(this, 'RequestQueueUrl', { value: queues.requests.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: queues.dlq.queueUrl });
    if (jwtSecret)
      new CfnOutput(this, 'JwtSecretArn', { value: jwtSecret.secretArn, description: 'sign tokens with it' });
    // The log groups `npm run admin -- export-traffic --stack` queries with Logs Insights.
    for (const key of REQUEST_LOG_FUNCTIONS)
      new CfnOutput(this, logGroupOutputName(key), {
        value: functions[key].logGroup.logGroupName,
        description: 'its request log lines: npm run admin -- export-traffic --stack',
      });
  }

  /**
   * Streaming Converse on the configured model only: the foundation model, or an inference profile
   * with the model in the Regions it routes to (lib/constructs/bedrock-access.ts).
   */
  private allowBedrock(
    functions: Record<FunctionKey, { addToRolePolicy(s: PolicyStatement): void }>,
    model: BedrockModelAccess,
  ) {
    // Only the reply runner calls the model; the route functions and the processor hand off to it.
    for (const statement of bedrockStatements(this, model)) functions.reply.addToRolePolicy(statement);
    const profile = inferenceProfileOf(model);
    if (!profile) return;
    if (!Token.isUnresolved(this.region) && !isSourceRegionOf(profile, this.region)) {
      throw new StackConfigError(
        `model.modelId: the ${profile.geography} inference profile ${model.modelId} cannot be called from ${this.region}`,
      );
    }
    for (const region of profile.regions.filter((r) => r.includes('*'))) {
      Validations.of(this).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:${region}::foundation-model/${profile.foundationModelId}]`,
        reason: `The ${profile.geography} inference profile routes to Regions of its geography (${region}); the model ARN is usable only through this profile (bedrock:InferenceProfileArn condition). Set model.inferenceRegions to name them.`,
      });
    }
  }

  /** Findings of cdk-nag's AwsSolutions checks that are deliberate, each with its reason. */
  private acknowledgeFindings(jwtSecret: Secret | undefined, ws: ChatWebSocketApi): void {
    const ack = (id: string, reason: string) => Validations.of(this).acknowledge({ id, reason });
    // IAM5 findings are named by resource; build their names from the constructs, not by hand.
    const region = Token.isUnresolved(this.region) ? '<AWS::Region>' : this.region;
    const account = Token.isUnresolved(this.account) ? '<AWS::AccountId>' : this.account;
    const apiId = this.getLogicalId(ws.api.node.defaultChild as CfnElement);
    ack(
      `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:${region}:${account}:<${apiId}>/${ws.stage.stageName}/*/@connections/*]`,
      'execute-api:ManageConnections is scoped to the @connections of this one stage; connection ids are not known in advance.',
    );
    ack(
      'AwsSolutions-APIG4',
      'Only $connect can carry an authorizer in a WebSocket API; every later route runs on the connection $connect authorized.',
    );
    if (ws.account) {
      ack(
        'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        "The account-wide API Gateway logging role serves every API of the account and Region, so it carries AWS's policy made for it rather than one scoped to this stack's log groups (docs/deploy.md).",
      );
    }
    ack(
      'AwsSolutions-L1',
      'Node.js 22 is pinned on purpose (tested here); NODEJS_LATEST would change the runtime under a deployed stack.',
    );
    if (jwtSecret) {
      ack(
        'AwsSolutions-SMG4',
        'Rotating the HS256 secret would invalidate every live token; rotate by hand when needed (docs/deploy.md).',
      );
    }
  }
}

function retention(days: number): RetentionDays {
  const values = Object.values(RetentionDays).filter((v): v is number => typeof v === 'number' && v > 0);
  return (values.find((v) => v >= days) ?? RetentionDays.ONE_MONTH) as RetentionDays;
}
