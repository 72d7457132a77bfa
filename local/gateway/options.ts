import type { Clock } from '../../lambda/core/clock';
import type { RouteKey } from '../../lambda/core/resources';
import type { FunctionSource } from './lambda-runner';

/**
 * The functions behind the API. Each runs under its Timeout (a bare handler under Lambda's
 * default, 3 s): see `local/gateway/lambda-runner.ts`.
 */
export interface GatewayHandlers {
  readonly authorizer: FunctionSource;
  readonly routes: Partial<Record<RouteKey, FunctionSource>>;
  /** Functions answering the Lambda Invoke API, by name. */
  readonly functions?: Readonly<Record<string, FunctionSource>>;
}

export interface GatewayOptions {
  /** 0 picks a free port. @default 3001 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 'local' */
  readonly stage?: string;
  /** Static files served at `/` (the chat page). */
  readonly staticDir?: string;
  /** API Gateway closes idle connections after 10 minutes. @default 600_000 */
  readonly idleTimeoutMs?: number;
  /**
   * How long a route integration may run before the client gets `Endpoint request timed out`
   * (a fixed quota of WebSocket APIs). @default 29_000
   */
  readonly integrationTimeoutMs?: number;
  /**
   * Waits before the retries of a failed `Event` invocation (Lambda: about a minute, then two).
   * @default [60_000, 120_000]
   */
  readonly asyncRetryDelaysMs?: readonly number[];
  /** The clock `Event` ages are measured on (max event age). @default Date.now */
  readonly asyncClock?: () => number;
  readonly handlers?: GatewayHandlers;
  readonly log?: (message: string) => void;
  /**
   * The stack's clock: the instants the gateway puts in events (`requestTimeEpoch`,
   * `connectedAt`) and in `@connections` answers. Idle and integration timeouts are real
   * durations and stay on timers. @default Date.now
   */
  readonly clock?: Clock;
  /** Local-only HTTP routes (`/local-stack/...`: `/local/` is the stage's), e.g. the stack clock's. */
  readonly localRoutes?: Readonly<Record<string, LocalRoute>>;
}

/** A local-only HTTP route: its answer as a status and a JSON body. */
export type LocalRoute = (request: {
  readonly method: string;
  readonly url: URL;
  readonly body: string;
}) => Promise<{ readonly status: number; readonly body: unknown }>;

export interface Gateway {
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** The `@connections` endpoint, stage included, as the SDK client wants it. */
  readonly managementEndpoint: string;
  /** Sets the handlers (they may load only after the gateway's address is known). */
  attach(handlers: GatewayHandlers): void;
  /** Resolves when no asynchronous (`Event`) invocation is running or waiting for a retry. */
  asyncIdle(): Promise<void>;
  /** Is an asynchronous invocation running or waiting for a retry now? */
  asyncBusy(): boolean;
  stop(): Promise<void>;
}

/** Largest payload of an asynchronous invocation (the Invoke API reference: 1 MB). */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;
/** Largest payload of a synchronous invocation (the Invoke API reference: 6 MB). */
export const MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;

/** API Gateway's WebSocket quotas: frames up to 32 KB, messages up to 128 KB (declared in core). */
export { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../../lambda/core/frame-limits';
/** API Gateway's integration timeout for WebSocket routes: 29 s, not adjustable upwards. */
export const INTEGRATION_TIMEOUT_MS = 29_000;
