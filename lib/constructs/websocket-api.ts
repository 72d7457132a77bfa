import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
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
}

/**
 * The WebSocket API: a Lambda REQUEST authorizer on `$connect` reading the `token` query
 * parameter (so a missing token is refused with 401 before any code runs), every route of
 * `ROUTES` selected by `$request.body.action`, and a stage with JSON access logs and throttling.
 */
export class ChatWebSocketApi extends Construct {
  public readonly api: WebSocketApi;
  public readonly stage: WebSocketStage;

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
  }
}
