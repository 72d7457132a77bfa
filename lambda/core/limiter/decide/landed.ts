import { CoreError } from '../../errors';
import type { DecideInput } from '../decision';
import type { GlobalLimit } from '../global/limits';
import { GLOBAL_LIMITS } from '../global/limits';
import type { LimiterSnapshot } from '../item/state';
import { LIMIT_KINDS } from '../kinds/registry';
import type { AdmissionPlan } from '../plan/admission';

type AlreadyAdmitted = Extract<AdmissionPlan, { kind: 'already-admitted' }>;

/**
 * After a write whose answer was lost (issue 20, finding 7): did it land? The item tells — this
 * request's reservation marker is there (direct: the marker; replay: the marker and the request
 * made the user's active one, which only this admission writes). Then that write is this
 * decision, counted once, and the client is told so, never "busy, nothing counted".
 */
export function landedAdmission(
  input: DecideInput,
  snap: LimiterSnapshot,
  evaluation: AlreadyAdmitted['evaluation'],
): AlreadyAdmitted | undefined {
  const pending = snap.reservations[input.requestId];
  if (!pending) return undefined;
  if (input.queue?.mode === 'replay' && snap.active?.requestId !== input.requestId) return undefined;
  return {
    kind: 'already-admitted',
    inputTokens: pending.inputTokens,
    outputAllowance: pending.outputAllowance,
    day: pending.day,
    tokenEpoch: pending.tokenEpoch ?? 0,
    costEpoch: pending.costEpoch ?? 0,
    evaluation,
  };
}

/**
 * The global limit a request waiting in the global line is counted under: the one a freed slot
 * makes room in (the kind whose room comes with a slot, not with time), so a settle wakes it.
 */
export function slotLimit(): GlobalLimit {
  const kind = LIMIT_KINDS.find(
    (k) => k.waitsFor === 'slot' && (GLOBAL_LIMITS as readonly string[]).includes(k.name),
  );
  if (!kind) throw new CoreError('no global limit waits for a slot');
  return kind.name as GlobalLimit;
}
