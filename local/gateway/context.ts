import type { WebSocket } from 'ws';
import type { Clock } from '../../lambda/core/clock';
import type { ConnectionInfo, GatewayIdentity } from './events';
import type { FunctionSource } from './lambda-runner';
import type { GatewayHandlers } from './options';

/** An open WebSocket connection as the gateway tracks it. */
export interface LiveConnection extends ConnectionInfo {
  readonly socket: WebSocket;
  lastActiveAt: number;
  idleTimer?: NodeJS.Timeout;
  closed: boolean;
}

/** What the gateway's parts (WebSocket, `@connections`, Invoke API, HTTP) share. */
export interface GatewayContext {
  readonly stage: string;
  readonly gw: GatewayIdentity;
  readonly clock: Clock;
  readonly log: (message: string) => void;
  readonly idleTimeoutMs: number;
  readonly integrationTimeoutMs: number;
  readonly connections: Map<string, LiveConnection>;
  /** The handlers attached now (none before `attach`). */
  handlers(): GatewayHandlers | undefined;
  /** A `RequestResponse` invocation under the function's Timeout. */
  invoke(name: string, source: FunctionSource, event: unknown): Promise<unknown>;
  /** An `Event` invocation: Lambda's asynchronous queue, retries, maximum age and destinations. */
  invokeAsync(name: string, source: FunctionSource, event: unknown): void;
}

/** Activity on a connection: its idle timeout (API Gateway's 10 minutes) starts again. */
export function touch(ctx: GatewayContext, conn: LiveConnection): void {
  conn.lastActiveAt = ctx.clock();
  clearTimeout(conn.idleTimer);
  conn.idleTimer = setTimeout(() => conn.socket.close(1001, 'Going away'), ctx.idleTimeoutMs);
  conn.idleTimer.unref();
}
