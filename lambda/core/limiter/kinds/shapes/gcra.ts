import type { ExpressionWriter } from '../../expression';

/**
 * The GCRA write, shared by the message bucket and the tokens-per-minute bucket: the stored
 * theoretical arrival time `attribute` moves on by `step`, and must stay at or before `latest` (the
 * last arrival time that still lets this request through). The belief (`believedTat`) picks the
 * shape; the condition makes it correct whatever the item holds:
 * - idle (tat ≤ now): restart from now, `tat = now + step`;
 * - busy (now < tat ≤ latest): `tat = tat + step`, so at most a bucket's capacity passes back to
 *   back and then one interval's worth at a time, however many writers race;
 * - a shadow bucket (`enforce` false) believed past `latest` stops counting instead (pinned on
 *   `tat > latest`): it never runs ahead of a full bucket, so enforcing it later starts full.
 * Returns whether the write moves the bucket.
 */
export function writeArrivalTime(
  w: ExpressionWriter,
  args: {
    readonly attribute: string;
    readonly believedTat: number | undefined;
    readonly nowMs: number;
    readonly step: number;
    readonly latest: number;
    readonly enforce: boolean;
  },
): boolean {
  const { believedTat, nowMs, step, latest } = args;
  const tat = w.name(args.attribute);
  if (believedTat === undefined || believedTat <= nowMs) {
    w.condition(`(attribute_not_exists(${tat}) OR ${tat} <= ${w.value(nowMs)})`);
    w.set(`${tat} = ${w.value(nowMs + step)}`);
    return true;
  }
  if (!args.enforce && believedTat > latest) {
    w.condition(`${tat} > ${w.value(latest)}`);
    return false;
  }
  w.condition(`(${tat} > ${w.value(nowMs)} AND ${tat} <= ${w.value(latest)})`);
  w.set(`${tat} = ${tat} + ${w.value(step)}`);
  return true;
}

/** Does the GCRA write move the bucket (see {@link writeArrivalTime})? */
export function movesArrivalTime(
  believedTat: number | undefined,
  nowMs: number,
  latest: number,
  enforce: boolean,
): boolean {
  return enforce || believedTat === undefined || believedTat <= Math.max(nowMs, latest);
}

/** The arrival time as of now: it never lags behind now (an idle bucket is simply full). */
export const arrivalTimeAt = (believedTat: number | undefined, nowMs: number) =>
  Math.max(believedTat ?? nowMs, nowMs);
