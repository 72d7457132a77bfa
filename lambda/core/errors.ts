/**
 * The core's errors: a base class every rule-level error extends, so a handler can tell "the
 * product's rules refused this" from a fault, and one way to put any thrown value into words.
 * Services and adapters have an `errors.ts` of their own with their own base class.
 */
export class CoreError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration (limits, models, a clock setting) that the rules cannot accept. */
export class ConfigError extends CoreError {}

/** Any thrown value as one line: `Name: message` for an Error, its string form otherwise. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
