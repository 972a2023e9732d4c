/**
 * etcd's `simple` tokens (auth/simple_token.go): a random string of
 * letters, a dot and a sequence number (`nxGUUvhFmxRqkwdY.38`), held by the
 * member that issued it and valid there only, until it goes unused for the
 * token TTL (--auth-token-ttl; each use extends it, as etcd's). No I/O: the
 * clock and the random source are injected.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { invariant } from "../invariant.ts";
import type { AuthChange } from "./mod.ts";
import { MAX_SIMPLE_TOKENS, SIMPLE_TOKEN_LENGTH } from "../limits.ts";

/** What a token stands for. */
export interface TokenInfo {
  /** The user it authenticates. */
  user: string;
  /**
   * The auth revision it was issued at, for tokens that carry one (JWT);
   * absent for `simple` tokens, which stand for the auth store as it is when
   * they are used (etcd passes its current revision).
   */
  revision?: number;
}

/**
 * Where a member's tokens come from and are checked (etcd's TokenProvider):
 * `simple` tokens ({@linkcode SimpleTokens}) or JWTs.
 */
export interface TokenProvider {
  /** A new token for `info`. */
  assign(info: TokenInfo): string | Promise<string>;
  /** What `token` stands for; undefined when it is not (or no longer) valid. */
  info(token: string): TokenInfo | undefined | Promise<TokenInfo | undefined>;
  /** Drop every token of `user`. */
  invalidateUser(user: string): void;
  /** Drop every token. */
  clear(): void;
}

/**
 * Drop the tokens an applied auth change invalidates, as etcd does: a
 * deleted user's, a user's whose password changed, and every token when
 * auth is disabled.
 */
export function invalidateTokens(tokens: TokenProvider, change: AuthChange): void {
  if (change.op === "disable") tokens.clear();
  else if (change.op === "user_delete" || change.op === "user_change_password") {
    tokens.invalidateUser(change.name);
  }
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
export class SimpleTokens implements TokenProvider {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #random: (n: number) => Uint8Array;
  readonly #max: number;
  /**
   * Live tokens by their SHA-256 (hex), least recently used first (a Map
   * keeps insertion order). A token is looked up by its digest and then
   * compared in constant time, so how long a lookup takes tells nothing of
   * how much of a guessed token is right.
   */
  #tokens = new Map<string, TokenInfo & { expires: number; token: Uint8Array }>();
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
    this.#tokens.set(digest(token), {
      user: info.user,
      expires: this.#now() + this.#ttlMs,
      token: encoder.encode(token),
    });
    return token;
  }

  /** What `token` stands for, extending its life by the TTL; undefined when unknown or expired. */
  info(token: string): TokenInfo | undefined {
    this.#expire();
    const key = digest(token);
    const known = this.#tokens.get(key);
    if (known === undefined) return undefined;
    const given = encoder.encode(token);
    if (given.length !== known.token.length || !timingSafeEqual(given, known.token)) {
      return undefined;
    }
    this.#tokens.delete(key);
    this.#tokens.set(key, { ...known, expires: this.#now() + this.#ttlMs });
    return { user: known.user };
  }

  /** Drop every token of `user` (etcd does on user delete and password change). */
  invalidateUser(user: string): void {
    for (const [key, info] of this.#tokens) if (info.user === user) this.#tokens.delete(key);
  }

  /** Drop every token (auth disabled). */
  clear(): void {
    this.#tokens.clear();
  }

  #expire(): void {
    const now = this.#now();
    // Least recently used first: they expire first.
    for (const [key, info] of this.#tokens) {
      if (info.expires > now) break;
      this.#tokens.delete(key);
    }
  }
}

const encoder = new TextEncoder();

/** A token's key in the table: its SHA-256, hex. */
function digest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
