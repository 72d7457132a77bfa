import type { TestProject } from 'vitest/node';
import { startEmulators } from '../local/emulators';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
    sqsEndpoint: string;
  }
}

/**
 * Starts one dynalite and one fauxqs for the whole run (or uses DYNAMODB_ENDPOINT / SQS_ENDPOINT)
 * and hands their endpoints to the test files through `inject()`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulators = await startEmulators({
    dynamodbEndpoint: process.env.DYNAMODB_ENDPOINT,
    sqsEndpoint: process.env.SQS_ENDPOINT,
  });
  project.provide('dynamodbEndpoint', emulators.dynamodbEndpoint);
  project.provide('sqsEndpoint', emulators.sqsEndpoint);
  return () => emulators.stop();
}
