// The page's requests across reconnects (SPEC §9.5): on every reconnect the view is rebuilt from
// the server's `status` — the queue panel lists what it says is waiting — and a request it no
// longer has is marked lost, with a label and no spinner, instead of waiting forever.

import { els, textOf } from './dom.js';
import { judgeRequests } from './reconnect.js';
import { endStreaming } from './stop.js';

const LOST_TEXT =
  'Lost: the server no longer has this request (it restarted?). Send it again if you need it.';

/**
 * Judges the requests of earlier connections by a `status` frame: the first status after a
 * reconnect rebuilds `state.queued` and marks the lost; a later one judges the unsure again.
 * Says whether anything was judged (the queue panel is then redrawn by the caller).
 */
export function judgeRequestsOnStatus(state, status) {
  const earlier = [...state.open].filter(([, on]) => on < state.connections).map(([id]) => id);
  if (state.judging) {
    state.judging = false;
    const { waiting, lost, unsure } = judgeRequests(earlier, state.heard, status);
    const queued = new Map();
    for (const [id, position] of waiting) {
      if (state.leftLine.has(id)) continue;
      const previous = state.queued.get(id);
      queued.set(id, { etaAtMs: previous?.etaAtMs, total: previous?.total, position, text: textOf(id) });
    }
    // Queued on this connection since: the status may have been read before they were.
    for (const [id, q] of state.queued) if (state.heard.has(id) && !queued.has(id)) queued.set(id, q);
    state.queued = queued;
    loseAll(state, lost);
    state.unsure = new Set(unsure);
    return true;
  }
  if (state.unsure.size === 0) return false;
  const again = earlier.filter((id) => state.unsure.has(id));
  const { lost, unsure } = judgeRequests(again, state.heard, status);
  loseAll(state, lost);
  state.unsure = new Set(unsure);
  return true;
}

function loseAll(state, ids) {
  for (const id of ids) {
    state.open.delete(id);
    state.queued.delete(id);
    state.lost.add(id);
    markLost(id);
  }
}

/** The reply bubble (its spinner stopped), or the message itself when no reply had started. */
function markLost(id) {
  const sel = `[data-request-id="${CSS.escape(id)}"]`;
  const reply = els.log.querySelector(`li.assistant${sel}`);
  const li = reply ?? els.log.querySelector(`li.user${sel}`);
  if (!li) return;
  endStreaming(li);
  li.classList.add('lost');
  const label = document.createElement('span');
  label.className = 'lost-label';
  label.textContent = LOST_TEXT;
  li.append(label);
}

/** The server spoke of a request judged lost after all (a kept reply, a reply that went on). */
export function unmarkLost(id) {
  for (const li of els.log.querySelectorAll(`li.lost[data-request-id="${CSS.escape(id)}"]`)) {
    li.classList.remove('lost');
    li.querySelector('.lost-label')?.remove();
    // A reply that goes on streams again (its message_complete stops the spinner).
    if (li.classList.contains('assistant')) li.classList.add('streaming');
  }
}
