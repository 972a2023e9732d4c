/**
 * etcd's Lease service (`v3rpc/lease.go`, `etcdserver/v3_server.go`), once
 * for every transport: grant and revoke go through the log; keep-alive,
 * time-to-live and the list are answered by the member's lessor (on the
 * leader, which holds the expiry clock).
 *
 * @module
 */
import type {
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from "../../core/api/types.ts";
import { QUOTA_LEASE_OVERHEAD_BYTES } from "../../core/limits.ts";
import type { Credentials, ServiceContext } from "./context.ts";
import { Errors } from "../../core/errors.ts";
import { opPermission } from "../../core/auth/permission.ts";

/** A random lease ID as etcd picks one: a non-zero positive int64. */
export function randomLeaseId(): bigint {
  const bytes = new BigUint64Array(1);
  for (;;) {
    crypto.getRandomValues(bytes);
    const id = bytes[0] & 0x7fff_ffff_ffff_ffffn;
    if (id !== 0n) return id;
  }
}

/** etcd's Lease service. */
export class LeaseServer {
  readonly #ctx: ServiceContext;

  /** The Lease service over the member's context. */
  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /** A full header at the current revision (every answered write included). */
  async #header() {
    await this.#ctx.linearize();
    return this.#ctx.header(this.#ctx.view().rev());
  }

  /**
   * etcd LeaseGrant: a lease of `TTL` seconds (raised to the 2 s minimum),
   * with ID `ID`, or a random one when 0.
   *
   * @throws {EtcdError} `etcdserver: lease already exists` (FailedPrecondition)
   *   for an ID in use; `etcdserver: too large lease TTL` (OutOfRange) over
   *   9,000,000,000 s; NoSpace past the backend quota (64 bytes a lease) or
   *   under the NOSPACE alarm, Corrupt under the CORRUPT alarm.
   */
  async grant(req: LeaseGrantRequest, creds?: Credentials): Promise<LeaseGrantResponse> {
    await this.#ctx.checkQuota(QUOTA_LEASE_OVERHEAD_BYTES);
    const ID = req.ID && req.ID !== 0n ? req.ID : randomLeaseId();
    // etcd 3.4 checks no permission to grant a lease; a token must be valid.
    return await this.#ctx.proposeAs<LeaseGrantResponse>(creds, {
      type: "lease_grant",
      lease_grant: { ID, TTL: req.TTL ?? 0 },
    });
  }

  /**
   * etcd LeaseRevoke: the lease goes, and every key attached to it is
   * deleted in one revision.
   *
   * While auth is on, a user without the root role needs WRITE on every
   * key attached (checked at apply, where the attached keys are known).
   *
   * @throws {EtcdError} `etcdserver: requested lease not found` (NotFound);
   *   InvalidAuthToken, UserEmpty, PermissionDenied, AuthOldRevision (auth).
   */
  async revoke(req: LeaseRevokeRequest, creds?: Credentials): Promise<LeaseRevokeResponse> {
    return await this.#ctx.proposeAs<LeaseRevokeResponse>(creds, {
      type: "lease_revoke",
      lease_revoke: { ID: req.ID ?? 0n },
    });
  }

  /**
   * One etcd LeaseKeepAlive request: the lease expires its full TTL from
   * now; the answer carries that TTL, or none (0) for an unknown or expired
   * lease, as etcd answers it.
   */
  async keepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    const ID = req.ID ?? 0n;
    const ttl = await this.#ctx.proposer.renewLease(ID);
    return { header: await this.#header(), ID, TTL: ttl ?? 0 };
  }

  /**
   * etcd LeaseTimeToLive: whole seconds left (truncated), the granted TTL
   * and, with `keys`, the attached keys; TTL -1 for an unknown lease.
   * While auth is on, the caller needs READ on every attached key, keys
   * asked for or not (etcd's checkLeaseTimeToLive, the fix of
   * CVE-2023-32082 in later etcd releases; etcd 3.4.23 checks nothing).
   *
   * @throws {EtcdError} InvalidAuthToken, UserEmpty, PermissionDenied,
   *   AuthOldRevision (auth).
   */
  async timeToLive(
    req: LeaseTimeToLiveRequest,
    creds?: Credentials,
  ): Promise<LeaseTimeToLiveResponse> {
    const ID = req.ID ?? 0n;
    const info = await this.#ctx.caller(creds);
    const guarded = this.#ctx.auth().enabled;
    if (guarded && info === undefined) throw Errors.UserEmpty();
    const ttl = await this.#ctx.proposer.leaseTimeToLive(ID, guarded || (req.keys ?? false));
    const header = await this.#header();
    if (ttl === undefined) return { header, ID, TTL: -1, grantedTTL: 0, keys: [] };
    if (guarded) {
      this.#ctx.authorize(info, (store, ai) => {
        if (ai === undefined) return Errors.UserEmpty();
        for (const key of ttl.keys) {
          const denied = opPermission(store, ai, key, undefined, "READ");
          if (denied !== undefined) return denied;
        }
        return undefined;
      });
      if (!req.keys) ttl.keys = [];
    }
    return { header, ID, ...ttl };
  }

  /** etcd LeaseLeases: every lease ID. */
  async leases(): Promise<LeaseLeasesResponse> {
    const ids = await this.#ctx.proposer.leaseIds();
    return { header: await this.#header(), leases: ids.map((ID) => ({ ID })) };
  }
}
