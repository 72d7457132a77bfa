import { z } from 'zod';
import { partialLimitPolicySchema } from './limiter/policy';
import { TIERS } from './limiter/types';

/** User ids as the authorizer produces them (a token's `sub`): printable, bounded. */
const userId = z
  .string()
  .min(1, 'userId is required')
  .max(256, 'userId is longer than 256 characters')
  .regex(/^[\x21-\x7e]+$/, 'userId must be printable ASCII without spaces');

/**
 * The admin operations (SPEC §5), one payload shape each. Invoked with IAM only (`aws lambda
 * invoke` or `npm run admin`), never reachable from the WebSocket API.
 */
export const adminRequestSchema = z.discriminatedUnion('operation', [
  z.object({ operation: z.literal('reset'), userId, scope: z.enum(['messages', 'tokens', 'all']) }).strict(),
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
  z.object({ operation: z.literal('usage'), userId }).strict(),
  z.object({ operation: z.literal('purge-queue'), userId }).strict(),
]);

export type AdminRequest = z.infer<typeof adminRequestSchema>;
export type AdminOperation = AdminRequest['operation'];
export const ADMIN_OPERATIONS = adminRequestSchema.options.map((o) => o.shape.operation.value);

export type AdminResponse =
  | {
      readonly ok: true;
      readonly operation: AdminOperation;
      readonly userId: string;
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
