import fc from 'fast-check';
import {
  advance,
  cancel,
  processNext,
  runEvent,
  sendMessage,
  sendPair,
  sendWhileProcessing,
  sweep,
} from './actions';
import { describeFault, type FaultSpec } from './faults';
import { checkAlways } from './invariants';
import type { World } from './world';

/**
 * The commands of the model-based runs (fast-check's `commands` API). The model is empty: what a
 * command may do is decided by the real world when it runs (a cancel with nothing queued, a
 * receive with nothing visible do nothing), so every generated sequence is valid and shrinks
 * freely. After each command the always-invariants are checked; the first violation ends the run.
 */
type Model = Record<string, never>;
type Cmd = fc.AsyncCommand<Model, World>;
/** One command of a run, for scenarios written out by hand. */
export type HarnessStep = Cmd;

abstract class Step implements Cmd {
  check(): boolean {
    return true;
  }
  abstract act(w: World): Promise<unknown>;
  abstract toString(): string;
  async run(_m: Model, w: World): Promise<void> {
    await this.act(w);
    await checkAlways(w);
    if (w.violations.length > 0) throw new Error(w.violations.join('\n'));
  }
}

const crash = (k: number | undefined) => (k === undefined ? '' : `, crash after ${k} calls`);
const fault = (f: FaultSpec | undefined) => (f ? `, fault ${describeFault(f)}` : '');

export class Send extends Step {
  constructor(
    readonly user: number,
    readonly instance: number,
    readonly reuse: number | undefined,
    readonly f: FaultSpec | undefined,
    readonly crashAfter: number | undefined,
  ) {
    super();
  }
  act(w: World) {
    return sendMessage(w, {
      user: this.user,
      instance: this.instance,
      reuse: this.reuse,
      fault: this.f,
      crashAfter: this.crashAfter,
    });
  }
  toString() {
    return `send(u${this.user} via m${this.instance}${this.reuse === undefined ? '' : `, reuse #${this.reuse}`}${fault(this.f)}${crash(this.crashAfter)})`;
  }
}

export class SendPair extends Step {
  constructor(
    readonly user: number,
    readonly held: number,
  ) {
    super();
  }
  act(w: World) {
    return sendPair(w, { user: this.user, held: this.held });
  }
  toString() {
    return `sendPair(u${this.user}: the first's SQS call #${this.held} held while the second runs, then timed out)`;
  }
}

export class SendWhileProcessing extends Step {
  constructor(readonly user: number) {
    super();
  }
  act(w: World) {
    return sendWhileProcessing(w, { user: this.user });
  }
  toString() {
    return `sendWhileProcessing(u${this.user}: its first post waits while the processor serves a wake-up)`;
  }
}

export class Cancel extends Step {
  constructor(
    readonly user: number,
    readonly pick: number,
  ) {
    super();
  }
  act(w: World) {
    return cancel(w, { user: this.user, pick: this.pick });
  }
  toString() {
    return `cancel(u${this.user} #${this.pick})`;
  }
}

export class Process extends Step {
  constructor(
    readonly f: FaultSpec | undefined,
    readonly crashAfter: number | undefined,
  ) {
    super();
  }
  act(w: World) {
    return processNext(w, { fault: this.f, crashAfter: this.crashAfter });
  }
  toString() {
    return `process(${fault(this.f).slice(2)}${crash(this.crashAfter)})`;
  }
}

export class RunEvent extends Step {
  constructor(
    readonly pick: number,
    readonly midStreamMs: number,
    readonly f: FaultSpec | undefined,
    readonly crashAfter: number | undefined,
  ) {
    super();
  }
  act(w: World) {
    return runEvent(w, {
      pick: this.pick,
      midStreamMs: this.midStreamMs,
      fault: this.f,
      crashAfter: this.crashAfter,
    });
  }
  toString() {
    return `runEvent(#${this.pick}${this.midStreamMs ? `, +${this.midStreamMs} ms mid-reply` : ''}${fault(this.f)}${crash(this.crashAfter)})`;
  }
}

export class Advance extends Step {
  constructor(readonly ms: number) {
    super();
  }
  act(w: World) {
    return advance(w, this.ms);
  }
  toString() {
    return `advance(${this.ms} ms)`;
  }
}

export class Sweep extends Step {
  act(w: World) {
    return sweep(w);
  }
  toString() {
    return 'sweep()';
  }
}

/**
 * Users per run: one, so that a run's few commands pile up in one user's item and queue; two in
 * the `global` family, which is about what users share.
 */
export const usersOf = (family: Family) => (family === 'global' ? 2 : 1);

/** The families of findings (issue 20), each with the faults and times that reach it. */
export const FAMILIES = ['time', 'lost-answers', 'async-events', 'queue', 'global'] as const;
export type Family = (typeof FAMILIES)[number];

interface FamilyShape {
  /** Faults a function invocation may get. */
  readonly faults: fc.Arbitrary<FaultSpec | undefined>;
  /** Crash points (calls before the instance dies). */
  readonly crashes: fc.Arbitrary<number | undefined>;
  readonly reuse: boolean;
  readonly midStream: fc.Arbitrary<number>;
  /** Two concurrent sends in a fixed interleaving (queue family). */
  readonly pairs?: boolean;
}

const none = fc.constant(undefined);
const maybe = <T>(arb: fc.Arbitrary<T>, freq = 3) =>
  fc.oneof({ arbitrary: none, weight: freq }, { arbitrary: arb, weight: 1 });

const dynamoFault: fc.Arbitrary<FaultSpec> = fc.record({
  port: fc.constant('dynamo' as const),
  nth: fc.nat(3),
  kind: fc.constantFrom(
    'lost-answer' as const,
    'lost-answer-then-throttled' as const,
    'timeout' as const,
    'throttle' as const,
    'outage' as const,
  ),
  durationMs: fc.constantFrom(2000, 6000),
});

/** Faults that pass within a settle's retries (the `global` family is about shared items, not outages). */
const transientDynamoFault: fc.Arbitrary<FaultSpec> = dynamoFault.map((f) => ({ ...f, durationMs: 2000 }));

const SHAPES: Record<Family, FamilyShape> = {
  time: {
    faults: none,
    crashes: none,
    reuse: false,
    midStream: fc.constantFrom(0, 0, 5000, 40_000, 120_000),
  },
  'lost-answers': {
    faults: maybe(dynamoFault, 1),
    crashes: none,
    reuse: false,
    midStream: fc.constantFrom(0, 5000),
  },
  'async-events': {
    faults: maybe(
      fc.oneof(
        fc.record({
          port: fc.constant('handoff' as const),
          nth: fc.constant(0),
          kind: fc.constantFrom(
            'drop' as const,
            'duplicate' as const,
            'lost-answer' as const,
            'timeout' as const,
          ),
        }),
        fc.record({
          port: fc.constant('sender' as const),
          nth: fc.nat(3),
          kind: fc.constantFrom('gone' as const, 'throttle' as const),
        }),
      ),
      1,
    ),
    crashes: maybe(fc.nat(12), 2),
    reuse: false,
    midStream: fc.constantFrom(0, 5000, 60_000),
  },
  queue: {
    faults: maybe(
      fc.record({
        port: fc.constant('sqs' as const),
        nth: fc.nat(2),
        kind: fc.constantFrom(
          'timeout' as const,
          'lost-answer' as const,
          'throttle' as const,
          'duplicate' as const,
        ),
      }),
      2,
    ),
    crashes: none,
    reuse: true,
    midStream: fc.constantFrom(0, 5000),
    pairs: true,
  },
  global: {
    faults: maybe(transientDynamoFault, 2),
    crashes: none,
    reuse: false,
    midStream: fc.constantFrom(0, 5000, 40_000),
  },
};

export function commandsOf(family: Family, replayPath?: string): fc.Arbitrary<Iterable<Cmd>> {
  const s = SHAPES[family];
  const user = fc.nat(usersOf(family) - 1);
  const send = fc
    .tuple(user, fc.nat(1), s.reuse ? maybe(fc.nat(5), 2) : none, s.faults, s.crashes)
    .map(([u, i, r, f, c]) => new Send(u, i, r, f, c));
  const commands: fc.Arbitrary<Cmd>[] = [
    send,
    send,
    send,
    fc.tuple(user, fc.nat(3)).map(([u, p]) => new Cancel(u, p)),
    fc.tuple(s.faults, s.crashes).map(([f, c]) => new Process(f, c)),
    fc.tuple(s.faults, s.crashes).map(([f, c]) => new Process(f, c)),
    fc.tuple(fc.nat(3), s.midStream, s.faults, s.crashes).map(([p, m, f, c]) => new RunEvent(p, m, f, c)),
    fc.tuple(fc.nat(3), s.midStream, s.faults, s.crashes).map(([p, m, f, c]) => new RunEvent(p, m, f, c)),
    fc.constantFrom(1000, 5000, 30_000, 61_000, 330_000, 960_000).map((ms) => new Advance(ms)),
    fc.constant(new Sweep()),
  ];
  if (s.pairs) {
    commands.push(fc.tuple(user, fc.nat(1)).map(([u, h]) => new SendPair(u, h)));
    commands.push(user.map((u) => new SendWhileProcessing(u)));
  }
  return fc.commands(commands, { maxCommands: 30, size: 'medium', replayPath });
}

/**
 * Where a run starts: a few seconds to three minutes before 00:00 UTC at a month's end, before
 * 00:00 UTC mid-month, or before an hour's end, so replies, queues and settles cross them.
 */
export const BOUNDARIES = [
  Date.UTC(2026, 1, 1), // 00:00 UTC, end of January (and of a day)
  Date.UTC(2026, 2, 15), // 00:00 UTC mid-month
  Date.UTC(2026, 2, 15, 11), // the end of an hour
] as const;

export const boundaryStartArb = fc
  .tuple(fc.constantFrom(...BOUNDARIES), fc.integer({ min: 2_000, max: 180_000 }))
  .map(([boundary, before]) => boundary - before);

/**
 * Where the other families start: mid-hour, mid-month, hours from any day boundary, so that what
 * they find is their fault's doing and not a boundary's (the `time` family owns those).
 */
export const quietStartArb = fc
  .integer({ min: 0, max: 10 * 60_000 })
  .map((offset) => Date.UTC(2026, 2, 10, 9, 20) + offset);

/** The `global` family starts before an hour's end (hourly shares roll over; clocks are skewed). */
export const hourEndStartArb = fc
  .integer({ min: 2_000, max: 120_000 })
  .map((before) => Date.UTC(2026, 2, 15, 11) - before);

export const startArb = (family: Family) =>
  family === 'time' ? boundaryStartArb : family === 'global' ? hourEndStartArb : quietStartArb;

/** Skews of the four instances' clocks (two Message instances, processor, runner). */
export const skewsArb = fc.tuple(
  fc.integer({ min: -3000, max: 3000 }),
  fc.integer({ min: -3000, max: 3000 }),
  fc.integer({ min: -3000, max: 3000 }),
  fc.integer({ min: -3000, max: 3000 }),
);
