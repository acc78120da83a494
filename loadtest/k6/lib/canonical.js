// Answers compared as values, not as text: the same JSON whatever the order of its keys. k6's
// res.json() builds objects whose key order differs from the server's bytes (and from one call to
// the next), so JSON.stringify of two equal answers could differ: the smoke test's resend and GET
// checks failed on byte-identical answers that way.

/** @param {unknown} value @returns {string} */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = /** @type {Record<string, unknown>} */ (value);
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** True when two answers are the same JSON value. @param {unknown} a @param {unknown} b */
export function sameAnswer(a, b) {
  return canonical(a) === canonical(b);
}

/** A response's body as JSON, or null. @param {{ body: unknown }} res */
export function bodyJson(res) {
  try {
    return typeof res.body === "string" ? JSON.parse(res.body) : null;
  } catch (_) {
    return null;
  }
}
