/**
 * The adapters' errors: a base class every adapter error extends, so a caller can tell "a store,
 * queue or model call failed" from a rule (core `CoreError`) or a flow (`ServiceError`). Its name is
 * the subclass's own; `{ cause }` keeps what was wrapped. No imports: the `$connect` bundle holds it.
 */
export class AdapterError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
