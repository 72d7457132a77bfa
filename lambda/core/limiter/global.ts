/** Moved to global/ (issue 21): limits, shards, priority, the line; re-exported for the merge. */
export * from './global/limits';
export * from './global/line';
export * from './global/part';
export * from './global/parts';
export * from './global/priority';
export * from './global/shards';
