/** The reply runner's on-failure destination: the reply failure service over the user-facing parts. */
import { ReplyFailureService } from '../../services/reply-failure';
import { logPort, metricsPort } from '../observability';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const replyFailureRuntime = once(() => {
  const base = userFacing('replyFailure');
  const failures = new ReplyFailureService({
    ...base,
    queue: requestQueue(base.config),
    metrics: metricsPort,
    log: logPort,
  });
  return { ...base, failures };
});
