// The page's limit names: the labels the local gateway generates from the limit kinds
// (`/limit-labels.js`, local/limit-names.ts), bound to the wording of limit-names.js.

import { limitNames } from './limit-names.js';

export { replyMeta } from './limit-names.js';

/** `{ LIMIT_LABELS: { messageRate: 'message rate', … }, LIMIT_REFILLS }`; empty without the local gateway. */
async function loadKinds() {
  try {
    return await import('./limit-labels.js');
  } catch (err) {
    // A copy of the page served elsewhere (docs/deploy.md): the protocol's names, not human ones.
    console.warn('limit labels not available, showing limit names as the protocol has them', err);
    return {};
  }
}

const kinds = await loadKinds();

export const { limitName, humanizeLimitNames, describeLimitWarning } = limitNames(kinds.LIMIT_LABELS ?? {});

/** How each limit fills again (`window`, `bucket`, `slot`), by name; empty without the local gateway. */
export const LIMIT_REFILLS = kinds.LIMIT_REFILLS ?? {};
