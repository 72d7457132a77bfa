/**
 * The events port of every function that publishes (SPEC §9.5): in AWS the account's default
 * EventBridge bus; locally the local stack's PutEvents (EVENTS_ENDPOINT, local/events.ts), which
 * logs and keeps them for `npm run admin -- events`. On emulators without a local stack (a test's
 * own resources), the log.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { ChatConfig } from '../../config';
import type { EventsPort } from '../../services/ports';
import { EventBridgeEvents, LogEvents } from '../events';
import { logPort } from '../observability';
import { requestHandler } from './common';

export function eventsPort(config: ChatConfig): EventsPort {
  const local = Boolean(config.dynamodbEndpoint || config.sqsEndpoint);
  if (local && !config.eventsEndpoint) return new LogEvents(logPort);
  return new EventBridgeEvents(
    new EventBridgeClient({
      endpoint: config.eventsEndpoint,
      credentials: config.eventsEndpoint ? { accessKeyId: 'local', secretAccessKey: 'local' } : undefined,
      maxAttempts: 3,
      requestHandler: requestHandler(),
    }),
  );
}
