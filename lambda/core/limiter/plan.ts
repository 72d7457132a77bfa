/** Moved to plan/ (issue 21): admission, warnings, queue, settle, ttl, usage key; re-exported for the merge. */
export { ExpressionWriter, type UpdatePlan } from './expression';
export * from './plan/admission';
export * from './plan/queue';
export * from './plan/settle';
export * from './plan/ttl';
export * from './plan/usage-key';
export * from './plan/warnings';
