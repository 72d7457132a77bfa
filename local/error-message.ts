/**
 * An error's message alone, for the command lines' one-line failures (`admin: …`). Logs and
 * reports that need the error's class use `describeError` (lambda/core/errors.ts) instead.
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
