// The chat page: protocol v1 over one WebSocket, with the limits and the queue made visible.
// Plain ES module, no build step. Works locally (URL and token filled in from the page's address)
// and against a deployed stack (paste the wss:// URL and a token).

import { conversationId } from './conversation.js';
import {
  addEntry,
  capitalized,
  els,
  nameOf,
  notice,
  scrollDown,
  setConnection,
  showIdentity,
  textOf,
} from './dom.js';
import { refusedText, serverAnswers } from './handshake.js';
import { describeLimitWarning, humanizeLimitNames, replyMeta } from './names.js';
import { refreshGauges, renderGauges, renderLimits, renderQueue } from './panels.js';
import { backoffMs } from './reconnect.js';
import { showRefusal } from './refusals.js';
import { judgeRequestsOnStatus, unmarkLost } from './requests.js';
import { appendText, endStreaming, streamingReply } from './stop.js';

const state = {
  ws: undefined,
  wantOpen: false,
  attempts: 0,
  replies: new Map(), // requestId -> <li> of the streaming reply
  completed: new Set(), // requestIds whose reply is shown
  queued: new Map(), // requestId -> { position, total, etaAtMs, text }
  leftLine: new Set(), // requestIds that started, ended or were cancelled: later places are old news
  retryTimer: undefined,
  open: new Map(), // requestId -> the connection (1, 2, …) it was sent on, until it ends
  connections: 0, // connections opened so far
  heard: new Set(), // requestIds that had a frame on this connection
  judging: false, // the first status after a reconnect judges the requests of earlier connections
  unsure: new Set(), // requestIds that may be replies in flight: judged again by a later status
  lost: new Set(), // requestIds the server no longer had at a reconnect
};

/** How long until a request that may be a reply in flight is judged again. */
const UNSURE_RECHECK_MS = 5000;

/** Frames after which a request has ended. */
const ENDS = new Set(['request_cancelled', 'request_expired', 'request_failed']);

function init() {
  const params = new URLSearchParams(location.hash.slice(1));
  const defaultUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/local`;
  els.url.value = params.get('url') || localStorage.getItem('chat-limiter.url') || defaultUrl;
  els.token.value = params.get('token') || sessionStorage.getItem('chat-limiter.token') || '';
  if (params.get('token')) history.replaceState(null, '', location.pathname); // keep tokens out of history
  els.form.addEventListener('submit', (e) => {
    e.preventDefault();
    connect();
  });
  els.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendMessage();
  });
  els.message.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      sendMessage();
    }
  });
  setInterval(() => {
    showQueue();
    refreshGauges();
  }, 500);
  if (els.url.value && els.token.value) connect();
  else els.settings.open = true;
}

function connect() {
  localStorage.setItem('chat-limiter.url', els.url.value);
  sessionStorage.setItem('chat-limiter.token', els.token.value);
  state.wantOpen = true;
  state.attempts = 0;
  clearTimeout(state.retryTimer);
  state.ws?.close(1000);
  open();
}

function open() {
  setConnection(state.attempts ? 'reconnecting' : 'connecting');
  const url = `${els.url.value}${els.url.value.includes('?') ? '&' : '?'}token=${encodeURIComponent(els.token.value)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    state.attempts = 0;
    state.connections++;
    state.heard = new Set();
    // Rebuilt from the server on every reconnect (SPEC §9.5): what it lists as waiting, replies
    // kept for `resume`, and requests it no longer has marked lost.
    state.judging = [...state.open.values()].some((on) => on < state.connections);
    setConnection('connected');
    els.settings.open = false;
    showIdentity();
    send({ action: 'resume' });
    send({ action: 'status' });
  };
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(msg);
  };
  ws.onclose = async (event) => {
    if (state.ws !== ws) return;
    setConnection('disconnected');
    if (!state.wantOpen || event.code === 1000) return;
    // A browser does not say why a handshake failed: if the server answers HTTP, it refused this
    // token (401, 403) or this address (429); retrying the same token would never end.
    if (!opened && (await serverAnswers(els.url.value))) {
      if (state.ws === ws) refused();
      return;
    }
    if (state.ws !== ws || !state.wantOpen) return;
    if (!opened && state.attempts === 0) notice('Could not reach the server: retrying.', 'refusal');
    // Back off 1, 2, 4 … 30 s; `resume` on reconnect delivers replies finished meanwhile.
    setConnection('reconnecting');
    state.retryTimer = setTimeout(() => state.wantOpen && open(), backoffMs(state.attempts++));
  };
}

/** A status to judge the unsure by; a connection that dropped meanwhile judges them on reconnect. */
function askStatusIfOpen() {
  if (state.ws?.readyState === WebSocket.OPEN) send({ action: 'status' });
}

/** The handshake was refused: say so, and wait for the person to fix the token and Connect. */
function refused() {
  state.wantOpen = false;
  setConnection('refused');
  notice(refusedText(els.token.value), 'refusal');
  els.settings.open = true;
}

function send(payload) {
  if (state.ws?.readyState !== WebSocket.OPEN) {
    notice('Not connected yet.', 'refusal');
    return false;
  }
  state.ws.send(JSON.stringify(payload));
  return true;
}

function sendMessage() {
  const text = els.message.value.trim();
  if (!text) return;
  const requestId = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
  if (!send({ action: 'sendMessage', requestId, message: text, conversationId: conversationId() })) return;
  state.open.set(requestId, state.connections);
  addEntry('user', text, requestId);
  els.message.value = '';
  els.message.focus();
}

/** The request is out of the user's line for good: no later place notice may put it back. */
function leaveLine(id) {
  state.queued.delete(id);
  state.leftLine.add(id);
}

function handle(msg) {
  const id = msg.requestId;
  if (id) {
    state.heard.add(id);
    // Judged lost, yet the server speaks of it (a kept reply from `resume`, a reply that went on).
    if (state.lost.delete(id)) {
      unmarkLost(id);
      state.open.set(id, state.connections);
    }
    if (ENDS.has(msg.type) || msg.type === 'error') state.open.delete(id);
  }
  switch (msg.type) {
    case 'message_accepted':
      break;
    case 'request_queued':
    case 'queue_position':
      showPlace(msg);
      break;
    case 'queue_processing_started':
      leaveLine(id);
      showQueue();
      break;
    case 'chunk':
      appendText(replyEntry(id), msg.text);
      scrollDown();
      break;
    case 'message_complete':
      showComplete(msg);
      break;
    case 'request_cancelled':
      leaveLine(id);
      showQueue();
      notice(`${capitalized(nameOf(id))} cancelled.`);
      break;
    case 'request_expired':
      leaveLine(id);
      showQueue();
      notice(`${capitalized(nameOf(id))} expired: it waited too long.`, 'refusal');
      break;
    case 'request_failed':
      leaveLine(id);
      showQueue();
      notice(`${capitalized(nameOf(id))} failed: ${humanizeLimitNames(msg.message ?? '')}`, 'refusal');
      break;
    case 'status':
      renderGauges(msg);
      if (judgeRequestsOnStatus(state, msg)) {
        showQueue();
        if (state.unsure.size > 0) setTimeout(askStatusIfOpen, UNSURE_RECHECK_MS);
      }
      break;
    case 'limit_warning':
      notice(`Running low. ${describeLimitWarning(msg)}`);
      break;
    case 'error':
      showRefusal(msg);
      break;
  }
}

/** A place in line: kept unless it is old news, and said when the request is first queued. */
function showPlace(msg) {
  const id = msg.requestId;
  // A place that arrives after its request left the line (started, ended) is old news: it was
  // sent before, by another function (docs/protocol.md).
  if (state.leftLine.has(id)) return;
  const previous = state.queued.get(id);
  // A notice computed from an older version of the user's list crossed a newer one on the
  // way (sent by another function): old news, the newer place stands (docs/protocol.md).
  if (
    typeof previous?.version === 'number' &&
    typeof msg.queueVersion === 'number' &&
    msg.queueVersion < previous.version
  )
    return;
  state.queued.set(id, {
    version: msg.queueVersion,
    position: msg.position,
    total: msg.totalInQueue,
    etaAtMs: Date.now() + msg.estimatedWaitTime * 1000,
    text: previous?.text ?? textOf(id),
  });
  if (msg.type === 'request_queued')
    notice(
      `Queued ${nameOf(id)}: #${msg.position} in line, about ${msg.estimatedWaitTime} s. ${msg.details?.reason ?? humanizeLimitNames(msg.message ?? '')}`,
    );
  showQueue();
}

/** A reply complete: its whole text and what it cost, once. */
function showComplete(msg) {
  const id = msg.requestId;
  // Some chunks were lost on the way and the text is not here: the whole reply was kept, and
  // `resume` delivers it (its chunks, then its message_complete).
  if (msg.resume === true && !state.completed.has(id)) {
    replyEntry(id).textContent = '';
    send({ action: 'resume' });
    return;
  }
  // A processor that crashed right after sending may send a reply twice: show it once.
  if (state.completed.has(id)) return;
  state.completed.add(id);
  state.open.delete(id);
  const li = replyEntry(id);
  // A reply over 128 KB comes without its text (`textOmitted`): the chunks already showed it.
  if (typeof msg.text === 'string') li.textContent = msg.text;
  endStreaming(li);
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = replyMeta(msg);
  li.append(meta);
  state.replies.delete(id);
  if (!renderLimits(msg)) send({ action: 'status' }); // the settle's limits, else ask (SPEC §9.3)
}

/** The queue panel, now; its Cancel buttons cancel the request. */
function showQueue() {
  renderQueue(state.queued, (id) => send({ action: 'cancel', requestId: id }));
}

/** The reply's bubble; its Stop button stops the reply (`cancel` of a request being answered). */
const replyEntry = (id) => streamingReply(state, id, () => send({ action: 'cancel', requestId: id }));

init();
