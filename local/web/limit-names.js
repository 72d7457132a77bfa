// How people read the limits' names (SPEC §8): the terminal client and the chat page both show
// these instead of the names the protocol, metrics and admin flags use. Each limit kind declares
// its label (lambda/core/limiter/kinds/registry.ts): the page gets them from `/limit-labels.js`, which the
// local gateway generates from the registry (web/names.js), the terminal client from the registry
// itself (local/limit-names.ts). Plain ES module, so the page loads it as it is and the TypeScript
// clients import it with limit-names.d.ts.

const GLOBAL_PREFIX = 'global.';
/** A model's account quota (SPEC §9.4): `model.<id>.requestsPerMinute` / `.tokensPerMinute`. */
const MODEL_QUOTA = /^model\.(.+)\.(requests|tokens)PerMinute$/;
const TEAM_PREFIX = 'team.';

/** How to say limit names, given every limit's label (`{ messageRate: 'message rate', … }`). */
export function limitNames(labels) {
  /**
   * `messageRate` → `message rate`, `global.dailyTokens` → `global daily tokens`,
   * `team.requestsInFlight` → `team requests in flight`; unknown names as given.
   */
  function limitName(name) {
    if (name.startsWith(GLOBAL_PREFIX)) return `global ${limitName(name.slice(GLOBAL_PREFIX.length))}`;
    const quota = MODEL_QUOTA.exec(name);
    if (quota) return `model ${quota[1]} account quota (${quota[2]} a minute)`;
    if (name.startsWith(TEAM_PREFIX)) return `team ${limitName(name.slice(TEAM_PREFIX.length))}`;
    return Object.hasOwn(labels, name) ? labels[name] : name;
  }

  const names = Object.keys(labels);
  const pattern = new RegExp(`\\b(?:global\\.|team\\.)?(?:${names.join('|')})\\b`, 'g');

  /** Replaces every limit name in a server's message text (`Limit messageRate reached.`) by its human name. */
  function humanizeLimitNames(text) {
    return names.length === 0 ? text : text.replace(pattern, (name) => limitName(name));
  }

  /** A `limit_warning` frame as a sentence: `Daily cost: $0.00155 of $0.01 left until 00:00.` */
  function describeLimitWarning(msg) {
    const usd = msg.unit === 'usd';
    const amount = (n) => (usd ? `$${Number(n.toPrecision(3))}` : n.toLocaleString('en-US'));
    const name = limitName(String(msg.limit));
    const until = new Date(msg.resetAt).toLocaleTimeString([], {
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    const of = `${amount(msg.remaining)} of ${amount(msg.limitValue)}${usd ? '' : ` ${msg.unit}`}`;
    return `${name[0].toUpperCase()}${name.slice(1)}: ${of} left until ${until}.`;
  }

  return { limitName, humanizeLimitNames, describeLimitWarning };
}

/** What a `message_complete` cost: `250 in + 180 out tokens · echo · $0.000158`, and a soft landing. */
export function replyMeta(msg) {
  const usage = msg.usage ?? {};
  const parts = [`${usage.inputTokens ?? '?'} in + ${usage.outputTokens ?? '?'} out tokens`];
  // Stopped by the user: charged for what it produced up to then.
  if (msg.stopped === true) parts.unshift('stopped');
  if (msg.model) parts.push(msg.fallbackFrom ? `${msg.model} (instead of ${msg.fallbackFrom})` : msg.model);
  if (typeof usage.costUsd === 'number') parts.push(`$${Number(usage.costUsd.toPrecision(3))}`);
  return parts.join(' · ');
}
