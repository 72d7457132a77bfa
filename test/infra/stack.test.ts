import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  LINE_ORDER_ATTR,
  LINE_PARTITION_ATTR,
  USAGE_DAY_ATTR,
  USAGE_INDEX_PROJECTION,
  WAITER_FIELDS,
} from '../../lambda/core/limiter/item/attributes';
import {
  ENV,
  FUNCTIONS,
  logGroupOutputName,
  QUEUES,
  REQUEST_LOG_FUNCTIONS,
  ROUTE_INTEGRATION_TIMEOUT_SECONDS,
  ROUTES,
  TABLES,
} from '../../lambda/core/resources';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';
import { parseStackConfig, type StackConfigInput } from '../../lib/config';

/** Synthesizes the stack (bundling skipped) with cdk-nag's AwsSolutions checks attached. */
function synth(config: StackConfigInput = {}): Template {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ChatLimiterStack(app, 'Test', {
    config,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth(); // throws on any unacknowledged cdk-nag finding
  return Template.fromStack(stack);
}

describe('ChatLimiterStack', () => {
  let template: Template;
  beforeAll(() => {
    template = synth();
  }, 60_000);

  it('passes cdk-nag AwsSolutions with only reasoned acknowledgements (bedrock and oidc too)', () => {
    expect(() =>
      synth({ model: { kind: 'bedrock', modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } }),
    ).not.toThrow();
    expect(() =>
      synth({ jwt: { mode: 'oidc', issuer: 'https://issuer.example.com', audience: 'chat' } }),
    ).not.toThrow();
  }, 60_000);

  it('creates on-demand tables with TTL and point-in-time recovery, from the one definition', () => {
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', Object.keys(TABLES).length);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'ttlEpochSeconds', Enabled: true },
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      ],
      GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'byUser' })],
    });
  });

  it('creates a FIFO queue with SSE, TLS only and a FIFO DLQ kept 14 days', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      SqsManagedSseEnabled: true,
      RedrivePolicy: {
        deadLetterTargetArn: Match.anyValue(),
        maxReceiveCount: QUEUES.requests.maxReceiveCount,
      },
      VisibilityTimeout: Match.anyValue(),
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('routes by $request.body.action with the token authorizer on $connect only', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: ['route.request.querystring.token'],
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: '$connect',
      AuthorizationType: 'CUSTOM',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('connectionId') },
    });
  });

  it('runs every function on arm64 and Node.js 22 with JSON logs in a group with retention', () => {
    template.resourceCountIs('AWS::Lambda::Function', Object.keys(FUNCTIONS).length);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
    });
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('keeps every function behind a WebSocket route within the 29 s integration timeout', () => {
    const routed = new Set(Object.values(ROUTES).map((key) => FUNCTIONS[key].id));
    const functions = template.findResources('AWS::Lambda::Function');
    const checked: string[] = [];
    for (const [logicalId, resource] of Object.entries(functions)) {
      const id = [...routed].find((name) => logicalId.startsWith(`Functions${name}`));
      if (!id) continue;
      checked.push(id);
      expect((resource as { Properties: { Timeout: number } }).Properties.Timeout).toBeLessThanOrEqual(
        ROUTE_INTEGRATION_TIMEOUT_SECONDS,
      );
    }
    expect(checked.sort()).toEqual([...routed].sort());
  });

  it('gives replies to a runner invoked asynchronously, with one retry and the longest timeout', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Timeout: FUNCTIONS.reply.timeoutSeconds,
      Environment: { Variables: Match.objectLike({ [ENV.wsManagementEndpoint]: Match.anyValue() }) },
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 1 });
    for (const key of ['message', 'processor'] as const) {
      expect(FUNCTIONS[key].timeoutSeconds).toBeLessThan(FUNCTIONS.reply.timeoutSeconds);
      expect(FUNCTIONS[key].invokes).toEqual(['reply']);
    }
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: FUNCTIONS.message.timeoutSeconds,
      Environment: { Variables: Match.objectLike({ [ENV.replyFunctionName]: Match.anyValue() }) },
    });
  });

  it('feeds the processor with partial batch responses and bounded concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
      BatchSize: 10,
    });
  });

  it('scopes execute-api:ManageConnections to the stage, and grants Bedrock only when chosen', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'execute-api:ManageConnections',
            Resource: {
              'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('/prod/\\*/@connections/\\*')])],
            },
          }),
        ]),
      },
    });
    expect(JSON.stringify(template.toJSON())).not.toContain('bedrock:');
    const bedrock = synth({ model: { kind: 'bedrock', modelId: 'anthropic.claude-3-haiku-20240307-v1:0' } });
    bedrock.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 'bedrock:InvokeModelWithResponseStream' })]),
      },
    });
  }, 60_000);

  it('keeps the JWT secret in Secrets Manager: the authorizer gets its ARN, never its value', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.jwtSecretArn]: { Ref: Match.anyValue() } }) },
    });
    expect(JSON.stringify(template.toJSON())).not.toContain(`"${ENV.jwtSecret}"`);
  });

  it('alarms on the DLQ, the oldest request, queue depth, fail-open, failures, logged faults and every function', () => {
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    // Six of Monitoring's, two of the reply runner's dropped events, the sweep's StateRepairsMany,
    // and two per function.
    expect(Object.keys(alarms).length).toBe(9 + 2 * Object.keys(FUNCTIONS).length);
    template.resourceCountIs('AWS::Logs::MetricFilter', Object.keys(FUNCTIONS).length);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'LimiterFailOpen',
      Namespace: 'ChatLimiter',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 900,
    });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('runs the self-healing sweep every minute, and alarms when it repairs many states', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              MetricName: 'StateRepaired',
              Dimensions: Match.arrayWith([{ Name: 'kind', Value: 'lost-wake-up' }]),
            }),
          }),
        }),
      ]),
      Threshold: 10,
    });
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({ IndexName: 'bySweep', Projection: { ProjectionType: 'KEYS_ONLY' } }),
      ]),
    });
    // `admin top`: today's settled usage by bucket, no sort key (a settle updates in place), only settled counters.
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({
          IndexName: 'byDaySettled',
          KeySchema: [{ AttributeName: USAGE_DAY_ATTR, KeyType: 'HASH' }],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...USAGE_INDEX_PROJECTION] },
        }),
      ]),
    });
    // The global line: one item per waiter, by bucket, in priority order, with the waiter's fields.
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({
          IndexName: 'byLine',
          KeySchema: [
            { AttributeName: LINE_PARTITION_ATTR, KeyType: 'HASH' },
            { AttributeName: LINE_ORDER_ATTR, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: Object.values(WAITER_FIELDS) },
        }),
      ]),
    });
  });

  it('outputs the wss:// URL, the admin function and the resource names', () => {
    for (const name of ['WebSocketUrl', 'AdminFunctionName', 'LimitsTableName', 'RequestQueueUrl']) {
      template.hasOutput(name, {});
    }
  });

  it('outputs the log groups the Message and ReplyRunner functions write to (export-traffic --stack)', () => {
    const resources = template.toJSON().Resources as Record<
      string,
      { Type: string; Properties: { LoggingConfig?: { LogGroup?: unknown } } }
    >;
    expect(REQUEST_LOG_FUNCTIONS.map(logGroupOutputName)).toEqual([
      'MessageLogGroupName',
      'ReplyRunnerLogGroupName',
    ]);
    for (const key of REQUEST_LOG_FUNCTIONS) {
      const [fnId] = Object.keys(resources).filter(
        (id) =>
          resources[id]!.Type === 'AWS::Lambda::Function' &&
          new RegExp(`^Functions${FUNCTIONS[key].id}[0-9A-F]{8}$`).test(id),
      );
      const logGroup = resources[fnId!]!.Properties.LoggingConfig?.LogGroup;
      expect(logGroup).toEqual({
        Ref: expect.stringMatching(new RegExp(`^Functions${FUNCTIONS[key].id}Logs`)),
      });
      template.hasOutput(logGroupOutputName(key), { Value: logGroup });
    }
  });
});

describe('parity between the template and the local stack', () => {
  const template = synth();
  const json = template.toJSON() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const of = (type: string) => Object.values(json.Resources).filter((r) => r.Type === type);

  it('has exactly the routes the local gateway serves', () => {
    const routes = of('AWS::ApiGatewayV2::Route').map((r) => r.Properties.RouteKey);
    expect(routes.sort()).toEqual(Object.keys(ROUTES).sort());
  });

  it('gives functions only environment variables named in ENV (plus the runtime settings)', () => {
    const allowed = new Set<string>([
      ...Object.values(ENV),
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'NODE_OPTIONS',
    ]);
    for (const fn of of('AWS::Lambda::Function')) {
      const vars = Object.keys(
        (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
      );
      for (const name of vars) expect(allowed).toContain(name);
    }
  });

  it('creates the tables with the key schemas the local stack creates', () => {
    const schemas = of('AWS::DynamoDB::GlobalTable').map((t) => JSON.stringify(t.Properties.KeySchema));
    for (const def of Object.values(TABLES)) {
      const keys = [
        { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
        ...('sortKey' in def ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' }] : []),
      ];
      expect(schemas).toContain(JSON.stringify(keys));
    }
  });

  it('makes the queues FIFO with the redrive of the definition', () => {
    const queues = of('AWS::SQS::Queue');
    expect(queues).toHaveLength(Object.keys(QUEUES).length);
    for (const q of queues) expect(q.Properties.FifoQueue).toBe(true);
  });
});

describe('parseStackConfig', () => {
  it('applies the defaults', () => {
    const config = parseStackConfig({});
    expect(config).toMatchObject({
      maxQueuedPerUser: 10,
      maxQueueWaitSeconds: 900,
      failPolicy: 'open',
      model: { kind: 'echo' },
    });
    expect(config.tiers.free.dailyTokens).toBe(100_000);
  });

  it.each([
    [{ limits: { tiers: { free: { dailyTokens: -5 } } } }, /tiers\.free\.dailyTokens/],
    [{ model: { kind: 'bedrock' } }, /modelId/],
    [{ failPolicy: 'maybe' }, /failPolicy/],
    [{ jwt: { mode: 'oidc', issuer: 'not a url', audience: 'chat' } }, /issuer/],
    [{ jwt: { mode: 'oidc', issuer: 'https://issuer.example.com' } }, /jwt\.audience/],
    [{ maxQueuedPerUser: 1.5 }, /maxQueuedPerUser/],
    [{ surprise: true }, /surprise/],
    [
      { limits: { tiers: {}, global: { requestsInFlight: 20_000 } } },
      /requestsInFlight 20000 needs 1539 shards[\s\S]*global\.shards/,
    ],
    // A user's item could grow past the size bound (issue 22): the tier and the field to set.
    [
      { limits: { tiers: { free: { messagesPerMinute: 1_000 } } } },
      /tiers\.free: a user's limiter item could reach .* set requestsInFlight/,
    ],
    [{ maxQueuedPerUser: 100 }, /tiers\.free: .*128 KB bound/],
  ])('refuses %j with a clear error', (input, message) => {
    expect(() => parseStackConfig(input)).toThrow(message);
  });

  it('gives global limits the shards their requests in flight need (13 a shard)', () => {
    expect(
      parseStackConfig({ limits: { tiers: {}, global: { requestsInFlight: 1000 } } }).global?.shards,
    ).toBe(77);
  });
});
