import type { ExpressionWriter } from '../../expression';
import type { KindSnapshot } from '../kind';

/**
 * Requests in flight: the requests being answered now, kept in an item as a map `fl` of request
 * id → lease (epoch ms). The admission adds its id with `size(fl) < N` in its condition; the
 * settle removes it; a runner that crashed holds its slot only until its lease lapses, when the
 * next admission drops the entry (its condition pins each dropped entry's lease, and the size
 * bound counts them, so the bound stays exact). Used by the user's `requestsInFlight` and by the
 * global shards (global.ts).
 */

/** The in-flight requests whose lease has not lapsed at `nowMs`. */
export function liveInFlight(snap: KindSnapshot, nowMs: number): [string, number][] {
  return Object.entries(snap.inFlight ?? {}).filter(([, lease]) => lease > nowMs);
}

/** How many in-flight requests have a lease that has not lapsed at `nowMs` (liveInFlight's length, no array). */
export function liveInFlightCount(snap: KindSnapshot, nowMs: number): number {
  const leases = snap.inFlight;
  let live = 0;
  if (leases) for (const id of Object.keys(leases)) if (leases[id]! > nowMs) live++;
  return live;
}

/**
 * Writes `fl.<id> = lease` under `size(fl) < limit + k`, dropping in the same write the k lapsed
 * entries the belief knows of, each pinned to the lease it was seen with (no limit: no bound).
 * Used by the admission and by the takeover of a request whose slot lapsed.
 */
export function takeInFlightSlot(
  w: ExpressionWriter,
  args: {
    readonly snap: KindSnapshot;
    readonly requestId: string;
    readonly leaseUntilEpochMs: number;
    readonly limit: number | undefined;
    readonly nowMs: number;
  },
): void {
  const { snap, requestId, leaseUntilEpochMs, limit, nowMs } = args;
  const fl = w.name('fl');
  if (snap.inFlight === undefined) {
    w.condition(`attribute_not_exists(${fl})`);
    w.set(`${fl} = ${w.value({ [requestId]: leaseUntilEpochMs })}`);
    return;
  }
  const lapsed = Object.entries(snap.inFlight).filter(([id, lease]) => lease <= nowMs && id !== requestId);
  for (const [id, lease] of lapsed) {
    const entry = `${fl}.${w.name(id)}`;
    w.condition(`${entry} = ${w.value(lease)}`);
    w.remove(entry);
  }
  w.condition(
    limit === undefined ? `attribute_exists(${fl})` : `size(${fl}) < ${w.value(limit + lapsed.length)}`,
  );
  w.set(`${fl}.${w.name(requestId)} = ${w.value(leaseUntilEpochMs)}`);
}

/** A settle gives the request's slot back (whatever the amounts). */
export function releaseInFlightSlot(w: ExpressionWriter, snap: KindSnapshot, requestId: string): void {
  const fl = w.name('fl');
  if (snap.inFlight !== undefined) {
    // Removing a key the map no longer has (lapsed and dropped) changes nothing, so a belief
    // that predates this request's admission needs no re-read.
    w.condition(`attribute_exists(${fl})`);
    w.remove(`${fl}.${w.name(requestId)}`);
  } else {
    // No map as far as we know: the write pins that (an admission since would have made one).
    w.condition(`attribute_not_exists(${fl})`);
  }
}
