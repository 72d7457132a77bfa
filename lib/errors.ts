/** The stack's errors at synth time: a configuration it refuses (cdk.json context, environment). */
export class StackConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackConfigError';
  }
}
