/**
 * Each function has its own composition root in this folder (authorizer.ts, connect.ts, …,
 * message.ts, reply.ts) so it bundles only its own adapters and SDK clients: a `$connect` needs
 * neither the limiter nor the services, the Message function no Bedrock client. This file imports
 * nothing, so a root that needs no DynamoDB (the authorizer) does not load its client.
 */

/** Builds a value on first use and keeps it for the instance's life (one cold start). */
export function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= build();
    return value;
  };
}
