/**
 * Deliberate protocol bugs ("mutants") that the simulator must catch. Each
 * is a switch inside the core, off by default; only tests/sim turns one on,
 * to prove that its safety checks can fail.
 *
 * @module
 */

/**
 * - `no-up-to-date-check`: grant votes without the §5.4.1 log comparison;
 * - `commit-previous-term`: commit an older-term entry by counting replicas
 *   (breaks the Figure 8 rule, §5.4.2);
 * - `no-term-check`: accept messages from stale terms as if current.
 */
export type Mutant = "no-up-to-date-check" | "commit-previous-term" | "no-term-check";

/** All mutant names, for CLIs and tests. */
export const MUTANTS: readonly Mutant[] = [
  "no-up-to-date-check",
  "commit-previous-term",
  "no-term-check",
];
