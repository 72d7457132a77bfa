// One conversation per tab (SPEC §9.3): its id lives in the tab's sessionStorage, so a reload keeps
// it and another tab has its own; "New chat" starts another, without the earlier turns.

import { notice } from './dom.js';

const KEY = 'chat-limiter.conversationId';

/** The tab's conversation, made on first use. */
export function conversationId() {
  let id = sessionStorage.getItem(KEY);
  if (!id) {
    id = crypto.randomUUID();
    sessionStorage.setItem(KEY, id);
  }
  return id;
}

export function newChat() {
  sessionStorage.setItem(KEY, crypto.randomUUID());
  notice('New chat: the model no longer sees the earlier messages.');
}

document.getElementById('new-chat')?.addEventListener('click', newChat);
