/** What one configuration did with the traffic (the simulator's output, `--json` prints it as is). */
export interface SimulationResult {
  /** The limits file, as named on the command line. */
  readonly limits?: string;
  readonly requests: number;
  readonly admitted: {
    readonly total: number;
    readonly directly: number;
    readonly afterQueueing: number;
  };
  /** Requests that waited in their user's queue (admitted later, or expired there). */
  readonly queued: number;
  /** Refusals by the limit that refused them (or `queue full`, `expired in queue`). */
  readonly refused: Readonly<Record<string, number>>;
  readonly refusedTotal: number;
  /** Waits of the queued requests that were admitted, in ms (nearest rank); null: none waited. */
  readonly waitMs: { readonly p50: number; readonly p99: number } | null;
  /** What the admitted replies used (output capped at each reservation's allowance). */
  readonly tokens: { readonly input: number; readonly output: number };
  readonly costUsd: number;
  /** The ten users with the most refused + queued requests (at least one), most first. */
  readonly mostAffected: readonly {
    readonly userId: string;
    readonly refused: number;
    readonly queued: number;
  }[];
}
