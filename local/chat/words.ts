import { humanizeLimitNames, limitName } from '../limit-names';

type Json = Record<string, unknown>;

/**
 * What a `queue_position` says happened, from the position before and after. The server sends one
 * whenever the place or the estimate changes, and a place can also grow (a request that was
 * deferred goes back in ahead): only a smaller number is "moved up".
 */
export function queueVerb(before: number | undefined, after: number): string {
  if (before === undefined) return 'queued';
  if (after < before) return 'moved up';
  if (after > before) return 'moved back';
  return 'still';
}

/** A refusal in words: the server's reason as is (SPEC §9.3), else the limit by its human name; when to retry. */
export function describeRefusal(msg: Json): string {
  const details = (msg.details ?? {}) as Json;
  const retry = details.retryAfter !== undefined ? ` — retry in ${details.retryAfter} s` : '';
  if (typeof details.reason === 'string') return `${details.reason}${retry}`;
  if (msg.code === 'RATE_LIMIT_EXCEEDED' && typeof details.limit === 'string')
    return `${limitName(details.limit)} limit reached${retry}`;
  return `${humanizeLimitNames(String(msg.message ?? ''))} (${msg.code})${retry}`;
}

/**
 * A `status` frame in one line: what is left of each limit, by its human name, the team's and the
 * stack's next to them (SPEC §9.5), and the queue. A `message_complete` carries the limits its
 * settle left (SPEC §9.3): the same line for the user's own, without asking.
 */
export function renderLimits(msg: Json): string {
  const parts = leftOf(msg.limits, '');
  if (msg.type === 'message_complete') return `after this reply — left: ${parts}`;
  const queue = (msg.queue ?? {}) as Json;
  const team = (msg.team ?? undefined) as Json | undefined;
  const shared = [
    ...(team ? [` — team ${team.name} left: ${leftOf(team.limits, 'team.') || 'no team limits set'}`] : []),
    ...(Array.isArray(msg.global) && msg.global.length > 0
      ? [` — global left: ${leftOf(msg.global, 'global.')}`]
      : []),
  ];
  return `status: ${msg.userId} (${msg.tier}) — left: ${parts}${shared.join('')}${queue.queued ? ` — ${queue.queued} queued` : ''}`;
}

/** `message rate 22/25, daily tokens 87,655/100,000`: each limit by its human name, without `prefix`. */
function leftOf(limits: unknown, prefix: string): string {
  if (!Array.isArray(limits)) return '';
  return (limits as Json[])
    .map((l) => {
      const name = limitName(String(l.name).slice(prefix.length));
      return `${name} ${Number(l.remaining).toLocaleString('en-US')}/${Number(l.limit).toLocaleString('en-US')}`;
    })
    .join(', ');
}

/** Why the handshake was refused, from its HTTP status. */
export function refusalHint(status: number | undefined): string {
  if (status === 401) return ' (no token)';
  if (status === 403) return ' (token rejected: expired or bad signature)';
  if (status === 429) return ' (too many connection attempts from this address; wait a minute)';
  return '';
}
