// The page's limit names: the labels the local gateway generates from the limit kinds
// (`/limit-labels.js`, local/limit-names.ts), bound to the wording of limit-names.js.

import { limitNames } from './limit-names.js';

export { replyMeta } from './limit-names.js';

/** `{ messageRate: 'message rate', … }`; empty when the page is served without the local gateway. */
async function loadLabels() {
  try {
    return (await import('./limit-labels.js')).LIMIT_LABELS;
  } catch (err) {
    // A copy of the page served elsewhere (docs/deploy.md): the protocol's names, not human ones.
    console.warn('limit labels not available, showing limit names as the protocol has them', err);
    return {};
  }
}

export const { limitName, humanizeLimitNames, describeLimitWarning } = limitNames(await loadLabels());
