/**
 * The queue processor's composition root: the replay service over the user-facing parts, the
 * request queue (with its dead-letter queue) and the hand-off to the reply runner.
 */
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../../services/replay-service';
import { logPort, metricsPort } from '../observability';
import { timerSleep } from './common';
import { replyHandoff } from './handoff';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const processorRuntime = once(() => {
  const base = userFacing('processor');
  const { config } = base;
  const queue = requestQueue(config, { deadLetters: true });
  const replay = new ReplayService({
    ...base,
    queue,
    handoff: replyHandoff(config),
    metrics: metricsPort,
    log: logPort,
    settings: { ...DEFAULT_REPLAY_SETTINGS, modelMaxOutputTokens: config.modelMaxOutputTokens },
    sleep: timerSleep,
  });
  return { ...base, replay, queue };
});
