import { describe, expect, it } from 'vitest';
import { WakeUpNotHeldError } from '../../lambda/services/errors';
import { releaseWakeUps } from '../../lambda/services/shared/wake-ups';

/** A queue whose `defer` answers per handle: held, no longer held, or a fault. */
function fakes(answers: Record<string, 'held' | 'not-held' | 'fault'>) {
  const deferred: string[] = [];
  const logged: { level: string; message: string }[] = [];
  const deps = {
    queue: {
      async defer(handle: string) {
        deferred.push(handle);
        if (answers[handle] === 'not-held') throw new WakeUpNotHeldError('gone');
        if (answers[handle] === 'fault') throw new Error('timeout');
      },
    },
    log: {
      info: (message: string) => logged.push({ level: 'info', message }),
      warn: (message: string) => logged.push({ level: 'warn', message }),
      error: (message: string) => logged.push({ level: 'error', message }),
    },
  };
  return { deps, deferred, logged };
}

describe('releaseWakeUps', () => {
  it('wakes the next in line instead when the first is awake already, and warns of nothing', async () => {
    const { deps, deferred, logged } = fakes({
      own: 'held',
      first: 'not-held',
      second: 'held',
      third: 'held',
    });
    await releaseWakeUps(
      deps,
      { applied: true, wakeUp: 'own', globalWakeUp: 'first', globalWakeUpsAfter: ['second', 'third'] },
      'r1',
    );
    expect(deferred).toEqual(['own', 'first', 'second']);
    expect(logged.map((l) => l.level)).toEqual(['info']);
  });

  it('warns when a wake-up fails for another reason, and tries no further', async () => {
    const { deps, deferred, logged } = fakes({ first: 'fault', second: 'held' });
    await releaseWakeUps(
      deps,
      { applied: true, globalWakeUp: 'first', globalWakeUpsAfter: ['second'] },
      'r1',
    );
    expect(deferred).toEqual(['first']);
    expect(logged).toEqual([
      {
        level: 'warn',
        message: 'could not wake the next in line for global capacity; it looks again by itself',
      },
    ]);
  });

  it('still warns when the user’s own held wake-up is no longer held (its queue waits for the hold)', async () => {
    const { deps, logged } = fakes({ own: 'not-held' });
    await releaseWakeUps(deps, { applied: true, wakeUp: 'own' }, 'r1');
    expect(logged.map((l) => l.level)).toEqual(['warn']);
  });
});
