/** How the tests wait: a pause, and polling until something holds (never a bare sleep before an assertion). */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` (every 50 ms) until it gives a value other than undefined, null or false, and
 * returns that value (0 and "" count as values); throws `${what}: not within ${timeoutMs} ms` once the time is up.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}
