import * as z from 'zod';
import { TIERS, type Tier } from '../../lambda/core/limiter/tiers';
import { UsageError } from '../errors';

/**
 * One recorded request (SPEC §9.4 "What if"): when it came, whose it was, on which tier (and team,
 * model), and what its reply used. No message content: the limits never read it.
 */
export const trafficLineSchema = z
  .object({
    at: z.iso.datetime({ offset: true }),
    userId: z.string().min(1),
    tier: z.enum(TIERS),
    /** The token's team claim: its team's limits apply (SPEC §9.4 "Teams"). */
    team: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    inputTokens: z.number().int().nonnegative(),
    outputTokens: z.number().int().nonnegative(),
  })
  .strict();

export interface TrafficRequest {
  /** The line of the file it came from (1-based). */
  readonly line: number;
  readonly atMs: number;
  readonly userId: string;
  readonly tier: Tier;
  readonly team?: string;
  readonly model?: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** A traffic file the simulator cannot read: names the line, exit 2. */
export class TrafficError extends UsageError {}

/**
 * Parses a traffic file (JSON lines; blank lines skipped) into requests in the order they came
 * (by `at`, the file's order among equal times). The first bad line throws, naming its number.
 */
export function parseTraffic(text: string, file = 'traffic'): TrafficRequest[] {
  const requests: TrafficRequest[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === '') continue;
    const line = i + 1;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new TrafficError(`${file}:${line}: not JSON (${(err as Error).message})`);
    }
    const parsed = trafficLineSchema.safeParse(json);
    if (!parsed.success) {
      throw new TrafficError(`${file}:${line}: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}`);
    }
    const { at, ...rest } = parsed.data;
    requests.push({ line, atMs: Date.parse(at), ...rest });
  }
  // Stable: requests of the same millisecond keep the file's order.
  return requests.sort((a, b) => a.atMs - b.atMs);
}

/** One traffic line as the file holds it (the inverse of parseTraffic, for export-traffic). */
export function trafficLine(r: Omit<TrafficRequest, 'line'>): string {
  return JSON.stringify({
    at: new Date(r.atMs).toISOString(),
    userId: r.userId,
    tier: r.tier,
    ...(r.team !== undefined ? { team: r.team } : {}),
    ...(r.model !== undefined ? { model: r.model } : {}),
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
  });
}
