/**
 * The Admin function, invoked with IAM only (`aws lambda invoke`, `npm run admin`); no route of
 * the WebSocket API reaches it. Validates the payload, runs one operation, answers with a value.
 */
import type { Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { adminRuntime } from '../adapters/runtime/admin';
import { type AdminResponse, parseAdminRequest } from '../core/admin';
import { ConfigError } from '../core/errors';

export async function handler(event: unknown, context?: Context): Promise<AdminResponse> {
  logger.addContext(context ?? ({} as Context));
  try {
    const parsed = parseAdminRequest(event);
    if (!parsed.ok) {
      logger.warn('admin request refused', { audit: true, reason: parsed.message });
      return { ok: false, error: { code: 'INVALID_REQUEST', message: parsed.message } };
    }
    const { request } = parsed;
    const userId = 'userId' in request ? request.userId : undefined;
    try {
      const result = await adminRuntime().admin.run(request);
      return { ok: true, operation: request.operation, ...(userId === undefined ? {} : { userId }), result };
    } catch (err) {
      // A tier or override under which the user's item could pass its size bound (issue 22).
      if (!(err instanceof ConfigError)) throw err;
      logger.warn('admin request refused', { audit: true, reason: err.message });
      return { ok: false, error: { code: 'INVALID_REQUEST', message: err.message } };
    }
  } finally {
    flushObservability();
  }
}
