/**
 * etcd's Lock service (v3lock: `etcdserver/api/v3lock`, built on
 * clientv3/concurrency's Mutex), once for every transport, over the
 * member's KV, Watch and Lease services (concurrency.ts).
 *
 * A lock named `name` is held by the key under `name/` with the lowest
 * create revision. Lock puts the caller's key `name/<lease ID in hex>`
 * (attached to the lease, so it goes when the lease ends) unless it exists,
 * then waits until every key under `name/` created before it is deleted.
 * The key's create revision orders the waiters and is the holder's fencing
 * token: it only grows from one holder to the next.
 *
 * @module
 */
import type {
  LockRequest,
  LockResponse,
  UnlockRequest,
  UnlockResponse,
} from "../../core/api/types.ts";
import { Errors } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import {
  asCaller,
  clientError,
  type ConcurrencyServices,
  createdAt,
  EMPTY,
  firstCreated,
  keyPrefix,
  leaseKey,
  type MemberServices,
  rangeOf,
  sessionLease,
  waitDeletes,
} from "./concurrency.ts";
import type { Credentials } from "./context.ts";

/** etcd's Lock service. */
export class LockServer {
  readonly #base: MemberServices;

  /** The Lock service over the member's KV, Watch and Lease services. */
  constructor(svc: MemberServices) {
    this.#base = svc;
  }

  /**
   * etcd Lock: resolves once the caller holds lock `name`, with the key it
   * holds it by and the header of the read that found it the oldest. Its
   * lease is `lease` (0: a new 60 s lease nobody keeps alive, as etcd
   * grants). A key that already exists for the lease is reused (a lock
   * asked for twice under one lease is held once). When `signal` aborts
   * (the client went away), the key is deleted and the wait ends.
   *
   * Unlike etcd 3.4, whose waiter goes on waiting after its lease ended and
   * is then answered as the holder although its key is gone, a waiter whose
   * key is deleted fails at once with etcd 3.5's `mutex: session is
   * expired`, and no Lock is answered unless its key still exists.
   *
   * @throws {EtcdError} every error as gRPC Unknown (HTTP 500), etcd's
   *   message kept: `etcdserver: requested lease not found`, `mutex:
   *   session is expired`, the KV service's errors.
   */
  async lock(req: LockRequest, signal?: AbortSignal, creds?: Credentials): Promise<LockResponse> {
    try {
      return await this.#lock(asCaller(this.#base, creds), req, signal);
    } catch (err) {
      throw clientError(err);
    }
  }

  async #lock(
    svc: ConcurrencyServices,
    req: LockRequest,
    signal: AbortSignal | undefined,
  ): Promise<LockResponse> {
    if (signal?.aborted) throw Errors.Canceled();
    const kv = svc.kv;
    const lease = await sessionLease(svc.lease, req.lease ?? 0n);
    const pfx = keyPrefix(req.name);
    const key = leaseKey(pfx, lease);
    const owner = { request_range: firstCreated(pfx) };
    const resp = await kv.txn({
      compare: [createdAt(key, 0)],
      success: [{ request_put: { key, value: EMPTY, lease } }, owner],
      failure: [{ request_range: { key } }, owner],
    });
    let myRev = resp.header.revision;
    if (!resp.succeeded) {
      const mine = rangeOf(resp.responses[0]).kvs;
      invariant(mine.length === 1, "a key whose create revision is not 0 exists");
      myRev = mine[0].create_revision;
    }
    const first = rangeOf(resp.responses[1]).kvs;
    if (first.length === 0 || first[0].create_revision === myRev) {
      return { header: resp.header, key };
    }
    // The key's deletion ends the wait: nothing is left to delete then.
    let expired = false;
    const own = {
      key,
      revision: resp.header.revision,
      error: () => {
        expired = true;
        return Errors.SessionExpired();
      },
    };
    let check;
    try {
      await waitDeletes(svc, pfx, myRev - 1, own, signal);
      check = await kv.range({ key });
    } catch (err) {
      // A waiter that gives up leaves the queue (etcd: Mutex.Unlock).
      if (!expired) await kv.deleteRange({ key }).catch(() => {});
      throw err;
    }
    // Held only while the key exists (etcd 3.5's check).
    if (check.kvs.length === 0) throw Errors.SessionExpired();
    return { header: check.header, key };
  }

  /**
   * etcd Unlock: deletes `key` (the key Lock answered with), so the next
   * waiter gets the lock; resolves with the deletion's header.
   *
   * @throws {EtcdError} as gRPC Unknown: `etcdserver: key is not provided`
   *   for an empty key, the KV service's errors.
   */
  async unlock(req: UnlockRequest, creds?: Credentials): Promise<UnlockResponse> {
    try {
      const resp = await asCaller(this.#base, creds).kv.deleteRange({ key: req.key });
      return { header: resp.header };
    } catch (err) {
      throw clientError(err);
    }
  }
}
