// What the chat page and the terminal client make of a reconnect (SPEC §9.5): the view is rebuilt
// from the server's `status` (and `resume`), not kept from before. Plain ES module, so the page
// loads it as it is and the terminal client imports it with reconnect.d.ts.

/** Reconnect delays: 1, 2, 4 … 30 s after the `attempt`-th failure in a row (0-based). */
export function backoffMs(attempt) {
  return Math.min(30_000, 1000 * 2 ** attempt);
}

/**
 * The requests of earlier connections, judged by the first `status` on the new one.
 *
 * `open`: ids of requests sent on an earlier connection that had not ended; `heard`: ids that had a
 * frame on the new connection (a reply that went on, a kept reply from `resume`); `status`: the
 * server's answer. A request the status lists is `waiting` (at that place). One heard of lives on.
 * Any other is `lost` — the server no longer has it (a restart, or a state that was lost) — unless
 * the status shows replies in flight (a limit counted in `requests` with some used): it may be one
 * of them, so it is `unsure` and judged again by a later status. A reply that does come later
 * revives a request judged lost (the page and the client show it as usual).
 */
export function judgeRequests(open, heard, status) {
  const places = new Map();
  for (const r of status?.queue?.requests ?? []) places.set(r.requestId, r.position);
  const inFlight = (status?.limits ?? [])
    .filter((l) => l.unit === 'requests')
    .reduce((most, l) => Math.max(most, Number(l.used) || 0), 0);
  const waiting = new Map();
  const lost = [];
  const unsure = [];
  for (const id of open) {
    if (places.has(id)) waiting.set(id, places.get(id));
    else if (heard.has(id)) continue;
    else if (inFlight > 0) unsure.push(id);
    else lost.push(id);
  }
  // Requests waiting that this client did not send (another tab, another terminal) are shown too.
  for (const [id, position] of places) if (!waiting.has(id)) waiting.set(id, position);
  return { waiting, lost, unsure };
}
