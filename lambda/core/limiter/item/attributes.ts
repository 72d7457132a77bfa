/**
 * Every stored attribute of the limiter table's items, declared once with its meaning (STYLE 12:
 * written on every decision, so short). Code above the store reads the readable state the codec
 * makes of them (item/codec.ts, global/priority.ts).
 *
 * Not here: each limit kind's own counters (the message bucket `tat`, the windows and counts
 * `hw`/`hc`, `dw`/`dc`, `td`/`tu`, `tm`/`tmu`, `cd`/`cu`, `cm`/`cmu`, the token bucket `ttat`),
 * declared by their kind (lambda/core/limiter/kinds: `LimitKind.attributes`, and
 * `GlobalPart.counter` for a shard's).
 */

/* ---------- Every item ---------- */

/** The partition key: `user#<id>`, `global#<k>` for a shard, `gline#<id>` for a waiter in the global line. */
export const KEY_ATTR = 'pk';
/** When DynamoDB may delete the item (epoch seconds; TTL, owned by the table's CDK construct). */
export const TTL_ATTR = 'ttlEpochSeconds';

/* ---------- The per-IP connect bucket's item (lambda/adapters/connect-attempts.ts) ---------- */

/** Its key: `ip#<source address>`. */
export const IP_KEY_PREFIX = 'ip#';
/** The bucket's theoretical arrival time (GCRA, epoch ms). */
export const IP_ARRIVAL_ATTR = 'tat';

/* ---------- The user's item ---------- */

/**
 * The waiting list's version (lambda/core/queue/places.ts): bumped by every write that removes an
 * entry, so of two position notices the newer wins.
 */
export const QUEUE_VERSION_ATTRIBUTE = 'qv';
/** The user's bucket in the sweep index `bySweep` (`"0"`…`"7"`; lambda/core/queue/sweep.ts). */
export const SWEEP_BUCKET_ATTRIBUTE = 'sw';
/** Look at this user's item after this instant (epoch ms): the sweep index's sort key. */
export const SWEEP_AFTER_ATTRIBUTE = 'sa';
/**
 * The usage index `byDaySettled` (`admin top`): partitioned by USAGE_DAY_ATTR, no sort key,
 * projecting the tokens, cost and replies settled today. Written only by the settle
 * (plan/usage-key.ts), never by an admission, a refusal or a queue decision: the counters those
 * move (the daily kinds' `td`/`tu`, …) are not in the index, so a decision costs it no write; and
 * with no sort key a settle changes only projected numbers — 1 index write in place, not a delete
 * and a put (issue 22; the first design sorted by `tu`: +2 index writes on every admission and
 * settle).
 */
export const USAGE_INDEX_PROJECTION = ['st', 'sc', 'sm'] as const;
/** The fields of the settled usage: tokens, cost (µUSD), replies. */
export const SETTLED_USAGE_FIELDS = {
  tokens: USAGE_INDEX_PROJECTION[0],
  costMicroUsd: USAGE_INDEX_PROJECTION[1],
  messages: USAGE_INDEX_PROJECTION[2],
} as const;

/** A user's item's key: `user#<id>`. */
export const USER_KEY_PREFIX = 'user#';
export const userKey = (userId: string) => `${USER_KEY_PREFIX}${userId}`;
export const userIdOf = (key: string) => key.slice(USER_KEY_PREFIX.length);

/** Policy version: bumped by every admin change of tier or override; decisions pin it. */
export const POLICY_VERSION_ATTR = 'pv';
/** The user's tier set by an admin (absent: the token's claim, else free). */
export const TIER_ATTR = 'tier';
/**
 * The tier the user's last admitted token claimed (`free` when it claimed none), written by the
 * admission write itself: `admin usage` shows the tier in effect without a token (issue 23 item 5).
 */
export const CLAIM_TIER_ATTR = 'ct';
/** An admin's override of the user's limits (`{ limits, … }`). */
export const OVERRIDE_ATTR = 'ovr';
/** Token epoch: bumped by a reset of tokens, so reservations made before it refund no tokens. */
export const TOKEN_EPOCH_ATTR = 'te';
/** Cost epoch: bumped by a reset of cost, so reservations made before it refund no cost. */
export const COST_EPOCH_ATTR = 'ce';
/** The waiting request ids, head first: the order they will run in. */
export const WAITING_ATTR = 'waiting';
/** The queued request being answered now: `{ id, lease, att, c? }` (see ACTIVE_FIELDS). */
export const ACTIVE_ATTR = 'act';
/** The fields of `act`. */
export const ACTIVE_FIELDS = {
  /** The request id. */
  requestId: 'id',
  /** The lease: after it (epoch ms) a takeover may serve the request again. */
  lease: 'lease',
  /** Attempts so far (a takeover adds one). */
  attempts: 'att',
  /** The claim of the runner answering this attempt (issue 20, finding 15). */
  claim: 'c',
} as const;
/**
 * Requests being answered now: a map request id → lease (epoch ms). In the user's item (the
 * requests-in-flight kind) and in every global shard (one entry per request holding a share).
 */
export const IN_FLIGHT_ATTR = 'fl';
/** The receipt handle of the user's SQS wake-up, parked while every in-flight slot is taken. */
export const PARKED_WAKE_UP_ATTR = 'wk';
/** The user's key in the usage index (`<day>#<bucket>`, `admin top`): the day of its last settle. */
export const USAGE_DAY_ATTR = 'ud';
/**
 * Closed days' usage by day (`{ <day>: StoredDay }`, HISTORY_FIELDS): the first design, ~1.4 KB at 35
 * days on every write. Read, never written: closed days go to history items (HELD_DAY_ATTR, issue 22).
 */
export const HISTORY_ATTR = 'hist';
/**
 * The last day that closed (`{ d, t, c, m, q }`: HELD_DAY_FIELD and HISTORY_FIELDS), written by the
 * admission that rolls the day over and held until the next one replaces it; its history item
 * (Requests table, `usage#<userId>` / `<YYYY-MM-DD>`) is written once after that admission, and
 * again — as the next history item's PREVIOUS_DAY_ATTR — by the next roll, so one lost write is
 * repaired.
 */
export const HELD_DAY_ATTR = 'hd';
/** The day number of a held or stored day. */
export const HELD_DAY_FIELD = 'd';
/** In a history item: the day the user's item held before this one closed (a lost write's repair). */
export const PREVIOUS_DAY_ATTR = 'p';
/** The fields of one closed day in `hist`, `hd` and a history item. */
export const HISTORY_FIELDS = {
  /** Tokens used. */
  tokens: 't',
  /** Cost (µUSD). */
  costMicroUsd: 'c',
  /** Messages. */
  messages: 'm',
  /** Requests queued. */
  queued: 'q',
} as const;
/** Requests queued on a day (`nq<day>`), until the day goes to history. */
export const QUEUED_DAY_PREFIX = 'nq';
/**
 * A waiting request's place (`q_<requestId>`, see QUEUED_FIELDS): what decisions, positions and
 * deadlines need; its content (the prompt) is in the Requests table, never here (issue 22).
 */
export const QUEUED_PREFIX = 'q_';
/** The fields of a waiting request `q_<id>`. */
export const QUEUED_FIELDS = {
  /** The connection that sent it. */
  connectionId: 'c',
  /** The output tokens it asks for at most. */
  maxTokens: 'x',
  /** The model it names. */
  model: 'm',
  /** The tier its token claimed. */
  claimTier: 't',
  /** Its input, estimated (tokens). */
  estimatedInputTokens: 'i',
  /** When it was queued (epoch ms). */
  enqueuedAtEpochMs: 'a',
  /** Its deadline (epoch ms). */
  expiresAtEpochMs: 'd',
  /** The key of its content item in the Requests table. */
  contentKey: 'k',
  /** The team its token claimed (SPEC §9.4): its replay is decided, and settled, as that team's. */
  claimTeam: 'tn',
  /** Not admitted before then (epoch ms): the refusal that queued it waits for a window's end. */
  notBeforeEpochMs: 'nb',
} as const;
/** A pending reservation (`r_<requestId>`), until its request settles (see RESERVATION_FIELDS). */
export const RESERVATION_PREFIX = 'r_';
/** The fields of a pending reservation `r_<id>`. */
export const RESERVATION_FIELDS = {
  /** The day it was counted in (epoch days). */
  day: 'd',
  /** The month it was counted in (absent on reservations made before monthly budgets). */
  month: 'm',
  /** The cost reserved (µUSD). */
  costMicroUsd: 'c',
  /** The model that answers it. */
  model: 'mo',
  /** Input tokens. */
  inputTokens: 'i',
  /** Output tokens allowed. */
  outputAllowance: 'o',
  /** Token epoch at reservation time (absent: 0). */
  tokenEpoch: 'e',
  /** Cost epoch at reservation time (absent: 0). */
  costEpoch: 'ce',
  /** The claim of the reply runner answering a direct request (issue 20, finding 15). */
  claim: 'a',
} as const;
/** The window each limit last warned in (`w_<limit>`): one `limit_warning` per limit and window. */
export const WARNED_PREFIX = 'w_';
/** The window each limit was last used up in (`wf_<limit>`): one 100 % `Budget Threshold Crossed`. */
export const WARNED_FULL_PREFIX = 'wf_';
/**
 * A settled request's charge, left for its global share (`gs_<requestId>` = `{ t, c, x }`, see
 * SETTLED_SHARE_FIELDS): if its release never lands, the sweep gives back only what was not charged.
 */
export const SETTLED_SHARE_PREFIX = 'gs_';
/** The fields of `gs_<id>`. */
export const SETTLED_SHARE_FIELDS = {
  /** Tokens charged. */
  tokens: 't',
  /** Cost charged (µUSD). */
  costMicroUsd: 'c',
  /** When the entry expires (epoch ms). */
  expiresAtEpochMs: 'x',
} as const;

/* ---------- A global shard (`global#<k>`) ---------- */

/**
 * A shard's record of one request's share (`ga_<requestId>`, see GLOBAL_SHARE_FIELDS), until its
 * release or the sweep's gives it back. The shard's counters are its global parts' (GlobalPart).
 */
export const GLOBAL_SHARE_PREFIX = 'ga_';
/** The fields of `ga_<id>`. */
export const GLOBAL_SHARE_FIELDS = {
  /** The user whose request it is. */
  userId: 'u',
  /** Tokens taken. */
  tokens: 't',
  /** Cost taken (µUSD). */
  costMicroUsd: 'c',
  /** Messages taken (the model's weight). */
  weight: 'w',
  /** The hour and day it was counted in. */
  hour: 'h',
  day: 'd',
  /** Its lease (epoch ms). */
  leaseUntilEpochMs: 'l',
} as const;
/**
 * A shard's share records in their compact form (issue 22): a map request id → list (see
 * GLOBAL_SHARE_ENTRY), so the shard's write can bound their number (`size(gr)`). Written since
 * issue 22; `ga_<id>` records written before are still read, released and swept, never written.
 */
export const GLOBAL_SHARES_ATTR = 'gr';
/** The positions in one `gr` entry: [user, lease (epoch s), tokens, cost (µUSD), messages, hour, day?]. */
export const GLOBAL_SHARE_ENTRY = {
  userId: 0,
  leaseUntilEpochSeconds: 1,
  tokens: 2,
  costMicroUsd: 3,
  weight: 4,
  hour: 5,
  /** The day, only when it is not the hour's (floor(hour / 24)). */
  day: 6,
} as const;

/* ---------- The global line: one item per waiter (`gline#<userId>`, global/line.ts) ---------- */

/** A waiter's item: `gline#<userId>`, written only by that user's own looks (and removed). */
export const LINE_KEY_PREFIX = 'gline#';
/** The waiter's partition in the line index `byLine`: its bucket, `"0"`…`"3"` (global/line.ts). */
export const LINE_PARTITION_ATTR = 'lb';
/** Its place in the bucket, priority order spelled as a string (global/line.ts lineOrderOf). */
export const LINE_ORDER_ATTR = 'lo';
/** The fields of one waiter in the line. */
export const WAITER_FIELDS = {
  /** The user's tier. */
  tier: 't',
  /** When its head was queued (epoch ms). */
  enqueuedAtEpochMs: 'at',
  /** The head's deadline (epoch ms). */
  deadlineEpochMs: 'dl',
  /** The global limit that held it back. */
  limit: 'l',
  /** The receipt handle of the user's parked wake-up. */
  wakeUp: 'h',
  /** When the entry was last written (epoch ms). */
  seenAtEpochMs: 's',
  /** When the waiter's wake-up comes back to look again (epoch ms). */
  wakeAtEpochMs: 'wa',
  /** How many requests the user had waiting at that look (the ETAs of those behind count them). */
  queued: 'q',
  /** Whose capacity it waits for (`team:<name>`, `model:<id>`; absent: the stack's; GlobalWaiter.scope). */
  scope: 'sc',
} as const;

/* ---------- The global budgets' event marks (one item, adapters/limiter/global-events.ts) ---------- */

/** The item's key: one small item, written by the sweep only. */
export const GLOBAL_EVENTS_KEY = 'global#events';
/**
 * The window a global budget last crossed a threshold in (`ge_<limit>_<percent>`, e.g.
 * `ge_dailyTokens_80` = the epoch day): one `Budget Threshold Crossed` per limit, threshold and window.
 */
export const GLOBAL_EVENT_MARK_PREFIX = 'ge_';
export const globalEventMark = (limit: string, thresholdPercent: number) =>
  `${GLOBAL_EVENT_MARK_PREFIX}${limit}_${thresholdPercent}`;

/* ---------- A model's account quota on a global shard (global/model-quotas.ts) ---------- */

/** A shard's share of a model's account quota in the UTC minute (§9.4), per model id: the minute
 * (epoch minutes), the requests and the tokens (input + output allowance × burndown) counted in it. */
export const MODEL_QUOTA_MINUTE_PREFIX = 'mqm_';
export const MODEL_QUOTA_REQUESTS_PREFIX = 'mqr_';
export const MODEL_QUOTA_TOKENS_PREFIX = 'mqt_';
/* ---------- Teams (SPEC §9.4; lambda/core/limiter/teams.ts) ---------- */

/** The user's team set by an admin (`set-team`; absent: the token's claim). Shards: `team#<name>#<k>`. */
export const TEAM_ATTR = 'tn';
/** The teams seen (a string set), added the first time an instance sees one; the sweep repairs each. */
export const TEAMS_INDEX_KEY = 'teams#index';
export const TEAMS_SEEN_ATTR = 'ts';
/** The team of the user's last settled reply, set with the usage entry: `top --team` filters by it. */
export const USAGE_TEAM_ATTR = 'ut';
/** The team the user's last admitted token claimed (absent: none), beside `ct`: `usage`'s "last token". */
export const CLAIM_TEAM_ATTR = 'ctn';
