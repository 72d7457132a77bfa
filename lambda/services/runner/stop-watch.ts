import { describeError } from '../../core/errors';
import type { ReplyJob } from '../../core/reply-job';
import type { ReplyRunnerDeps } from './deps';

/** Why the model was aborted when the user stopped the reply. */
export class StopRequested extends Error {
  constructor() {
    super('the user stopped the reply');
    this.name = 'StopRequested';
  }
}

/**
 * Looks for the user's stop of one request while its model runs (SPEC §9.3): every
 * `settings.stopPollMs` it reads the request's stop mark ({@link StopMarkPort}), and when the mark
 * is there it aborts {@link signal}, which aborts the model (the echo model stops; the Bedrock
 * adapter hands the signal to ConverseStream). A timer beside the model, not a look between
 * chunks: a model that is silent (thinking, throttled, in a retry's backoff) is stopped as fast.
 * A read that fails is logged and tried at the next interval: a stop mark is never worth failing
 * a reply for. {@link end} stops the timer; a look in flight then changes nothing.
 *
 * Cost: one read unit per interval while the model runs (2 per second at the default), for every
 * reply, stopped or not; nothing before the model starts or after it ends.
 */
export class StopWatch {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;

  constructor(
    private readonly deps: Pick<ReplyRunnerDeps, 'store' | 'log' | 'settings'>,
    private readonly job: Pick<ReplyJob, 'userId' | 'requestId'>,
  ) {}

  /** Aborted when the user stopped the reply. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Did the user stop the reply? */
  get requested(): boolean {
    return this.controller.signal.aborted;
  }

  start(): this {
    this.schedule();
    return this;
  }

  end(): void {
    this.ended = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.ended) return;
    this.timer = setTimeout(() => void this.look(), this.deps.settings.stopPollMs);
    this.timer.unref?.();
  }

  private async look(): Promise<void> {
    const { userId, requestId } = this.job;
    try {
      if (await this.deps.store.isStopRequested(userId, requestId)) {
        if (this.ended) return;
        this.deps.log.info('the user stopped the reply', { requestId });
        this.controller.abort(new StopRequested());
        return;
      }
    } catch (err) {
      this.deps.log.warn('could not read the stop mark; looking again', {
        requestId,
        error: describeError(err),
      });
    }
    this.schedule();
  }
}

/** Resolves when `signal` aborts (never, if it does not): to race a wait against a stop. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
