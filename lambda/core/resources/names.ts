/** The stage name of the WebSocket API, in AWS and locally (`ws://localhost:PORT/local`). */
export const LOCAL_STAGE = 'local';

/** Name of a table or queue for a given prefix (locally; CDK lets CloudFormation name them). */
export function resourceName(prefix: string, base: string): string {
  return prefix ? `${prefix}-${base}` : base;
}
