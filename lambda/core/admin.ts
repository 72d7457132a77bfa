import * as z from 'zod';
import { partialLimitPolicySchema } from './limiter/policy';
import { TEAM_NAME } from './limiter/teams';
import { TIERS } from './limiter/tiers';

/** User ids as the authorizer produces them (a token's `sub`): printable, bounded. */
const userId = z
  .string()
  .min(1, 'userId is required')
  .max(256, 'userId is longer than 256 characters')
  .regex(/^[\x21-\x7e]+$/, 'userId must be printable ASCII without spaces');

/** A team's name, as limits.teams and the token's claim spell it. */
const team = z.string().regex(TEAM_NAME, 'team must be 1 to 64 of A-Z a-z 0-9 _ . -');

/**
 * The admin operations (SPEC §5), one payload shape each. Invoked with IAM only (`aws lambda
 * invoke` or `npm run admin`), never reachable from the WebSocket API.
 */
export const adminRequestSchema = z.discriminatedUnion('operation', [
  z
    .object({ operation: z.literal('reset'), userId, scope: z.enum(['messages', 'tokens', 'cost', 'all']) })
    .strict(),
  z.object({ operation: z.literal('set-tier'), userId, tier: z.enum(TIERS) }).strict(),
  z
    .object({
      operation: z.literal('set-override'),
      userId,
      limits: partialLimitPolicySchema.refine(
        (l) => Object.keys(l).length > 0,
        'limits must set at least one limit',
      ),
      /** Epoch ms after which the override stops applying by itself. */
      expiresAtEpochMs: z.number().int().positive().optional(),
    })
    .strict(),
  z.object({ operation: z.literal('clear-override'), userId }).strict(),
  z
    .object({
      operation: z.literal('usage'),
      userId,
      /** Usage per UTC day for the last `days` days (at most 35), today last. */
      history: z.boolean().optional(),
      days: z.number().int().min(1).max(35).optional(),
    })
    .strict(),
  z.object({ operation: z.literal('purge-queue'), userId }).strict(),
  /** The user's team (SPEC §9.4): it wins over the token's claim; `null` clears it. */
  z.object({ operation: z.literal('set-team'), userId, team: team.nullable() }).strict(),
  /** A team's limits' totals over its members, and its members' usage today. */
  z.object({ operation: z.literal('team-usage'), team }).strict(),
  /** Checks the user's item against the queue's and the limiter's invariants; changes nothing. */
  z.object({ operation: z.literal('audit'), userId }).strict(),
  /** Whether the tables and queues answer, the DLQ depth and the limiter breaker's state. */
  z.object({ operation: z.literal('health') }).strict(),
  /** Today's heaviest users and the global totals against their limits. */
  z
    .object({
      operation: z.literal('top'),
      by: z.enum(['tokens', 'cost', 'messages']).default('tokens'),
      limit: z.number().int().min(1).max(100).default(10),
      /** Only this team's members (those whose last settled reply was the team's). */
      team: team.optional(),
    })
    .strict(),
]);

export type AdminRequest = z.infer<typeof adminRequestSchema>;
export type AdminOperation = AdminRequest['operation'];
export const ADMIN_OPERATIONS = adminRequestSchema.options.map((o) => o.shape.operation.value);

/** The operations that act on one user (all but `health`, `top`, `team-usage` and the read-only `audit`). */
export type UserAdminRequest = Exclude<
  AdminRequest,
  { operation: 'health' | 'top' | 'audit' | 'team-usage' }
>;

export type AdminResponse =
  | {
      readonly ok: true;
      readonly operation: AdminOperation;
      /** The user acted on; absent for `health`. */
      readonly userId?: string;
      readonly result: unknown;
    }
  | { readonly ok: false; readonly error: { readonly code: 'INVALID_REQUEST'; readonly message: string } };

/** Validates an admin payload; the error message names each bad field. */
export function parseAdminRequest(
  payload: unknown,
): { ok: true; request: AdminRequest } | { ok: false; message: string } {
  const parsed = adminRequestSchema.safeParse(payload);
  if (parsed.success) return { ok: true, request: parsed.data };
  return { ok: false, message: z.prettifyError(parsed.error) };
}

/** One probe of a table or queue: did it answer, how fast, and what went wrong if not. */
export interface HealthCheck {
  readonly ok: boolean;
  readonly latencyMs: number;
  /** Why it did not answer (error name and message, or the probe's timeout). */
  readonly error?: string;
}

/** A queue probe also reports the queue's depth: visible plus in-flight messages. */
export interface QueueHealthCheck extends HealthCheck {
  readonly depth?: number;
}

/**
 * What `health` answers (SPEC §8 v3): every table and queue the stack runs on, probed once, the
 * DLQ's depth, and the limiter breaker's state as the admin function's own instance sees it (each
 * function instance has its own breaker; this one only hears the admin function's calls).
 */
export interface HealthReport {
  /** Every table and queue answered. The DLQ's depth and the breaker do not change it. */
  readonly healthy: boolean;
  readonly checkedAtEpochMs: number;
  readonly tables: Readonly<Record<'limits' | 'connections' | 'requests', HealthCheck>>;
  readonly queues: Readonly<Record<'requests' | 'dlq', QueueHealthCheck>>;
  readonly breaker: { readonly state: 'closed' | 'open'; readonly scope: 'admin function instance' };
}
