/**
 * The leader's lease duties (etcd's lessor run loop): it revokes expired
 * leases and checkpoints remaining TTLs, both by proposing requests through
 * the log (so every member applies the same change), and serves keep-alive,
 * time-to-live and the lease list from the member's {@linkcode Lessor}.
 *
 * Expiry is checked every {@linkcode LEASE_EXPIRY_POLL_MS} against a queue
 * ordered by expiry, so a lease's keys go at most that long (plus one
 * proposal) after its expiry, which is its TTL plus `LEASE_EXPIRY_SLACK_MS`
 * after its grant or keep-alive applied (never before the TTL); at most
 * {@linkcode LEASE_REVOKE_BATCH} revocations are proposed per turn, so a
 * mass expiry is spread over turns and client requests keep being served.
 *
 * @module
 */
import { ROOT } from "../../core/auth/mod.ts";
import type { Lessor } from "../../core/lease/mod.ts";
import { compareBytes } from "../../core/mvcc/encoding.ts";
import {
  LEASE_CHECKPOINT_BATCH,
  LEASE_CHECKPOINT_INTERVAL_MS,
  LEASE_CHECKPOINTS_PER_ROUND,
  LEASE_EXPIRY_POLL_MS,
  LEASE_REVOKE_BATCH,
} from "../../core/limits.ts";
import type { ApplyResult } from "./applier.ts";
import type { InternalRequest } from "./request.ts";

/** What time-to-live reports of a live lease. */
export interface LeaseTtl {
  /** Seconds left, rounded up. */
  TTL: number;
  /** The TTL granted, in seconds. */
  grantedTTL: number;
  /** The attached keys (empty unless asked for), in key order. */
  keys: Uint8Array[];
}

/** Revokes expired leases and records remaining TTLs, through the log. */
export class LeaseKeeper {
  readonly #lessor: Lessor;
  readonly #propose: (req: InternalRequest) => Promise<ApplyResult>;
  #expiryTimer: ReturnType<typeof setInterval> | undefined;
  #checkpointTimer: ReturnType<typeof setInterval> | undefined;
  #checkpointing = false;
  readonly #checkpointMs: number;

  /**
   * A keeper of `lessor`'s leases, proposing through `propose`, recording
   * remaining TTLs every `checkpointMs` (default
   * {@linkcode LEASE_CHECKPOINT_INTERVAL_MS}).
   */
  constructor(
    lessor: Lessor,
    propose: (req: InternalRequest) => Promise<ApplyResult>,
    checkpointMs = LEASE_CHECKPOINT_INTERVAL_MS,
  ) {
    this.#lessor = lessor;
    this.#propose = propose;
    this.#checkpointMs = checkpointMs;
  }

  /** Start the expiry and checkpoint timers. */
  start(): void {
    this.#expiryTimer ??= setInterval(() => this.expire(), LEASE_EXPIRY_POLL_MS);
    this.#checkpointTimer ??= setInterval(() => void this.checkpoint(), this.#checkpointMs);
    Deno.unrefTimer(Number(this.#expiryTimer));
    Deno.unrefTimer(Number(this.#checkpointTimer));
  }

  /** Stop the timers. */
  stop(): void {
    clearInterval(this.#expiryTimer);
    clearInterval(this.#checkpointTimer);
    this.#expiryTimer = this.#checkpointTimer = undefined;
  }

  /**
   * Propose the revocation of every expired lease, at most
   * {@linkcode LEASE_REVOKE_BATCH} now and the rest in the next turns.
   */
  expire(): void {
    const due = this.#lessor.due(LEASE_REVOKE_BATCH);
    for (const id of due) {
      this.#propose({
        type: "lease_revoke",
        lease_revoke: { ID: id },
        // Expiry revokes as root, whatever the attached keys' permissions (etcd's WithRoot).
        header: { username: ROOT, auth_revision: 0 },
      }).then(
        // "not found": revoked by a client meanwhile.
        () => {},
        () => this.#lessor.retry(id),
      );
    }
    if (due.length === LEASE_REVOKE_BATCH) setTimeout(() => this.expire(), 0);
  }

  /** Propose checkpoints of the remaining TTLs that changed, in batches. */
  async checkpoint(): Promise<void> {
    if (this.#checkpointing) return;
    this.#checkpointing = true;
    try {
      // At most LEASE_CHECKPOINTS_PER_ROUND a round: with many leases each
      // waits its turn, and the log is not flooded with lease records.
      const all = this.#lessor.checkpoints(LEASE_CHECKPOINTS_PER_ROUND);
      for (let i = 0; i < all.length; i += LEASE_CHECKPOINT_BATCH) {
        const checkpoints = all.slice(i, i + LEASE_CHECKPOINT_BATCH).map((c) => ({
          ID: c.id,
          remaining_TTL: c.remaining,
        }));
        await this.#propose({ type: "lease_checkpoint", lease_checkpoint: { checkpoints } });
      }
    } catch {
      // Refused (the member is stopping, or its storage failed): the next interval tries again.
    } finally {
      this.#checkpointing = false;
    }
  }

  /**
   * Keep-alive: lease `id` expires its full TTL from now. Returns the TTL in
   * seconds, or undefined for an unknown lease. A checkpointed remaining
   * TTL is cleared through the log, so a restart gives the lease its full
   * TTL again.
   */
  renew(id: bigint): number | undefined {
    const ttl = this.#lessor.renew(id);
    if (ttl !== undefined && this.#lessor.get(id)!.remaining !== 0) {
      this.#propose({
        type: "lease_checkpoint",
        lease_checkpoint: { checkpoints: [{ ID: id, remaining_TTL: 0 }] },
      }).catch(() => {});
    }
    return ttl;
  }

  /** Time-to-live of lease `id` (keys when `keys`), or undefined when it does not exist. */
  timeToLive(id: bigint, keys: boolean): LeaseTtl | undefined {
    const lease = this.#lessor.get(id);
    if (lease === undefined) return undefined;
    const attached = keys ? [...lease.keys.values()] : [];
    attached.sort(compareBytes);
    return {
      TTL: this.#lessor.remainingSeconds(id)!,
      grantedTTL: lease.ttl,
      keys: attached,
    };
  }

  /** Every lease ID, soonest expiry first (as etcd lists them). */
  ids(): bigint[] {
    const leases = [...this.#lessor.all()];
    leases.sort((a, b) => a.expiry - b.expiry || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return leases.map((l) => l.id);
  }
}
