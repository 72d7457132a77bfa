/**
 * Moved: each function has its own composition root in ./runtime/<function>.ts, so it bundles
 * only the adapters and SDK clients it uses (issue 21). Nothing imports this file; it re-exports
 * the roots for code written against the old path and is removed at the merge.
 */
export { adminRuntime } from './runtime/admin';
export { chatRuntime } from './runtime/message';
export { processorRuntime } from './runtime/processor';
export { replyRuntime } from './runtime/reply';
export { replyFailureRuntime } from './runtime/reply-failure';
export { sweepRuntime } from './runtime/sweep';
