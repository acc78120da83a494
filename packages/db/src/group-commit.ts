/**
 * The two halves of a group commit loop (a worker's rounds, an ingress's statements of its own
 * decisions): wait until at least gapMs have passed since the previous start, then take what is
 * parked, up to batchMax units. Under load each start carries everything that arrived during the
 * gap; an idle loop starts at once (docs/decisions/0001).
 */

/** Resolves once gapMs have passed since lastStartMs (at once if they have); returns the new start. */
export async function paceStart(lastStartMs: number, gapMs: number): Promise<number> {
  const waitMs = lastStartMs + gapMs - performance.now();
  if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
  return performance.now();
}

/** Takes items off the front of parked while their sizes add up to at most max (always at least one). */
export function takeUpTo<T>(parked: T[], max: number, sizeOf: (item: T) => number): T[] {
  const take: T[] = [];
  let size = 0;
  while (parked.length > 0 && (take.length === 0 || size + sizeOf(parked[0]!) <= max)) {
    const next = parked.shift()!;
    take.push(next);
    size += sizeOf(next);
  }
  return take;
}
