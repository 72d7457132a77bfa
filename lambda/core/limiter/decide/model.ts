import type { ModelSpec } from '../../models';
import type { DecideInput } from '../decision';
import type { LimitPolicy } from '../kinds/registry';
import { limitKind } from '../kinds/registry';
import type { AdmissionPlan } from '../plan/admission';
import { modelFor } from '../policy';

/** The model that answers an admitted request, and the one it stood in for after a soft landing. */
export interface ServedModel {
  readonly model: string;
  readonly fallbackFrom?: string;
  readonly price: ModelSpec;
}

/** The request, as the limits see it on this model: its price, and its maximum output. */
export function askOn(input: DecideInput, model: ModelSpec): DecideInput {
  return {
    ...input,
    model: model.id,
    price: model,
    messageWeight: model.messageWeight,
    modelMaxOutputTokens: Math.min(
      input.modelMaxOutputTokens ?? Number.POSITIVE_INFINITY,
      model.maxOutputTokens,
    ),
  };
}

/**
 * Plans the admission on the model the request names (else the tier's default) and, when a spent
 * cost budget refuses it, on the tier's cheaper fallback model instead (soft landing): the first
 * plan that writes wins. Undefined when the tier may not use the named model (refused, nothing
 * counted).
 */
export function chooseModel(
  policy: LimitPolicy,
  models: readonly ModelSpec[],
  input: DecideInput,
  plan: (model: ModelSpec) => AdmissionPlan,
): { readonly planned: AdmissionPlan; readonly served: ServedModel } | undefined {
  const chosen = modelFor(policy, models, input.model);
  if (!chosen) return undefined;
  let model = chosen;
  let planned = plan(model);
  const fallback = policy.fallbackModel ? models.find((m) => m.id === policy.fallbackModel) : undefined;
  const blocking = planned.kind === 'reject' ? planned.evaluation.blocking?.limit : undefined;
  if (fallback && fallback.id !== chosen.id && blocking && limitKind(blocking).unit === 'usd') {
    const landed = plan(fallback);
    if (landed.kind === 'write') {
      model = fallback;
      planned = landed;
    }
  }
  return {
    planned,
    served: { model: model.id, fallbackFrom: model.id === chosen.id ? undefined : chosen.id, price: model },
  };
}
