/** Environment variable names read by Lambda code. Set by `lib/` in AWS and by `local/` here. */
export const ENV = {
  limitsTable: 'LIMITS_TABLE_NAME',
  connectionsTable: 'CONNECTIONS_TABLE_NAME',
  requestsTable: 'REQUESTS_TABLE_NAME',
  requestQueueUrl: 'REQUEST_QUEUE_URL',
  /** The processor moves requests that failed for good here itself (see QUEUES.requests). */
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  /** `https://{api}.execute-api.{region}.amazonaws.com/{stage}` or `http://localhost:PORT/local`. */
  wsManagementEndpoint: 'WS_MANAGEMENT_ENDPOINT',
  /** Local only: point the SDK clients at emulators. Never set in AWS. */
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  sqsEndpoint: 'SQS_ENDPOINT',
  /** JSON of the tier limits ({@link TierLimitsConfig} in lambda/core/limiter). Not secret. */
  limitsConfig: 'LIMITS_CONFIG',
  /** `open` | `closed`: what the limiter does when DynamoDB fails or times out. */
  failPolicy: 'LIMITER_FAIL_POLICY',
  limiterTimeoutMs: 'LIMITER_TIMEOUT_MS',
  /** How long the store must stay silent (with faults) before the limiter's breaker opens. */
  breakerSilenceMs: 'LIMITER_BREAKER_SILENCE_MS',
  connectLimitPerMinute: 'CONNECT_LIMIT_PER_MINUTE',
  maxMessageChars: 'MAX_MESSAGE_CHARS',
  maxQueuedPerUser: 'MAX_QUEUED_PER_USER',
  maxQueueWaitSeconds: 'MAX_QUEUE_WAIT_SECONDS',
  model: 'MODEL',
  bedrockModelId: 'BEDROCK_MODEL_ID',
  /** The configured model's maximum output tokens: caps every output allowance. */
  modelMaxOutputTokens: 'MODEL_MAX_OUTPUT_TOKENS',
  echoDelayMs: 'ECHO_DELAY_MS',
  /** Local only: how many times the echo model repeats the message (long and large replies). */
  echoRepeat: 'ECHO_REPEAT',
  /** The reply runner's function name, for the functions that hand replies to it. */
  replyFunctionName: 'REPLY_FUNCTION_NAME',
  /** Local only: the Lambda Invoke API of the local gateway. Never set in AWS. */
  lambdaEndpoint: 'LAMBDA_ENDPOINT',
  /** Local only: where events go (the local stack's PutEvents, local/events.ts). Never set in AWS. */
  eventsEndpoint: 'EVENTS_ENDPOINT',
  /** Local only: the HS256 secret itself. In AWS the secret lives in Secrets Manager. */
  jwtSecret: 'JWT_SECRET',
  /** AWS: ARN of the Secrets Manager secret holding the HS256 secret. */
  jwtSecretArn: 'JWT_SECRET_ARN',
  /** OIDC mode: the issuer URL; its JWKS is fetched from `${issuer}/.well-known/jwks.json` or JWT_JWKS_URL. */
  jwtIssuer: 'JWT_ISSUER',
  jwtJwksUrl: 'JWT_JWKS_URL',
  jwtAudience: 'JWT_AUDIENCE',
  /** How many earlier turns of a conversation a message carries (SPEC §9.3). */
  conversationTurns: 'CONVERSATION_TURNS',
  /** How long a conversation's turn is kept after it was written, in seconds. */
  conversationTtlSeconds: 'CONVERSATION_TTL_SECONDS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
