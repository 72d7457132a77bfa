import type { ConversationRef } from './conversation';
import type { TokenReservation } from './limiter/decision';
import type { Tier } from './limiter/tiers';
import type { ServerMessage } from './server-messages';

/**
 * What a route function (or the processor) hands to the reply runner for one admitted request:
 * everything needed to stream its reply, settle it and release what it holds, so the runner reads
 * nothing before it starts. Sent as the payload of an asynchronous Lambda invocation (at most
 * 1 MB; a prompt is at most MAX_MESSAGE_CHARS code points).
 */
export interface ReplyJob {
  readonly v: 1;
  readonly userId: string;
  readonly claimTier?: Tier;
  /** The token's `team` claim at admission (SPEC §9.4), as the request's decision had it. */
  readonly claimTeam?: string;
  readonly requestId: string;
  /** Where the reply goes first. */
  readonly connectionId: string;
  readonly prompt: string;
  readonly reservation: TokenReservation;
  /** The model that answers (a configured model id). @default the first configured model */
  readonly model?: string;
  /** The model the request asked for, when a spent cost budget let the fallback answer. */
  readonly fallbackFrom?: string;
  /**
   * `direct`: admitted at once; the runner settles its reservation.
   * `queue`: a queued request, the user's active one; the runner's settle also ends it, and then
   * it releases the user's SQS wake-up (held in flight meanwhile) so the next head can run.
   */
  readonly source: 'direct' | 'queue';
  /** Queue only: the active request's lease as the processor set it, and its attempt number. */
  readonly lease?: { readonly untilEpochMs: number; readonly attempts: number };
  /** Queue only: the receipt handle of the wake-up held in flight for this reply. */
  readonly wakeUpReceiptHandle?: string;
  /**
   * Until when the request holds its in-flight slot (epoch ms): after it, another request may take
   * the slot, so the reply must have ended; the runner stops the model before it. Absent when it
   * failed open (it holds no slot).
   */
  readonly inFlightUntilEpochMs?: number;
  /** A conversation's message: the earlier turns its admission counted, and its own turn's time. */
  readonly conversation?: ConversationRef;
  /** Direct only: the request was admitted while the limiter store was down; nothing to settle. */
  readonly failedOpen?: boolean;
}

/** Reads a job from an invocation payload; `undefined` for anything else (logged and dropped). */
export function parseReplyJob(payload: unknown): ReplyJob | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const job = payload as Partial<ReplyJob>;
  if (job.v !== 1) return undefined;
  const strings = [job.userId, job.requestId, job.connectionId, job.prompt];
  if (!strings.every((x) => typeof x === 'string' && x.length > 0)) return undefined;
  if (job.source !== 'direct' && job.source !== 'queue') return undefined;
  const r = job.reservation as Partial<TokenReservation> | undefined;
  if (!r || typeof r.reservedTokens !== 'number' || typeof r.outputAllowance !== 'number') return undefined;
  if (job.source === 'queue' && (!job.lease || typeof job.wakeUpReceiptHandle !== 'string')) return undefined;
  return job as ReplyJob;
}

/**
 * What a runner produced but could not settle (the store was out at its commit, issue 20 finding
 * 8): its final message, its usage and its claim, kept in the Requests table so the attempt that
 * settles the request charges this usage and sends this message, instead of running the model
 * again (a Lambda retry of the same event adopts the claim; a takeover settles it as its own).
 */
export interface ProducedReply {
  /** The claim of the runner that produced it: a retry of the same event settles under it. */
  readonly claim: string;
  readonly usage: {
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly totalTokens: number;
    readonly costUsd?: number;
  };
  /** The final message (`message_complete`, or the failure it ended with). */
  readonly message: ServerMessage;
}
