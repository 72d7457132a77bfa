/** Types of limit-names.js, the one map of human limit names shared by the page and the terminal client. */
export declare const LIMIT_NAMES: Readonly<Record<string, string>>;
export declare function limitName(name: string): string;
export declare function humanizeLimitNames(text: string): string;
export declare function describeLimitWarning(msg: {
  limit: unknown;
  remaining: number;
  limitValue: number;
  unit: string;
  resetAt: number;
}): string;
export declare function replyMeta(msg: {
  model?: unknown;
  fallbackFrom?: unknown;
  usage?: { inputTokens?: unknown; outputTokens?: unknown; costUsd?: unknown };
}): string;
