import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ROUTE_SELECTION_EXPRESSION, ROUTES, type RouteKey } from '../../lambda/core/resources';

export interface ChatWebSocketApiProps {
  readonly authorizer: IFunction;
  /** The function behind each route key of `ROUTES`. */
  readonly routeHandlers: Readonly<Record<RouteKey, IFunction>>;
  /** @default 'prod' */
  readonly stageName?: string;
  /** Steady-state requests per second and burst, for every route of the stage. */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** @default 30 days */
  readonly logRetention?: RetentionDays;
  /**
   * Set the API Gateway CloudWatch Logs role of this account and Region (`AWS::ApiGateway::Account`),
   * without which a stage with access logging cannot be created ("CloudWatch Logs role ARN must be
   * set in account settings to enable logging"). Turn it off only where the account already has
   * one that should stay. @default true
   */
  readonly setAccountLogsRole?: boolean;
}

/**
 * The WebSocket API: a Lambda REQUEST authorizer on `$connect` reading the `token` query
 * parameter (so a missing token is refused with 401 before any code runs), every route of
 * `ROUTES` selected by `$request.body.action`, and a stage with JSON access logs and throttling.
 */
export class ChatWebSocketApi extends Construct {
  public readonly api: WebSocketApi;
  public readonly stage: WebSocketStage;
  /** The account-level logging setting, when this construct sets it. */
  public readonly account?: CfnAccount;

  constructor(scope: Construct, id: string, props: ChatWebSocketApiProps) {
    super(scope, id);
    const integration = (route: RouteKey) =>
      new WebSocketLambdaIntegration(`${route.replace('$', '')}Integration`, props.routeHandlers[route]);
    this.api = new WebSocketApi(this, 'Api', {
      apiName: 'chat-limiter',
      routeSelectionExpression: ROUTE_SELECTION_EXPRESSION,
      connectRouteOptions: {
        integration: integration('$connect'),
        authorizer: new WebSocketLambdaAuthorizer('TokenAuthorizer', props.authorizer, {
          identitySource: ['route.request.querystring.token'],
        }),
      },
      disconnectRouteOptions: { integration: integration('$disconnect') },
      defaultRouteOptions: { integration: integration('$default') },
    });
    for (const route of Object.keys(ROUTES) as RouteKey[]) {
      if (route.startsWith('$')) continue;
      this.api.addRoute(route, { integration: integration(route) });
    }
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: props.stageName ?? 'prod',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            connectionId: '$context.connectionId',
            routeKey: '$context.routeKey',
            eventType: '$context.eventType',
            status: '$context.status',
            sourceIp: '$context.identity.sourceIp',
            principalId: '$context.authorizer.principalId',
            error: '$context.error.message',
            integrationError: '$context.integrationErrorMessage',
            requestTime: '$context.requestTimeEpoch',
          }),
        ),
      },
    });
    if (props.setAccountLogsRole ?? true) {
      this.account = accountLogsRole(this, this.api);
      // The stage's access logging is refused until the account has the role.
      this.stage.node.addDependency(this.account);
    }
  }
}

/**
 * The account-wide API Gateway logging role, as CDK's RestApi `cloudWatchRole` builds it: API
 * Gateway assumes it to write REST and WebSocket logs of every API of the account and Region, so it
 * carries the AWS managed policy made for that, not a policy scoped to this stack's log groups
 * (that would break the logging of the account's other APIs). Both are retained on delete: another
 * API may depend on the setting after this stack is gone.
 */
function accountLogsRole(scope: Construct, api: WebSocketApi): CfnAccount {
  const role = new Role(scope, 'ApiGatewayLogsRole', {
    assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
    managedPolicies: [
      ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
    ],
    description: 'API Gateway pushes REST and WebSocket API logs to CloudWatch Logs (account setting)',
  });
  role.applyRemovalPolicy(RemovalPolicy.RETAIN);
  const account = new CfnAccount(scope, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
  account.applyRemovalPolicy(RemovalPolicy.RETAIN);
  // Ordered after the API, as CDK's RestApi orders its own account setting.
  account.node.addDependency(api);
  return account;
}
