import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** Counts the DynamoDB calls a client makes, by operation (SDK middleware; nothing is mocked). */
export function countCalls(client: DynamoDBClient): {
  total(): number;
  byCommand(): Record<string, number>;
  reset(): void;
} {
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: `callCounter-${Math.random()}` },
  );
  return {
    total: () => Object.values(counts).reduce((a, b) => a + b, 0),
    byCommand: () => ({ ...counts }),
    reset: () => {
      for (const key of Object.keys(counts)) delete counts[key];
    },
  };
}
