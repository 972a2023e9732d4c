/**
 * A small seeded pseudo-random generator (Mulberry32). The Raft core draws
 * its randomized election timeouts from an injected `Prng` so that a cluster
 * run is reproducible from one seed; the server seeds it from
 * `crypto.getRandomValues`.
 *
 * @module
 */

/** Source of pseudo-random integers. */
export interface Prng {
  /** A uniformly distributed integer in `[0, n)`; `n` is a positive integer. */
  intn(n: number): number;
}

/**
 * Mulberry32: 32-bit state, period 2^32, good enough for timeouts and
 * simulation choices (not for cryptography).
 *
 * @example
 * ```ts
 * const r = new Mulberry32(42);
 * r.intn(10); // same value on every run
 * ```
 */
export class Mulberry32 implements Prng {
  #state: number;

  /** Seeds the generator; equal seeds give equal sequences. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Next float in `[0, 1)`. */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** See `Prng.intn`. */
  intn(n: number): number {
    return Math.floor(this.next() * n);
  }
}
