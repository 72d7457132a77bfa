// A refused frame (`error`) in words: the request by what was typed, the limit by its human name,
// and a countdown to when it can be sent again.

import { capitalized, nameOf, notice } from './dom.js';
import { humanizeLimitNames, limitName } from './names.js';

export function showRefusal(msg) {
  const d = msg.details || {};
  const li = notice('', 'refusal');
  const what = msg.requestId ? ` ${nameOf(msg.requestId)}` : '';
  // The server's sentence (SPEC §9.3: the limit by its name, its state, when it frees), as is.
  const why = d.reason
    ? d.reason
    : msg.code === 'RATE_LIMIT_EXCEEDED' && d.limit
      ? `${capitalized(limitName(d.limit))} limit reached.`
      : humanizeLimitNames(msg.message ?? '');
  const base = `Refused${what}: ${why}`;
  if (d.retryAfter === undefined) {
    li.textContent = `${base} [${msg.code}]`;
    return;
  }
  const until = Date.now() + d.retryAfter * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    li.textContent = left > 0 ? `${base} Retry in ${left} s.` : `${base} You can send again now.`;
    if (left > 0) setTimeout(tick, 1000);
  };
  tick();
}
