import { DeleteItemCommand, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { DynamoLimiter } from '../../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../../lambda/adapters/models';
import { ReplyStore } from '../../../lambda/adapters/reply-store';
import { RequestQueue } from '../../../lambda/adapters/request-queue';
import type { GlobalLimits } from '../../../lambda/core/limiter/global/limits';
import { lineKey } from '../../../lambda/core/limiter/global/line';
import { shardKey } from '../../../lambda/core/limiter/global/shards';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import type { LimiterSnapshot } from '../../../lambda/core/limiter/item/state';
import { parseLimitsConfig } from '../../../lambda/core/limiter/policy';
import { ECHO_MODEL } from '../../../lambda/core/models';
import type { ReplyJob } from '../../../lambda/core/reply-job';
import { FUNCTIONS } from '../../../lambda/core/resources';
import { ChatService } from '../../../lambda/services/chat-service';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LogPort,
  ModelPort,
  OutgoingMessage,
  ReplyHandoffPort,
} from '../../../lambda/services/ports';
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../../../lambda/services/replay-service';
import { type DropCondition, ReplyFailureService } from '../../../lambda/services/reply-failure';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../../lambda/services/reply-runner';
import { Crash, type FaultSpec, faultyDynamo, Invocation, type Port, through, timeoutError } from './faults';
import { checkPlaceNotice } from './invariants';
import { SimFifoQueue, simSqsClient } from './sim-sqs';

/**
 * The limits every run uses: small enough that a handful of messages queue (message rate, two
 * in flight), with every windowed counter on (daily and monthly tokens and cost, hourly messages),
 * so each boundary moves something.
 */
export const HARNESS_LIMITS = parseLimitsConfig({
  tiers: {
    free: {
      messagesPerMinute: 2,
      burst: 1,
      requestsInFlight: 2,
      hourlyMessages: 40,
      dailyTokens: 4000,
      monthlyTokens: 50_000,
      dailyCostUsd: 1,
      monthlyCostUsd: 5,
      defaultMaxOutputTokens: 48,
      minOutputTokens: 16,
    },
  },
});
export const FREE = HARNESS_LIMITS.tiers.free;

/**
 * Stack-wide limits of the `global` family: two shards, two requests in flight across all users,
 * a few messages an hour and tokens a day, so two users contend for them.
 */
export const HARNESS_GLOBAL = parseLimitsConfig({
  global: { requestsInFlight: 2, hourlyMessages: 8, dailyTokens: 3000, shards: 2 },
}).global!;
export const MAX_QUEUED = 3;
export const MAX_QUEUE_WAIT_SECONDS = 300;
/** Lambda's retries of a failed asynchronous runner invocation, as the stack sets them. */
export const RUNNER_ASYNC_RETRIES = 1;

export type Role = 'message' | 'processor' | 'runner' | 'sweep';

/** A `request_queued` or `queue_position` as it reached the client. */
export interface PlaceNotice {
  readonly type: string;
  readonly position: number;
  /** Absent (or not a number) only from a server that breaks the protocol. */
  readonly queueVersion?: number;
}

/** What one user's client saw of one request id. */
export interface ClientRequest {
  readonly requestId: string;
  readonly userId: string;
  /** Sends this record stands for (1: a reused id gets a record per send). */
  readonly sends: number;
  /** Sends whose Message function crashed or threw: the client got no answer naming the id. */
  ambiguous: number;
  /** Final messages (or refusals) for this id, in order. */
  readonly terminals: { type: string; atMs: number; usage?: { inputTokens: number; outputTokens: number } }[];
  /** Positions told, per send (every notice received, in arrival order). */
  readonly positions: number[][];
  /** The place notices received for this send, in arrival order (for the version invariant). */
  readonly places: PlaceNotice[];
  /**
   * The place a client following docs/protocol.md shows: the latest notice, unless one computed
   * from an older version of the list than the one shown (the two crossed on the way).
   */
  shown?: PlaceNotice;
  /** Reservations seen in the jobs handed to the runner (by day/month and size). */
  reservation?: { dayNumber: number; tokens: number; costMicroUsd: number };
}

const TERMINAL = new Set([
  'message_complete',
  'request_failed',
  'request_expired',
  'request_cancelled',
  'error',
]);

/** One Lambda function instance (a warm container): its limiter (with its beliefs), its clock. */
export class Instance {
  limiter!: DynamoLimiter;
  current: Invocation;
  chat?: ChatService;
  replay?: ReplayService;
  runner?: ReplyRunner;
  /** The runner's on-failure destination (`replyFailure`), run on the sweep's instance. */
  failures?: ReplyFailureService;
  queue!: RequestQueue;
  dynamo!: DynamoDBClient;
  store!: ReplyStore;
  sender!: ConnectionSender;
  directory!: ConnectionDirectory;
  log!: LogPort;
  /** Cold starts after crashes. */
  restarts = 0;

  constructor(
    private readonly world: World,
    readonly role: Role,
    readonly name: string,
    readonly skewMs: number,
  ) {
    this.current = Invocation.quiet(() => this.clock());
    this.boot();
  }

  clock(): number {
    return this.world.t + this.skewMs;
  }

  /** A new container: nothing of the old one's memory survives. */
  boot(): void {
    const w = this.world;
    const now = () => this.clock();
    const dynamo = faultyDynamo(w.dynamo, () => this.current);
    this.dynamo = dynamo;
    this.limiter = new DynamoLimiter({
      client: dynamo,
      tableName: w.tables.limits,
      tiers: HARNESS_LIMITS.tiers,
      models: HARNESS_LIMITS.models,
      global: w.global,
      clock: now,
    });
    const store = new ReplyStore(dynamo, w.tables.requests);
    const queue = new RequestQueue(w.sqsFor(this) as never, SIM_QUEUE_URL, SIM_DLQ_URL);
    this.queue = queue;
    const sender = w.senderFor(this);
    const directory = {
      listByUser: async (userId: string) => [{ connectionId: connectionOf(userId) }],
    };
    const log = w.logFor(this);
    this.store = store;
    this.sender = sender;
    this.directory = directory;
    this.log = log;
    const metrics = { count: () => undefined, milliseconds: () => undefined };
    const sleep = async (ms: number) => {
      w.advance(ms);
    };
    const common = { limiter: this.limiter, store, queue, sender, directory, metrics, log, now };
    const handoff = w.handoffFor(this);
    if (this.role === 'message') {
      this.chat = new ChatService({
        ...common,
        handoff,
        settings: { maxQueuedPerUser: MAX_QUEUED, maxQueueWaitSeconds: MAX_QUEUE_WAIT_SECONDS },
      });
    } else if (this.role === 'processor') {
      this.replay = new ReplayService({ ...common, handoff, settings: DEFAULT_REPLAY_SETTINGS, sleep });
    } else if (this.role === 'runner') {
      const port = w.model();
      this.runner = new ReplyRunner({
        ...common,
        model: port,
        catalog: new Map([[ECHO_MODEL.id, { spec: ECHO_MODEL, port }]]),
        settings: { ...DEFAULT_RUNNER_SETTINGS, modelRetryBaseMs: 100 },
        sleep,
      });
    } else if (this.role === 'sweep') {
      this.failures = new ReplyFailureService(common);
    }
  }

  /** Runs one invocation with its faults; a crash kills the container (the next one boots cold). */
  async invoke<T>(fault: FaultSpec | undefined, crashAfter: number | undefined, body: () => Promise<T>) {
    const inv = new Invocation(fault, crashAfter, () => this.clock());
    this.current = inv;
    try {
      const value = await body();
      // A service may catch the crash's errors and carry on to return: a dead process returns
      // nothing (its sends failed too), so what it returned is dropped.
      if (inv.dead) return { ok: false as const, error: new Crash(), crashed: true };
      return { ok: true as const, value };
    } catch (error) {
      return { ok: false as const, error, crashed: inv.dead || error instanceof Crash };
    } finally {
      this.current = Invocation.quiet(() => this.clock());
      if (inv.dead) {
        this.restarts++;
        this.world.trace(`${this.name} crashed; cold start`);
        this.boot();
      }
    }
  }
}

export const SIM_QUEUE_URL = 'sim://chat-limiter-requests.fifo';
export const SIM_DLQ_URL = 'sim://chat-limiter-requests-dlq.fifo';
export const connectionOf = (userId: string) => `c-${userId}`;

/**
 * Lambda's maximum event age of the runner's events (FUNCTIONS.reply): an event it cannot start
 * within it goes to the on-failure destination (`replyFailure`) instead.
 */
export const RUNNER_MAX_EVENT_AGE_MS = FUNCTIONS.reply.asyncInvoke!.maxEventAgeSeconds * 1000;

/** An invocation record Lambda sends to the runner's on-failure destination (`replyFailure`). */
export interface FailureRecord {
  readonly job: ReplyJob;
  readonly condition: DropCondition;
  /** Attempts Lambda made (0: never started). */
  readonly invokeCount: number;
  /** When Lambda sends it: at once after the last attempt failed, or at the maximum event age. */
  readonly dueAtMs: number;
}

export interface PendingEvent {
  readonly id: number;
  readonly job: ReplyJob;
  /** Lambda's attempt number of this event (1, then its retries). */
  readonly attempt: number;
  /** When Lambda accepted the event: past the maximum event age it never runs. */
  readonly sentAtMs: number;
}

export interface WorldOptions {
  readonly dynamo: DynamoDBClient;
  readonly tables: { readonly limits: string; readonly requests: string };
  readonly startMs: number;
  /** Skews of the instances' clocks: two Message instances, the processor, the runner. */
  readonly skewsMs: readonly [number, number, number, number];
  readonly users: readonly string[];
  /** Stack-wide limits (the `global` family). @default none */
  readonly global?: GlobalLimits;
}

/**
 * The system under test, in one process: two Message function instances, a processor and a reply
 * runner (the real services and adapters), the Limits and Requests tables on the emulator, the
 * simulated FIFO queue, the runner's asynchronous events, and each user's client (what it was
 * told). Time is the harness's: it moves only when a command (or a service's `sleep`) moves it.
 */
export class World {
  t: number;
  readonly dynamo: DynamoDBClient;
  readonly tables: WorldOptions['tables'];
  readonly queue: SimFifoQueue;
  readonly dlq: SimFifoQueue;
  readonly messageInstances: Instance[];
  readonly processor: Instance;
  readonly runnerInstance: Instance;
  /** The sweep's function instance (used only when the branch has a sweep). */
  readonly sweeper: Instance;
  readonly users: readonly string[];
  readonly global?: GlobalLimits;
  readonly events: PendingEvent[] = [];
  /** Records on their way to the runner's on-failure destination (`replyFailure`). */
  readonly failureRecords: FailureRecord[] = [];
  /** Each request id's latest send. */
  readonly requests = new Map<string, ClientRequest>();
  /** Every send, in order (a reused id appears once per send). */
  readonly all: ClientRequest[] = [];
  /** What went wrong and what happened, for the failure report. */
  readonly log: string[] = [];
  /** Violations seen while commands ran (checked again at the end). */
  readonly violations: string[] = [];
  private eventSeq = 0;
  private requestSeq = 0;
  /** What runs while a `held` or `held-then-timeout` call waits (the other half of a pair). */
  whileHeld?: () => Promise<void>;
  /** The next runner invocation advances the clock this much after the reply's first chunk. */
  midStreamMs = 0;

  constructor(options: WorldOptions) {
    this.t = options.startMs;
    this.dynamo = options.dynamo;
    this.tables = options.tables;
    this.users = options.users;
    this.global = options.global;
    this.queue = new SimFifoQueue(() => this.t);
    this.dlq = new SimFifoQueue(() => this.t);
    const [m0, m1, p, r] = options.skewsMs;
    this.messageInstances = [
      new Instance(this, 'message', 'message#0', m0),
      new Instance(this, 'message', 'message#1', m1),
    ];
    this.processor = new Instance(this, 'processor', 'processor', p);
    this.runnerInstance = new Instance(this, 'runner', 'runner', r);
    this.sweeper = new Instance(this, 'sweep', 'sweep', 0);
  }

  advance(ms: number): void {
    this.t += Math.max(0, ms);
  }

  trace(line: string): void {
    this.log.push(`${new Date(this.t).toISOString()} ${line}`);
    if (this.log.length > 400) this.log.shift();
  }

  newRequestId(): string {
    return `r${++this.requestSeq}`;
  }

  /**
   * A new send of `requestId`: a new record (a reused id starts over; what arrives for the id from
   * now on is the new request's, as the client would read it).
   */
  record(requestId: string, userId: string): ClientRequest {
    const r: ClientRequest = {
      requestId,
      userId,
      sends: 1,
      ambiguous: 0,
      terminals: [],
      positions: [],
      places: [],
    };
    this.requests.set(requestId, r);
    this.all.push(r);
    return r;
  }

  /** The request ids of a user whose every send has ended (a client may reuse them, SPEC §3). */
  endedIdsOf(userId: string): string[] {
    return [...this.requests.values()]
      .filter((r) => r.userId === userId && r.terminals.length === r.sends && r.ambiguous === 0)
      .map((r) => r.requestId);
  }

  // ---- ports ------------------------------------------------------------------------------

  sqsFor(instance: Instance) {
    const sim = simSqsClient({ [SIM_QUEUE_URL]: this.queue, [SIM_DLQ_URL]: this.dlq });
    return {
      send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const plan = instance.current.plan('sqs');
        const forward = () => sim.send(command);
        if (plan.kind === 'special') {
          if (plan.fault === 'held-then-timeout') {
            await this.whileHeld?.();
            throw timeoutError();
          }
          // `duplicate`: the SDK retried a send whose first answer was lost (FIFO dedups it).
          if (plan.fault === 'duplicate') await forward();
          return forward();
        }
        return through(plan, forward);
      },
    };
  }

  senderFor(instance: Instance): ConnectionSender {
    return {
      send: async (connectionId, message) => {
        const plan = instance.current.plan('sender');
        if (plan.kind === 'special' && plan.fault === 'gone') return 'gone';
        if (plan.kind === 'special' && plan.fault === 'held') await this.whileHeld?.();
        return through(plan.kind === 'special' ? { kind: 'forward' } : plan, async () => {
          this.deliver(connectionId, message, instance);
          return 'sent' as const;
        });
      },
    };
  }

  handoffFor(instance: Instance): ReplyHandoffPort {
    return {
      handOff: async (job) => {
        const plan = instance.current.plan('handoff');
        this.noteReservation(job);
        const enqueue = async () => {
          this.events.push({ id: ++this.eventSeq, job, attempt: 1, sentAtMs: this.t });
          this.trace(`${instance.name} handed ${job.requestId} (${job.source}) to the runner`);
        };
        if (plan.kind === 'special') {
          if (plan.fault === 'drop') {
            // Accepted, never started (throttled, lost): at the maximum event age Lambda sends
            // its record to the on-failure destination.
            this.trace(`${instance.name}: event for ${job.requestId} accepted and dropped`);
            this.failureRecords.push({
              job,
              condition: 'EventAgeExceeded',
              invokeCount: 0,
              dueAtMs: this.t + RUNNER_MAX_EVENT_AGE_MS,
            });
            return;
          }
          if (plan.fault === 'duplicate') await enqueue();
          return enqueue();
        }
        return through(plan, enqueue);
      },
    };
  }

  logFor(instance: Instance) {
    const line = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      this.trace(`${instance.name} ${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
    return { info: () => undefined, warn: line('WARN'), error: line('ERROR') };
  }

  /** The echo model; the clock moves `midStreamMs` after the first chunk (a reply that takes time). */
  model(): ModelPort {
    const echo = new EchoModel({ delayMs: 0 });
    const world = this;
    return {
      async *stream(input) {
        let first = true;
        for await (const event of echo.stream(input)) {
          yield event;
          if (event.type === 'chunk' && first) {
            first = false;
            world.advance(world.midStreamMs);
          }
        }
      },
    };
  }

  private noteReservation(job: ReplyJob): void {
    const r = this.requests.get(job.requestId);
    // Admitted while the store was down (the fail policy `open`): nothing was reserved.
    if (!r || job.failedOpen) return;
    r.reservation = {
      dayNumber: job.reservation.dayNumber,
      tokens: job.reservation.reservedTokens,
      costMicroUsd: job.reservation.reservedCostMicroUsd ?? 0,
    };
  }

  /** A message reached the client of `connectionId`. */
  private deliver(connectionId: string, message: OutgoingMessage, from: Instance): void {
    const requestId = 'requestId' in message ? (message.requestId as string | undefined) : undefined;
    if (!requestId) return;
    const r = this.requests.get(requestId);
    if (!r) return;
    if (message.type === 'request_queued' || message.type === 'queue_position') {
      const told = r.positions[r.sends - 1] ?? [];
      r.positions[r.sends - 1] = told;
      told.push(message.position);
      const version = (message as { queueVersion?: unknown }).queueVersion;
      const notice = {
        type: message.type,
        position: message.position,
        queueVersion: typeof version === 'number' ? version : undefined,
      };
      this.trace(
        `${connectionId} ← ${message.type} ${requestId} #${notice.position} v${notice.queueVersion ?? '?'} (from ${from.name})`,
      );
      checkPlaceNotice(this, r, notice);
    }
    // "Outcome unknown" (the decision's write may have landed, SPEC §9.1) is not an end: the
    // request may still hold a reservation and a slot, and its end comes later (the sweep's
    // request_failed) or never (nothing landed). It counts like an error that names no request.
    if (
      message.type === 'error' &&
      (message.details as { outcomeUnknown?: unknown } | undefined)?.outcomeUnknown
    ) {
      r.ambiguous++;
      this.trace(`${connectionId} ← error ${requestId} outcome unknown (from ${from.name})`);
      return;
    }
    if (TERMINAL.has(message.type)) {
      this.terminal(r, message.type === 'error' ? `error:${message.code}` : message.type, message);
      this.trace(`${connectionId} ← ${message.type} ${requestId} (from ${from.name})`);
    }
  }

  terminal(r: ClientRequest, type: string, message?: OutgoingMessage): void {
    const usage =
      message?.type === 'message_complete'
        ? { inputTokens: message.usage.inputTokens, outputTokens: message.usage.outputTokens }
        : undefined;
    r.terminals.push({ type, atMs: this.t, usage });
    if (r.terminals.length > r.sends) {
      this.violation(
        `${r.requestId} ended ${r.terminals.length} times for ${r.sends} send(s): ${r.terminals.map((x) => x.type).join(', ')}`,
      );
    }
  }

  violation(text: string): void {
    if (!this.violations.includes(text)) this.violations.push(text);
    this.trace(`VIOLATION ${text}`);
  }

  // ---- reading the store, for the invariants ----------------------------------------------

  async item(userId: string): Promise<LimiterSnapshot> {
    return snapshotFromItem(await this.raw(`user#${userId}`));
  }

  async raw(pk: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.dynamo.send(
      new GetItemCommand({ TableName: this.tables.limits, Key: marshall({ pk }), ConsistentRead: true }),
    );
    return Item ? unmarshall(Item) : undefined;
  }

  /** The global shards, as stored. */
  async shards(): Promise<LimiterSnapshot[]> {
    const n = this.global?.shards ?? 0;
    return Promise.all(
      Array.from({ length: n }, async (_, k) => snapshotFromItem(await this.raw(shardKey(k)))),
    );
  }

  /** A run of the `global` family starts with no global state (the table is shared by runs). */
  async clearGlobal(): Promise<void> {
    const n = this.global?.shards ?? 0;
    const keys = [...Array.from({ length: n }, (_, k) => shardKey(k)), ...this.users.map(lineKey)];
    await Promise.all(
      keys.map((pk) =>
        this.dynamo.send(new DeleteItemCommand({ TableName: this.tables.limits, Key: marshall({ pk }) })),
      ),
    );
  }
}

export type { Port };
