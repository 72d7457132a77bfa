import type { FunctionKey } from './functions';

/** WebSocket route selection, as in API Gateway: `$request.body.action`. */
export const ROUTE_SELECTION_EXPRESSION = '$request.body.action';

/** API Gateway waits at most this long for a WebSocket route integration (a fixed quota). */
export const ROUTE_INTEGRATION_TIMEOUT_SECONDS = 29;

/** WebSocket routes and the function behind each. `$connect` alone carries the authorizer. */
export const ROUTES = {
  $connect: 'connect',
  $disconnect: 'disconnect',
  sendMessage: 'message',
  status: 'message',
  cancel: 'message',
  resume: 'message',
  ping: 'message',
  $default: 'message',
} as const satisfies Record<string, FunctionKey>;

export type RouteKey = keyof typeof ROUTES;
