import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';

/** Does this admission move a kind's bucket (each enforced unless the policy shadows it)? */
export function admissionMovesBucket(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  nowMs: number,
  tokens: number,
): boolean {
  return LIMIT_KINDS.some(
    (kind) => kind.movesBucket?.(policy, snap, nowMs, tokens, !policy.shadow?.includes(kind.name)) ?? false,
  );
}
