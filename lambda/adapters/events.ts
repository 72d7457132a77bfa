import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { EVENT_SOURCE } from '../core/events';
import type { EventsPort, LogPort } from '../services/ports';
import { AdapterError } from './errors';

/** Events to the account's default EventBridge bus (`events:PutEvents`, granted only where used). */
export class EventBridgeEvents implements EventsPort {
  constructor(private readonly client: EventBridgeClient) {}

  async publish(detailType: string, detail: Readonly<Record<string, unknown>>): Promise<void> {
    const { FailedEntryCount, Entries } = await this.client.send(
      new PutEventsCommand({
        Entries: [{ Source: EVENT_SOURCE, DetailType: detailType, Detail: JSON.stringify(detail) }],
      }),
    );
    // PutEvents answers 200 with per-entry failures: one that was not taken is an error here.
    if (FailedEntryCount) {
      const entry = Entries?.[0];
      throw new AdapterError(
        `event not accepted: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`,
      );
    }
  }
}

/** Locally: events go to the stack's log, one line each, as EventBridge would carry them. */
export class LogEvents implements EventsPort {
  constructor(private readonly log: LogPort) {}

  async publish(detailType: string, detail: Readonly<Record<string, unknown>>): Promise<void> {
    this.log.info('event', { source: EVENT_SOURCE, 'detail-type': detailType, detail });
  }
}
