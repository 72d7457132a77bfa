/** Types of limit-names.js: how the page and the terminal client say limit names and replies. */
export interface LimitNames {
  limitName(name: string): string;
  humanizeLimitNames(text: string): string;
  describeLimitWarning(msg: {
    limit: unknown;
    remaining: number;
    limitValue: number;
    unit: string;
    resetAt: number;
  }): string;
}
export declare function limitNames(labels: Readonly<Record<string, string>>): LimitNames;
export declare function replyMeta(msg: {
  model?: unknown;
  fallbackFrom?: unknown;
  stopped?: unknown;
  usage?: { inputTokens?: unknown; outputTokens?: unknown; costUsd?: unknown };
}): string;
