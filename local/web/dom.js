// The page's elements and how entries are written to the conversation log.

const $ = (id) => document.getElementById(id);
export const els = {
  connection: $('connection'),
  identity: $('identity'),
  settings: $('settings'),
  form: $('connect-form'),
  url: $('ws-url'),
  token: $('token'),
  log: $('log'),
  composer: $('composer'),
  message: $('message'),
  gauges: $('gauges'),
  queue: $('queue'),
  queueEmpty: $('queue-empty'),
};

/** A request on screen is named by the start of what the person typed, not by its id. */
const NAME_CHARS = 32;

export function addEntry(kind, text, requestId) {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = text;
  if (requestId) li.dataset.requestId = requestId;
  // What was typed, whatever is appended to the entry later (a "lost" label).
  if (kind === 'user') li.dataset.text = text;
  els.log.append(li);
  scrollDown();
  return li;
}

export function notice(text, kind = 'notice') {
  return addEntry(kind, text);
}

export function textOf(requestId) {
  return els.log.querySelector(`li.user[data-request-id="${CSS.escape(requestId)}"]`)?.dataset.text;
}

/** `"What is the capital of…"`, or `request 1f2e…` for a request this page did not send. */
export function nameOf(requestId) {
  const text = requestId ? textOf(requestId) : undefined;
  if (text === undefined) return requestId ? `request ${requestId}` : 'a request';
  const chars = [...text.replace(/\s+/g, ' ')];
  return `“${chars.length > NAME_CHARS ? `${chars.slice(0, NAME_CHARS - 1).join('')}…` : chars.join('')}”`;
}

export function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function scrollDown() {
  els.log.scrollTop = els.log.scrollHeight;
}

export function setConnection(text) {
  els.connection.textContent = text;
  els.connection.className = `pill ${text}`;
}

export function showIdentity() {
  try {
    const claims = JSON.parse(atob(els.token.value.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    const team = typeof claims.team === 'string' ? ` · team ${claims.team}` : '';
    els.identity.textContent = `${claims.sub}${claims.tier ? ` · ${claims.tier}` : ''}${team}`;
  } catch {
    els.identity.textContent = '';
  }
}
