// The side panels: what is left of each limit, and the requests waiting in line.

import { capitalized, els } from './dom.js';
import { LIMIT_REFILLS, limitName } from './names.js';
import { remainingAt } from './refill.js';

/** The last `status` shown, and how far the server's clock is ahead of this one's. */
let shown;

export function renderGauges(status) {
  shown = { status, aheadMs: (status.timestamp ?? Date.now()) - Date.now() };
  const own = status.limits.map((l) => gaugeOf(l, capitalized(limitName(l.name))));
  els.gauges.replaceChildren(...own, ...teamGroup(status.team), ...globalGroup(status.global ?? []));
  els.identity.textContent = [
    status.userId,
    status.tier,
    ...(status.team ? [`team ${status.team.name}`] : []),
  ].join(' · ');
  refreshGauges();
}

/**
 * A `message_complete` carries the limits its settle left, as `status` gives them (SPEC §9.3): the
 * gauges take them without asking. False when there are none, or no status was shown yet (the
 * identity line comes from a status).
 */
export function renderLimits(msg) {
  if (!shown || !Array.isArray(msg.limits)) return false;
  renderGauges({ ...shown.status, limits: msg.limits, timestamp: msg.timestamp });
  return true;
}

/**
 * The stack-wide limits, totals over all users (SPEC §9.5), beside the user's own: a "Global"
 * group, shown only when the stack has global limits. They are not projected (refreshGauges):
 * others' use moves them too, so the last status is what is known.
 */
function globalGroup(limits) {
  if (limits.length === 0) return [];
  return [sharedGroup('global', 'Global (all users)', limits, 'global.')];
}

/**
 * The user's team and its limits, totals over its members (SPEC §9.4, §9.5): a "Team eng" group
 * between the user's own and the global ones, shown whenever the user is in a team (a team
 * without limits set says so). Not projected, like the global ones: the other members move them.
 */
function teamGroup(team) {
  if (!team) return [];
  const group = sharedGroup('team', `Team ${team.name}`, team.limits, 'team.');
  group.dataset.team = team.name;
  if (team.source === 'record') group.title = 'set by an administrator';
  if (team.limits.length === 0) {
    const none = document.createElement('p');
    none.className = 'reset';
    none.textContent = 'no team limits set';
    group.append(none);
  }
  return [group];
}

/** A titled group of limits many users share, each gauge named without its `prefix`. */
function sharedGroup(kind, titleText, limits, prefix) {
  const group = document.createElement('div');
  group.className = 'gauge-group';
  group.dataset.group = kind;
  const title = document.createElement('h3');
  title.textContent = titleText;
  group.append(title, ...limits.map((l) => gaugeOf(l, capitalized(limitName(l.name.slice(prefix.length))))));
  return group;
}

/** One limit's gauge: its name, what is left of it, a meter, and when it is full again. */
function gaugeOf(l, label) {
  const div = document.createElement('div');
  div.className = 'gauge';
  div.dataset.limit = l.name;
  const head = document.createElement('div');
  head.className = 'label';
  const name = document.createElement('span');
  name.textContent = label;
  const value = document.createElement('span');
  value.className = 'value';
  value.textContent = `${l.remaining.toLocaleString()} / ${l.limit.toLocaleString()} left`;
  head.append(name, value);
  const meter = document.createElement('meter');
  meter.min = 0;
  meter.max = l.limit;
  meter.value = l.remaining;
  meter.low = l.limit * 0.2;
  meter.optimum = l.limit;
  meter.setAttribute('aria-label', `${name.textContent}: ${value.textContent}`);
  const reset = document.createElement('div');
  reset.className = 'reset';
  reset.textContent = `full again ${new Date(l.resetAt).toLocaleTimeString()}`;
  div.append(head, meter, reset);
  return div;
}

/** The gauges now: what the last status said, plus what refilled since (remainingAt). */
export function refreshGauges() {
  if (!shown) return;
  const nowMs = Date.now() + shown.aheadMs;
  for (const l of shown.status.limits) {
    const gauge = els.gauges.querySelector(`.gauge[data-limit="${CSS.escape(l.name)}"]`);
    if (!gauge) continue;
    const remaining = remainingAt(l, LIMIT_REFILLS[l.name], nowMs);
    const value = gauge.querySelector('.value');
    value.textContent = `${remaining.toLocaleString()} / ${l.limit.toLocaleString()} left`;
    const meter = gauge.querySelector('meter');
    meter.value = remaining;
    meter.setAttribute('aria-label', `${capitalized(limitName(l.name))}: ${value.textContent}`);
  }
}

/** The queue panel: `queued` (requestId -> place) soonest first, each with a Cancel button. */
export function renderQueue(queued, onCancel) {
  const items = [...queued.entries()].sort((a, b) => a[1].position - b[1].position);
  els.queueEmpty.hidden = items.length > 0;
  els.queue.replaceChildren(
    ...items.map(([id, q]) => {
      const li = document.createElement('li');
      li.dataset.requestId = id;
      const pos = document.createElement('span');
      pos.className = 'pos';
      pos.textContent = `#${q.position}`;
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = (q.text || id).slice(0, 40);
      const eta = document.createElement('span');
      eta.className = 'eta';
      // A place rebuilt from `status` after a reconnect has no estimate until the next notice.
      eta.textContent =
        q.etaAtMs === undefined ? '…' : `~${Math.max(0, Math.ceil((q.etaAtMs - Date.now()) / 1000))} s`;
      const cancel = document.createElement('button');
      cancel.className = 'secondary';
      cancel.type = 'button';
      cancel.textContent = 'Cancel';
      cancel.setAttribute('aria-label', `Cancel queued request #${q.position}`);
      cancel.addEventListener('click', () => onCancel(id));
      li.append(pos, text, eta, cancel);
      return li;
    }),
  );
}
