import { limitKind } from './limiter/kinds/registry';
import type { StatusLimit } from './server-messages';

/**
 * The user's limits in the IETF RateLimit header fields' structured syntax
 * (draft-ietf-httpapi-ratelimit-headers, RFC 9651 lists of items; SPEC §9.3): what `status`,
 * `message_complete` and refusals carry besides `limits`, so a client that speaks the draft needs
 * nothing of ours to read them.
 */
export interface RateLimitFields {
  /** `RateLimit-Policy`: one item per limit, `"<name>";q=<quota>[;qu="<unit>"][;w=<window s>]`. */
  readonly rateLimitPolicy: string;
  /** `RateLimit`: one item per limit, `"<name>";r=<remaining>;t=<seconds until whole>`. */
  readonly rateLimit: string;
}

/**
 * Both fields for limits as `status` shows them, at `nowMs` (the instant they describe: `t` counts
 * from it). Shadow limits are left out: they are reported, never enforced, and a client that paced
 * itself by them would hold back for nothing. Undefined when no limit is enforced.
 */
export function rateLimitFields(limits: readonly StatusLimit[], nowMs: number): RateLimitFields | undefined {
  const enforced = limits.filter((l) => !l.shadow);
  if (enforced.length === 0) return undefined;
  return {
    rateLimitPolicy: enforced.map(policyItem).join(', '),
    rateLimit: enforced.map((l) => serviceItem(l, nowMs)).join(', '),
  };
}

/**
 * The draft's values are non-negative integers: a kind's `quota.perShown` turns what `status` shows
 * into whole quota units (USD into µUSD); rounding only drops the float error of that product.
 */
const whole = (shown: number, perShown: number) => Math.max(0, Math.round(shown * perShown));

function policyItem(limit: StatusLimit): string {
  const { unit, perShown } = limitKind(limit.name).quota;
  const params = [`q=${whole(limit.limit, perShown)}`];
  if (unit !== undefined) params.push(`qu="${unit}"`);
  // A window is a positive integer of seconds; a limit with none (requests in flight) has no `w`.
  if (limit.windowSeconds > 0) params.push(`w=${Math.ceil(limit.windowSeconds)}`);
  return [`"${limit.name}"`, ...params].join(';');
}

function serviceItem(limit: StatusLimit, nowMs: number): string {
  const { perShown } = limitKind(limit.name).quota;
  const t = Math.max(0, Math.ceil((limit.resetAt - nowMs) / 1000));
  return `"${limit.name}";r=${whole(limit.remaining, perShown)};t=${t}`;
}
