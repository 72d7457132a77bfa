/**
 * When a global in-flight limit holds a user's queue back (SPEC §9.5 "ETAs hold when a global or
 * team limit binds"), a queued request waits for its turn at the stack's slots — or, held by its
 * team's in-flight limit, at its team's (`team`: the waiters counted are those of the team's
 * scope only): every request ahead of it in the line takes one slot turn first. The model
 * (docs/queue.md, "ETAs when a global or team limit binds"), from what the deciding instance knows
 * without an extra call:
 *
 * - the requests ahead: the live waiters of the line's head (its index, as this instance last
 *   read it) that go before this user, each counted with the requests it said it had waiting at
 *   its last look, plus this request's own place in its user's queue;
 * - the slots: the limit, and when each request holding one was admitted (its shard lease, less
 *   the lease's length);
 * - the turnover: the mean time between admissions it has seen lately; before it has seen enough,
 *   how long a request holds a slot.
 *
 * The n-th turn is the request's admission: a free slot's turn is now; then one turn every
 * `turnEveryMs` from the last admission. Without a turnover seen, a slot held since `a` frees at
 * `a + hold` (now, if that has passed) and each slot turns over every `hold`.
 */
export interface GlobalWait {
  /** The binding limit as `status` names it (`global.requestsInFlight`, `team.requestsInFlight`). */
  readonly name: string;
  /** The team whose limit it is (SPEC §9.4); absent: the stack's. */
  readonly team?: string;
  readonly limit: number;
  /** Requests of other users that go before this user's head. */
  readonly requestsAhead: number;
  /** Users in line before this one (the line's count, for the reason). */
  readonly usersAhead: number;
  /** When each request that holds a slot now was admitted (epoch ms). */
  readonly holdersAdmittedAtEpochMs: readonly number[];
  /** How long a request holds a slot, as seen (ms); undefined: none seen end yet. */
  readonly holdMs: number | undefined;
  /**
   * The mean time between two admissions to the slots, as seen lately (ms): the turnover itself,
   * the hand-over from a freed slot to the next in line included. Undefined: too few seen.
   */
  readonly turnEveryMs: number | undefined;
}

/** Turns computed one by one at most this many; past it, whole rounds of `limit` turns at once. */
const MAX_STEPPED_TURNS = 1000;

/**
 * How long a request holds a slot when none has been seen to end: as long as the oldest holder
 * has held its own so far (a lower bound), and at least a second.
 */
export function holdEstimateMs(wait: GlobalWait, nowMs: number): number {
  if (wait.holdMs !== undefined) return wait.holdMs;
  const oldest = Math.min(nowMs, ...wait.holdersAdmittedAtEpochMs);
  return Math.max(1000, nowMs - oldest);
}

/**
 * When the request at `position` of its user's queue gets a slot (epoch ms): a free slot's turns
 * now, then one every `turnEveryMs` counted from the last admission; without a turnover seen yet,
 * from the holders' admissions and the hold (holdEstimateMs). And never before the user's own
 * requests ahead of it have each held a slot for a hold: a user's queue runs one request at a
 * time, so its k-th starts at least k − 1 holds after its first (the turns alone would give a
 * user's first two requests the same instant when two slots free together).
 */
export function globalAdmissionEpochMs(wait: GlobalWait, position: number, nowMs: number): number {
  const at = turnAtEpochMs(wait, wait.requestsAhead + position, nowMs);
  if (position <= 1) return at;
  const first = turnAtEpochMs(wait, wait.requestsAhead + 1, nowMs);
  return Math.max(at, Math.ceil(first + (position - 1) * holdEstimateMs(wait, nowMs)));
}

/** When the `turns`-th turn at the slots comes (epoch ms). */
function turnAtEpochMs(wait: GlobalWait, turns: number, nowMs: number): number {
  if (wait.turnEveryMs !== undefined) {
    const free = Math.max(0, wait.limit - wait.holdersAdmittedAtEpochMs.length);
    if (turns <= free) return nowMs;
    const last = Math.max(Number.NEGATIVE_INFINITY, ...wait.holdersAdmittedAtEpochMs);
    const from = Number.isFinite(last) ? last : nowMs;
    return Math.ceil(Math.max(nowMs, from + (turns - free) * wait.turnEveryMs));
  }
  return byHolds(wait, turns, nowMs);
}

function byHolds(wait: GlobalWait, turnsNeeded: number, nowMs: number): number {
  const holdMs = holdEstimateMs(wait, nowMs);
  const slots = Math.max(1, wait.limit);
  const frees = wait.holdersAdmittedAtEpochMs
    .slice(0, slots)
    .map((at) => Math.max(nowMs, at + holdMs))
    .concat(Array.from({ length: Math.max(0, slots - wait.holdersAdmittedAtEpochMs.length) }, () => nowMs));
  let turns = turnsNeeded;
  // Whole rounds: every slot turns over once per `hold`.
  const rounds = Math.max(0, Math.floor((turns - MAX_STEPPED_TURNS) / slots));
  turns -= rounds * slots;
  let at = nowMs;
  for (let n = 0; n < turns; n++) {
    let k = 0;
    for (let i = 1; i < frees.length; i++) if (frees[i]! < frees[k]!) k = i;
    at = frees[k]!;
    frees[k] = at + holdMs;
  }
  return Math.ceil(at + rounds * holdMs);
}

/** Seconds until the request at `position` gets a slot, rounded up (the protocol's unit). */
export function globalWaitSeconds(wait: GlobalWait, position: number, nowMs: number): number {
  return Math.max(0, Math.ceil((globalAdmissionEpochMs(wait, position, nowMs) - nowMs) / 1000));
}

/** The sentence a person reads while the global or team limit holds the queue (SPEC §9.3 "A reason"). */
export function globalWaitReason(wait: GlobalWait): string {
  const inFlight = Math.min(wait.limit, wait.holdersAdmittedAtEpochMs.length);
  const ahead =
    wait.usersAhead === 0
      ? 'you are next in line'
      : `${wait.usersAhead} ${wait.usersAhead === 1 ? 'user is' : 'users are'} ahead of you in line`;
  const whose =
    wait.team === undefined
      ? `Global limit ${wait.name}: ${inFlight} of ${wait.limit} in use across all users`
      : `Team limit ${wait.name} of team ${wait.team}: ${inFlight} of ${wait.limit} in use across the team`;
  return `${whose}; ${ahead}. Your request is queued and will run automatically.`;
}

/**
 * Of the waits that bind a user's queue (the stack's, its team's), the one that lets its head go
 * last: the head goes only when every limit has room.
 */
export function bindingWait(
  waits: readonly (GlobalWait | undefined)[],
  nowMs: number,
): GlobalWait | undefined {
  let latest: GlobalWait | undefined;
  for (const wait of waits) {
    if (
      wait &&
      (!latest || globalAdmissionEpochMs(wait, 1, nowMs) > globalAdmissionEpochMs(latest, 1, nowMs))
    )
      latest = wait;
  }
  return latest;
}
