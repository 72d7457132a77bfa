import { z } from 'zod';
import { LocalError } from './errors';
import type { LocalRoute } from './gateway';

/**
 * The account's default EventBridge bus, emulated (SPEC §9.5): the functions' EventBridge client
 * points at it locally (EVENTS_ENDPOINT), so the code that publishes in AWS is the code that runs
 * here. The stack prints each event as one line and keeps the last {@link KEPT_EVENTS} for
 * `npm run admin -- events [--follow] [--json]`:
 *
 *   POST /local-stack/events/  (PutEvents, awsJson 1.1)  → { FailedEntryCount, Entries }
 *   GET  /local-stack/events?after=N                     → { events: [...] } with id > N
 */
export const EVENTS_PATH = '/local-stack/events';

/** How many events the local stack keeps (the oldest go first). */
export const KEPT_EVENTS = 1000;

/** One event as EventBridge delivers it to a rule's target, with the local stack's sequence id. */
export interface LocalEvent {
  readonly id: number;
  readonly time: string;
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: unknown;
}

const putEventsSchema = z.object({
  Entries: z
    .array(
      z.object({
        Source: z.string().min(1),
        DetailType: z.string().min(1),
        Detail: z.string(),
        EventBusName: z.string().optional(),
      }),
    )
    .min(1)
    .max(10),
});

/** The local bus: what the functions put, kept and printed. */
export class LocalEventBus {
  private readonly kept: LocalEvent[] = [];
  private lastId = 0;

  constructor(
    private readonly options: { readonly clock: () => number; readonly print: (line: string) => void },
  ) {}

  /** The gateway routes of {@link EVENTS_PATH} (the SDK posts PutEvents to the path with a `/`). */
  get routes(): Readonly<Record<string, LocalRoute>> {
    const route: LocalRoute = async (request) => this.serve(request);
    return { [EVENTS_PATH]: route, [`${EVENTS_PATH}/`]: route };
  }

  private async serve({ method, url, body }: Parameters<LocalRoute>[0]) {
    if (method === 'GET') {
      const after = Number(url.searchParams.get('after') ?? 0);
      return { status: 200, body: { events: this.kept.filter((e) => e.id > after) } };
    }
    if (method !== 'POST') return { status: 405, body: { message: 'GET or POST' } };
    let parsed: z.infer<typeof putEventsSchema>;
    try {
      parsed = putEventsSchema.parse(JSON.parse(body || '{}'));
    } catch (err) {
      if (!(err instanceof SyntaxError || err instanceof z.ZodError)) throw err;
      return { status: 400, body: { __type: 'ValidationException', message: 'expected PutEvents Entries' } };
    }
    const ids = parsed.Entries.map((entry) => this.put(entry.Source, entry.DetailType, entry.Detail));
    return {
      status: 200,
      body: { FailedEntryCount: 0, Entries: ids.map((id) => ({ EventId: String(id) })) },
    };
  }

  private put(source: string, detailType: string, detailJson: string): number {
    let detail: unknown;
    try {
      detail = JSON.parse(detailJson);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      detail = detailJson;
    }
    const event: LocalEvent = {
      id: ++this.lastId,
      time: new Date(this.options.clock()).toISOString(),
      source,
      'detail-type': detailType,
      detail,
    };
    this.kept.push(event);
    if (this.kept.length > KEPT_EVENTS) this.kept.shift();
    this.options.print(renderEvent(event));
    return event.id;
  }
}

/** One line per event: when, what, and its detail as JSON. */
export function renderEvent(event: LocalEvent): string {
  return `event ${event.time} ${event.source} ${event['detail-type']} ${JSON.stringify(event.detail)}`;
}

/** A stack started before the events endpoint existed. */
export class LocalEventsUnavailableError extends LocalError {
  constructor(httpUrl: string) {
    super(`the stack at ${httpUrl} has no events endpoint (${EVENTS_PATH}): is it an older npm start?`);
  }
}

/** The events the local stack kept after id `after` (0: all). */
export async function requestEvents(httpUrl: string, after = 0): Promise<LocalEvent[]> {
  const res = await fetch(`${httpUrl}${EVENTS_PATH}?after=${after}`);
  if (res.status === 404) throw new LocalEventsUnavailableError(httpUrl);
  if (!res.ok) throw new LocalError(`the stack's events endpoint answered ${res.status}`);
  return ((await res.json()) as { events: LocalEvent[] }).events;
}
