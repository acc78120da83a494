/** Our own bound on a wait ran out (the peer may still answer later; the caller decides what that means). */
export class BoundExceeded extends Error {
  override readonly name = "BoundExceeded";
}

/** `work`, or BoundExceeded after `ms`; the timer never outlives the race. */
export function withBound<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BoundExceeded(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
}
