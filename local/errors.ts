/**
 * The local tools' errors (the emulated stack, the CLIs): a base class, and the one the command
 * lines share. Each names itself from its class (`new.target.name`), as the errors.ts of each lambda/ layer do.
 */
export class LocalError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A command line the tool cannot take: printed with a pointer to `--help`, exit 2. */
export class UsageError extends LocalError {}
