/**
 * The user's item as a kind sees it: each kind reads the attributes it declares (with
 * {@link storedNumber}); the item codec keeps every declared attribute on the snapshot.
 */
export interface KindSnapshot {
  /** The user's requests being answered now (`fl`): request id → lease (epoch ms). */
  readonly inFlight?: Readonly<Record<string, number>>;
}

/** A numeric attribute of the stored item, as the snapshot holds it. */
export function storedNumber(snap: KindSnapshot, attribute: string): number | undefined {
  const value = (snap as Readonly<Record<string, unknown>>)[attribute];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
