// A reply being streamed, with its Stop button (SPEC §9.3). The button sends `cancel` for the
// reply; the server stops the model and ends the reply with `message_complete` `stopped: true`
// (the text so far, the tokens charged), which ends the bubble like any other reply.

import { addEntry } from './dom.js';

/** The bubble of reply `id`, made (with its Stop button) when its first text arrives. */
export function streamingReply(state, id, stop) {
  let li = state.replies.get(id);
  if (!li) {
    li = addEntry('assistant streaming', '', id);
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'stop secondary';
    button.textContent = 'Stop';
    button.title = 'Stop this reply: you are charged only for what it produced so far.';
    button.addEventListener('click', () => {
      button.disabled = true;
      button.textContent = 'Stopping…';
      stop();
    });
    li.append(button);
    state.replies.set(id, li);
  }
  return li;
}

/** Appends streamed text to the bubble, before its Stop button. */
export function appendText(li, text) {
  const first = li.firstChild;
  const node =
    first?.nodeType === Node.TEXT_NODE ? first : li.insertBefore(document.createTextNode(''), first);
  node.data += text;
}

/** The reply ended (complete, stopped, lost): no spinner, no Stop button. */
export function endStreaming(li) {
  li.classList.remove('streaming');
  li.querySelector('button.stop')?.remove();
}
