/** Types of reconnect.js: what the page and the terminal client make of a reconnect. */
export declare function backoffMs(attempt: number): number;
export interface StatusLike {
  readonly queue?: {
    readonly requests?: readonly { readonly requestId: string; readonly position: number }[];
  };
  readonly limits?: readonly { readonly unit?: unknown; readonly used?: unknown }[];
}
export interface Judgement {
  /** Requests the server lists as waiting: id → place in line. */
  readonly waiting: Map<string, number>;
  /** Requests the server no longer has. */
  readonly lost: string[];
  /** Requests that may be replies in flight: judge again with a later status. */
  readonly unsure: string[];
}
export declare function judgeRequests(
  open: Iterable<string>,
  heard: ReadonlySet<string>,
  status: StatusLike | undefined,
): Judgement;
