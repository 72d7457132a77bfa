/**
 * An error's message alone, for the command lines' one-line failures (`admin: …`). Logs and
 * reports that need the error's class use `describeError` (lambda/core/errors.ts) instead.
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A warning on stderr for a background task that may fail every few seconds: one a minute. */
export function warnAtMostEveryMinute(what: string): (err: unknown) => void {
  let lastMs = Number.NEGATIVE_INFINITY;
  return (err) => {
    if (Date.now() - lastMs < 60_000) return;
    lastMs = Date.now();
    console.warn(`${what}: ${errorMessage(err)}`);
  };
}
