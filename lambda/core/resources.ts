/**
 * The one definition of the project's AWS resources: tables, queues, WebSocket routes, functions and
 * the environment variable names that connect them. `lib/` (the CDK stack) and `local/` (the local
 * stack) both build from these values, so the two cannot drift apart. Plain data only: no AWS SDK
 * and no CDK imports, so Lambda code can read it too.
 */

export * from './resources/access';
export * from './resources/env';
export * from './resources/functions';
export * from './resources/names';
export * from './resources/queues';
export * from './resources/routes';
export * from './resources/tables';
