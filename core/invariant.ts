/**
 * Always-on assertions (TigerBeetle style): a precondition or invariant that
 * does not hold is a bug in cairn, never bad input. Bad input gets an
 * `EtcdError` (core/errors.ts) instead.
 *
 * @module
 */

/** Thrown when an internal invariant of cairn does not hold. */
export class InvariantError extends Error {
  /**
   * Builds the error.
   * @param message names the violated invariant.
   */
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

/**
 * Asserts `cond`; stays on in production.
 *
 * @example
 * ```ts
 * invariant(batch.length <= MAX_BATCH_ENTRIES, "a batch holds at most MAX_BATCH_ENTRIES entries");
 * ```
 * @throws {InvariantError} naming the invariant when `cond` is false.
 */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(`Invariant violated: ${message}`);
}
