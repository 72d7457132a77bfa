/**
 * The small composition roots (authorizer, connect, disconnect) exist so those functions bundle
 * only their own adapters: the whole composition root (../runtime.ts) pulls in the limiter, the
 * services, zod and every SDK client, none of which a `$connect` needs. This file imports nothing,
 * so a root that needs no DynamoDB (the authorizer) does not load its client.
 */

/** Builds a value on first use and keeps it for the instance's life (one cold start). */
export function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= build();
    return value;
  };
}
