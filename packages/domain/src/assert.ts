/**
 * A broken invariant is a bug, not an outcome: it stops the process
 * (TIGER_STYLE). Expected outcomes such as sold_out are values, never thrown.
 */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
