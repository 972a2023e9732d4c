/**
 * etcd's `simple` tokens (auth/simple_token.go): a random string of
 * letters, a dot and a sequence number (`nxGUUvhFmxRqkwdY.38`), held by the
 * member that issued it and valid there only, until it goes unused for the
 * token TTL (--auth-token-ttl; each use extends it, as etcd's). No I/O: the
 * clock and the random source are injected.
 *
 * @module
 */
import { invariant } from "../invariant.ts";
import { MAX_SIMPLE_TOKENS, SIMPLE_TOKEN_LENGTH } from "../limits.ts";

/** What a token stands for. */
export interface TokenInfo {
  /** The user it authenticates. */
  user: string;
  /** The auth revision when it was issued. */
  revision: number;
}

/** Options of {@linkcode SimpleTokens}. */
export interface SimpleTokenOptions {
  /** Seconds a token stays valid after its last use (etcd's --auth-token-ttl, 300). */
  ttlSeconds: number;
  /** The clock, in ms. */
  now: () => number;
  /** `n` random bytes. */
  random: (n: number) => Uint8Array;
  /** Tokens held at once, at most (default MAX_SIMPLE_TOKENS). */
  maxTokens?: number;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** The `simple` tokens a member issued. */
export class SimpleTokens {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #random: (n: number) => Uint8Array;
  readonly #max: number;
  /** Live tokens, least recently used first (a Map keeps insertion order). */
  #tokens = new Map<string, TokenInfo & { expires: number }>();
  #seq = 0;

  /** A token table with etcd's TTL rule. */
  constructor(options: SimpleTokenOptions) {
    invariant(options.ttlSeconds > 0, "a token TTL is positive");
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#now = options.now;
    this.#random = options.random;
    this.#max = options.maxTokens ?? MAX_SIMPLE_TOKENS;
    invariant(this.#max > 0, "a member holds at least one token");
  }

  /** Tokens held. */
  get size(): number {
    return this.#tokens.size;
  }

  /**
   * A new token for `info`, valid for the TTL from now; when the table is
   * full the least recently used token is dropped first.
   */
  assign(info: TokenInfo): string {
    this.#expire();
    if (this.#tokens.size >= this.#max) {
      const oldest = this.#tokens.keys().next().value as string;
      this.#tokens.delete(oldest);
    }
    const bytes = this.#random(SIMPLE_TOKEN_LENGTH);
    let prefix = "";
    for (const b of bytes) prefix += LETTERS[b % LETTERS.length];
    const token = `${prefix}.${++this.#seq}`;
    this.#tokens.set(token, { ...info, expires: this.#now() + this.#ttlMs });
    return token;
  }

  /** What `token` stands for, extending its life by the TTL; undefined when unknown or expired. */
  info(token: string): TokenInfo | undefined {
    this.#expire();
    const known = this.#tokens.get(token);
    if (known === undefined) return undefined;
    this.#tokens.delete(token);
    this.#tokens.set(token, { ...known, expires: this.#now() + this.#ttlMs });
    return { user: known.user, revision: known.revision };
  }

  /** Drop every token of `user` (etcd does on user delete and password change). */
  invalidateUser(user: string): void {
    for (const [token, info] of this.#tokens) if (info.user === user) this.#tokens.delete(token);
  }

  /** Drop every token (auth disabled). */
  clear(): void {
    this.#tokens.clear();
  }

  #expire(): void {
    const now = this.#now();
    // Least recently used first: they expire first.
    for (const [token, info] of this.#tokens) {
      if (info.expires > now) break;
      this.#tokens.delete(token);
    }
  }
}
