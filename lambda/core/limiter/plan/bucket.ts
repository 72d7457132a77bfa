import type { LimiterSnapshot } from '../item/state';
import type { LimitName, LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';
import { movesTokenBucket } from '../kinds/tokens-per-minute';

/**
 * An addition to the kind contract (issue 21), kept here until kinds/ owns it as
 * `LimitKind.movesBucket`: a kind with a bucket says whether an admission reserving `tokens` moves
 * it (always when enforced; a shadow bucket it would overfill stops counting). The adapter keeps the
 * bucket's arrival time the reservation left only when it moved (`bucketAfterEpochMs`).
 */
export type MovesBucket = (
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  nowMs: number,
  tokens: number,
  enforce: boolean,
) => boolean;

/** The kinds that keep a bucket an admission may leave unmoved (to move onto each kind). */
const BUCKET_KINDS: Partial<Record<LimitName, MovesBucket>> = { tokensPerMinute: movesTokenBucket };

/** Does this admission move a kind's bucket (each enforced unless the policy shadows it)? */
export function admissionMovesBucket(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  nowMs: number,
  tokens: number,
): boolean {
  return LIMIT_KINDS.some(
    (kind) =>
      BUCKET_KINDS[kind.name]?.(policy, snap, nowMs, tokens, !policy.shadow?.includes(kind.name)) ?? false,
  );
}
