/**
 * Leases, without I/O: etcd's lessor (`lease/lessor.go`). A lease has a
 * granted TTL in seconds and an expiry on an injected clock; keys attach to
 * it through puts and go with it when it is revoked.
 *
 * A lease expires its TTL plus {@linkcode LEASE_EXPIRY_SLACK_MS} after its
 * grant or last keep-alive is applied, so never before TTL seconds after the
 * client heard the answer.
 *
 * Two kinds of callers:
 * - the apply path (deterministic, the same on every member): `grant`,
 *   `revoke`, `checkpoint`, `attach`/`detach`; each is the effect of a
 *   committed log entry;
 * - the member that expires leases (the leader): `renew` (keep-alive, in
 *   memory, as etcd's), `due` (leases whose expiry passed and that are not
 *   being revoked yet), `checkpoints` (remaining TTLs worth recording), and
 *   the reads `timeToLive` and `list`.
 *
 * @module
 */
import { Errors } from "../errors.ts";
import { compareBytes, keyId } from "../mvcc/encoding.ts";
import { invariant } from "../invariant.ts";
import { LEASE_EXPIRY_SLACK_MS, MAX_LEASE_TTL_SECONDS } from "../limits.ts";

export { MAX_LEASE_TTL_SECONDS };

/** One lease. */
export interface Lease {
  /** The lease ID (a non-zero int64). */
  readonly id: bigint;
  /** The TTL granted, in seconds (after raising it to the minimum). */
  ttl: number;
  /** When it expires, in the lessor's clock (ms). */
  expiry: number;
  /** The remaining TTL recorded by the last checkpoint, in seconds; 0: none. */
  remaining: number;
  /** Attached keys, by their byte string. */
  readonly keys: Map<string, Uint8Array>;
  /** A revocation was proposed for it and is not applied yet. */
  revoking: boolean;
}

/** Options of {@linkcode Lessor}. */
export interface LessorOptions {
  /** The clock, in ms (wall clock in the server; simulated in tests). */
  now: () => number;
  /** The smallest TTL granted, in seconds (etcd: ceil(1.5 × election timeout)); smaller ones are raised. */
  minTtl: number;
}

/**
 * Expiries in time order (a binary min-heap, etcd's LeaseQueue). An entry
 * whose lease was renewed, revoked or re-granted since is stale and skipped.
 */
class ExpiryQueue {
  #heap: { at: number; id: bigint }[] = [];

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, id: bigint): void {
    const h = this.#heap;
    h.push({ at, id });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  peek(): { at: number; id: bigint } | undefined {
    return this.#heap[0];
  }

  pop(): { at: number; id: bigint } | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].at < h[m].at) m = l;
        if (r < h.length && h[r].at < h[m].at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.#heap = [];
  }
}

/** The leases of one member. */
export class Lessor {
  readonly #leases = new Map<bigint, Lease>();
  readonly #queue = new ExpiryQueue();
  readonly #now: () => number;
  /** The smallest TTL granted, in seconds. */
  readonly minTtl: number;

  /** An empty lessor. */
  constructor(options: LessorOptions) {
    invariant(options.minTtl >= 1, "the minimum lease TTL is at least 1 s");
    this.#now = options.now;
    this.minTtl = options.minTtl;
  }

  /** Number of leases. */
  get size(): number {
    return this.#leases.size;
  }

  /** Whether lease `id` exists (put's lease check). */
  has(id: bigint): boolean {
    return this.#leases.has(id);
  }

  /** Lease `id`, if it exists. */
  get(id: bigint): Lease | undefined {
    return this.#leases.get(id);
  }

  /** Every lease. */
  all(): Iterable<Lease> {
    return this.#leases.values();
  }

  /**
   * The TTL a grant of `ttl` seconds gets: raised to the minimum.
   *
   * @throws {EtcdError} `etcdserver: too large lease TTL` over
   *   {@linkcode MAX_LEASE_TTL_SECONDS}.
   */
  grantedTtl(ttl: number): number {
    if (ttl > MAX_LEASE_TTL_SECONDS) throw Errors.LeaseTTLTooLarge();
    return Math.max(ttl, this.minTtl);
  }

  /**
   * Apply a grant: lease `id` with `ttl` seconds (raised to the minimum),
   * expiring that long from now.
   *
   * @throws {EtcdError} `etcdserver: lease already exists`; too large lease TTL.
   */
  grant(id: bigint, ttl: number): Lease {
    invariant(id !== 0n, "a lease ID is not 0");
    // etcd checks the TTL before the ID.
    const granted = this.grantedTtl(ttl);
    if (this.#leases.has(id)) throw Errors.LeaseExist();
    const lease: Lease = {
      id,
      ttl: granted,
      expiry: this.#now() + granted * 1000 + LEASE_EXPIRY_SLACK_MS,
      remaining: 0,
      keys: new Map(),
      revoking: false,
    };
    this.#leases.set(id, lease);
    this.#queue.push(lease.expiry, id);
    return lease;
  }

  /**
   * Apply a revocation: forget lease `id`; returns its keys in key order
   * (the caller deletes them, in one revision, in that order, as etcd).
   *
   * @throws {EtcdError} `etcdserver: requested lease not found`.
   */
  revoke(id: bigint): Uint8Array[] {
    const lease = this.#leases.get(id);
    if (lease === undefined) throw Errors.LeaseNotFound();
    this.#leases.delete(id);
    return [...lease.keys.values()].sort(compareBytes);
  }

  /** Apply a checkpoint: lease `id` has `remaining` seconds left (0 clears it). Unknown IDs are ignored. */
  checkpoint(id: bigint, remaining: number): void {
    const lease = this.#leases.get(id);
    if (lease !== undefined) lease.remaining = remaining;
  }

  /**
   * A lease as recorded in the store: `ttl` already granted, expiring
   * `remaining` seconds from now if a checkpoint recorded it, else `ttl`.
   */
  restore(id: bigint, ttl: number, remaining: number): void {
    const expiry = this.#now() + (remaining > 0 ? remaining : ttl) * 1000 + LEASE_EXPIRY_SLACK_MS;
    this.#leases.set(id, { id, ttl, expiry, remaining, keys: new Map(), revoking: false });
    this.#queue.push(expiry, id);
  }

  /**
   * This member became leader (etcd's `Promote`): every lease expires its
   * checkpointed remaining TTL (or its full TTL) plus `extendMs` from now, so
   * no lease expires for the time the cluster had no leader to renew it.
   */
  promote(extendMs: number): void {
    const now = this.#now();
    this.#queue.clear();
    for (const lease of this.#leases.values()) {
      const ttl = lease.remaining > 0 ? lease.remaining : lease.ttl;
      lease.expiry = now + ttl * 1000 + extendMs + LEASE_EXPIRY_SLACK_MS;
      lease.revoking = false;
      this.#queue.push(lease.expiry, lease.id);
    }
  }

  /** Forget every lease (before loading them again from the store). */
  clear(): void {
    this.#leases.clear();
    this.#queue.clear();
  }

  /** A put attached `key` to lease `id` (ignored if the lease is gone). */
  attach(id: bigint, key: Uint8Array): void {
    this.#leases.get(id)?.keys.set(keyId(key), key);
  }

  /** `key` left lease `id` (overwritten with another lease or none, or deleted). */
  detach(id: bigint, key: Uint8Array): void {
    this.#leases.get(id)?.keys.delete(keyId(key));
  }

  /**
   * Keep-alive (etcd's `Renew`): lease `id` expires its full TTL from now;
   * returns that TTL in seconds, or undefined for an unknown, expired or
   * expiring lease.
   */
  renew(id: bigint): number | undefined {
    const lease = this.#leases.get(id);
    // An expired lease is as good as revoked (etcd refuses to renew it).
    if (lease === undefined || lease.revoking || lease.expiry <= this.#now()) return undefined;
    lease.expiry = this.#now() + lease.ttl * 1000 + LEASE_EXPIRY_SLACK_MS;
    this.#queue.push(lease.expiry, id);
    return lease.ttl;
  }

  /** Whole seconds lease `id` has left (truncated, as etcd reports them); undefined when unknown. */
  remainingSeconds(id: bigint): number | undefined {
    const lease = this.#leases.get(id);
    if (lease === undefined) return undefined;
    // The slack is cairn's margin, not part of the TTL a client sees. etcd
    // truncates a nanosecond remainder, which is never a whole number of
    // seconds once any time has passed; the clock here counts whole
    // milliseconds, so a whole number of seconds counts as just under it.
    const ms = lease.expiry - LEASE_EXPIRY_SLACK_MS - this.#now();
    return Math.max(0, Math.ceil(ms / 1000) - 1);
  }

  /**
   * Leases whose expiry has passed and that are not being revoked, at most
   * `max`, earliest first, marked as being revoked (call
   * {@linkcode Lessor.retry} if the revocation could not be proposed).
   */
  due(max: number): bigint[] {
    const now = this.#now();
    const ids: bigint[] = [];
    for (let top = this.#queue.peek(); top !== undefined; top = this.#queue.peek()) {
      if (ids.length >= max || top.at > now) break;
      this.#queue.pop();
      const lease = this.#leases.get(top.id);
      // Stale: revoked, renewed (a later entry stands for it), or already going.
      if (lease === undefined || lease.expiry !== top.at || lease.revoking) continue;
      lease.revoking = true;
      ids.push(lease.id);
    }
    return ids;
  }

  /** A proposed revocation failed: lease `id` is due again at once. */
  retry(id: bigint): void {
    const lease = this.#leases.get(id);
    if (lease === undefined || !lease.revoking) return;
    lease.revoking = false;
    this.#queue.push(lease.expiry, id);
  }

  /** Entries in the expiry queue, stale ones included (bounded by grants and renewals per TTL). */
  get queued(): number {
    return this.#queue.size;
  }

  /** The lease the last {@linkcode Lessor.checkpoints} call looked at last. */
  #checkpointCursor: bigint | undefined;

  /**
   * Remaining TTLs worth recording, at most `max`: each lease whose
   * remaining time (rounded up to seconds) differs from the one recorded, so
   * a restart gives it what it had at the last checkpoint (never less than
   * it had at the crash). A lease with its full TTL left records 0 (none).
   * Each call goes on from where the previous one stopped, so with more
   * leases than `max` every lease gets its turn.
   */
  checkpoints(max: number): { id: bigint; remaining: number }[] {
    const out: { id: bigint; remaining: number }[] = [];
    const now = this.#now();
    const ids = [...this.#leases.keys()];
    const start = this.#checkpointCursor === undefined
      ? 0
      : ids.indexOf(this.#checkpointCursor) + 1;
    for (let k = 0; k < ids.length && out.length < max; k++) {
      const id = ids[(start + k) % ids.length];
      this.#checkpointCursor = id;
      const lease = this.#leases.get(id)!;
      if (lease.revoking) continue;
      const left = Math.max(1, Math.ceil((lease.expiry - LEASE_EXPIRY_SLACK_MS - now) / 1000));
      if (left >= lease.ttl) {
        if (lease.remaining !== 0) out.push({ id, remaining: 0 });
      } else if (left !== lease.remaining) {
        out.push({ id, remaining: left });
      }
    }
    return out;
  }
}
