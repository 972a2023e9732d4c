/**
 * etcd's Election service (v3election: `etcdserver/api/v3election`, built
 * on clientv3/concurrency's Election), once for every transport, over the
 * member's KV, Watch and Lease services (concurrency.ts).
 *
 * The leader of election `name` is the key under `name/` with the lowest
 * create revision; its value is what the leader proclaims. A candidate's
 * key is `name/<lease ID in hex>`, attached to its lease; leadership holds
 * while that key keeps the create revision it was elected with
 * (`LeaderKey.rev`).
 *
 * @module
 */
import type {
  CampaignRequest,
  CampaignResponse,
  KeyValue,
  LeaderKey,
  LeaderRequest,
  LeaderResponse,
  ProclaimRequest,
  ProclaimResponse,
  ResignRequest,
  ResignResponse,
  ResponseHeader,
  TxnResponse,
} from "../../core/api/types.ts";
import { Errors } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import {
  asCaller,
  bytesEqual,
  clientError,
  type ConcurrencyServices,
  createdAt,
  EMPTY,
  firstCreated,
  keyPrefix,
  leaseKey,
  type MemberServices,
  prefixEnd,
  rangeOf,
  sessionLease,
  waitDeletes,
} from "./concurrency.ts";
import type { Credentials } from "./context.ts";

/** Run `fn`, handing back its errors as etcd's election service does (gRPC Unknown). */
async function asClient<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw clientError(err);
  }
}

/** etcd's Election service. */
export class ElectionServer {
  readonly #base: MemberServices;

  /** The Election service over the member's KV, Watch and Lease services. */
  constructor(svc: MemberServices) {
    this.#base = svc;
  }

  /**
   * etcd Campaign: puts the candidate's key `name/<lease hex>` with `value`
   * unless it exists (an existing key with another value is proclaimed
   * with `value`), then waits until every key under `name/` created before
   * it is deleted. Resolves with the header of the campaign's first write
   * (etcd's) and `leader{name, key, rev, lease}`, `rev` being the key's
   * create revision. `lease` 0 is a new 60 s lease nobody keeps alive.
   * When `signal` aborts (the client went away), the candidate resigns.
   *
   * Unlike etcd 3.4, which answers a candidate whose key was deleted while
   * it waited (its lease ended) as elected, such a campaign fails at once
   * with `election: not leader`.
   *
   * @throws {EtcdError} every error as gRPC Unknown (HTTP 500), etcd's
   *   message kept: `etcdserver: requested lease not found`, `election: not
   *   leader`, the KV service's errors.
   */
  campaign(
    req: CampaignRequest,
    signal?: AbortSignal,
    creds?: Credentials,
  ): Promise<CampaignResponse> {
    return asClient(() => this.#campaign(asCaller(this.#base, creds), req, signal));
  }

  async #campaign(
    svc: ConcurrencyServices,
    req: CampaignRequest,
    signal?: AbortSignal,
  ): Promise<CampaignResponse> {
    if (signal?.aborted) throw Errors.Canceled();
    const kv = svc.kv;
    const lease = await sessionLease(svc.lease, req.lease ?? 0n);
    const pfx = keyPrefix(req.name);
    const key = leaseKey(pfx, lease);
    const value = req.value ?? EMPTY;
    const resp = await kv.txn({
      compare: [createdAt(key, 0)],
      success: [{ request_put: { key, value, lease } }],
      failure: [{ request_range: { key } }],
    });
    const leader: LeaderKey = { name: req.name, key, rev: resp.header.revision, lease };
    if (!resp.succeeded) {
      const mine = rangeOf(resp.responses[0]).kvs;
      invariant(mine.length === 1, "a key whose create revision is not 0 exists");
      leader.rev = mine[0].create_revision;
      if (!bytesEqual(mine[0].value, value)) {
        try {
          await this.#proclaim(svc, leader, value);
        } catch (err) {
          await this.#resign(svc, leader).catch(() => {});
          throw err;
        }
      }
    }
    let waited;
    try {
      const own = { key, revision: resp.header.revision, error: Errors.ElectionNotLeader };
      ({ waited } = await waitDeletes(svc, pfx, leader.rev - 1, own, signal));
    } catch (err) {
      // A candidate whose client went away resigns (etcd: Election.Resign).
      if (signal?.aborted) await this.#resign(svc, leader).catch(() => {});
      throw err;
    }
    if (waited) {
      // Elected only while the key is still the one campaigned with.
      const check = await kv.range({ key });
      if (check.kvs[0]?.create_revision !== leader.rev) throw Errors.ElectionNotLeader();
    }
    return { header: resp.header, leader };
  }

  /**
   * etcd Proclaim: the leader's key gets `value`, if it still has the
   * create revision `leader.rev` (its lease is `leader.lease`; 0 grants a
   * new one, as etcd does). Resolves with the update's header.
   *
   * @throws {EtcdError} as gRPC Unknown: `"leader" field must be provided`;
   *   `election: not leader` when the key is gone or was re-created; the
   *   KV service's errors (`etcdserver: requested lease not found`).
   */
  proclaim(req: ProclaimRequest, creds?: Credentials): Promise<ProclaimResponse> {
    const svc = asCaller(this.#base, creds);
    return asClient(async () => {
      const leader = req.leader;
      if (leader === undefined) throw Errors.MissingLeaderKey();
      const lease = await sessionLease(svc.lease, leader.lease);
      const resp = await this.#proclaim(svc, { ...leader, lease }, req.value ?? EMPTY);
      return { header: resp.header };
    });
  }

  async #proclaim(
    svc: ConcurrencyServices,
    leader: LeaderKey,
    value: Uint8Array,
  ): Promise<TxnResponse> {
    const resp = await svc.kv.txn({
      compare: [createdAt(leader.key, leader.rev)],
      success: [{ request_put: { key: leader.key, value, lease: leader.lease } }],
      failure: [],
    });
    if (!resp.succeeded) throw Errors.ElectionNotLeader();
    return resp;
  }

  /**
   * etcd Leader: the current leader's key-value (the key under `name/`
   * with the lowest create revision) and the read's header.
   *
   * @throws {EtcdError} as gRPC Unknown: `election: no leader`; the KV
   *   service's errors.
   */
  leader(req: LeaderRequest, creds?: Credentials): Promise<LeaderResponse> {
    const svc = asCaller(this.#base, creds);
    return asClient(async () => {
      const resp = await svc.kv.range(firstCreated(keyPrefix(req.name)));
      if (resp.kvs.length === 0) throw Errors.ElectionNoLeader();
      return { header: resp.header, kv: resp.kvs[0] };
    });
  }

  /**
   * etcd Resign: deletes the leader's key if it still has the create
   * revision `leader.rev` (else nothing changes); resolves with the txn's
   * header either way.
   *
   * @throws {EtcdError} as gRPC Unknown: `"leader" field must be provided`;
   *   the KV service's errors.
   */
  resign(req: ResignRequest, creds?: Credentials): Promise<ResignResponse> {
    const svc = asCaller(this.#base, creds);
    return asClient(async () => {
      const leader = req.leader;
      if (leader === undefined) throw Errors.MissingLeaderKey();
      await sessionLease(svc.lease, leader.lease);
      const resp = await this.#resign(svc, leader);
      return { header: resp.header };
    });
  }

  #resign(svc: ConcurrencyServices, leader: LeaderKey): Promise<TxnResponse> {
    return svc.kv.txn({
      compare: [createdAt(leader.key, leader.rev)],
      success: [{ request_delete_range: { key: leader.key } }],
      failure: [],
    });
  }

  /**
   * etcd Observe: the leader's key-value now (or, with no leader, once
   * there is one), then again each time it changes: each update of the
   * leader's key, and each new leader once the key is deleted. Headers are
   * etcd's: the read's, the change's watch response's, or for a first
   * leader the revision of its put. The iteration ends, without an error
   * as in etcd, when `signal` aborts, a read fails or a watch is canceled
   * (its revision compacted).
   */
  async *observe(
    req: LeaderRequest,
    signal?: AbortSignal,
    creds?: Credentials,
  ): AsyncGenerator<LeaderResponse> {
    const svc = asCaller(this.#base, creds);
    const pfx = keyPrefix(req.name);
    const watch = svc.watch;
    while (!signal?.aborted) {
      let resp;
      try {
        resp = await svc.kv.range(firstCreated(pfx));
      } catch {
        return; // etcd's Observe ends its stream, without an error.
      }
      let header: ResponseHeader | undefined;
      let kv: KeyValue | undefined;
      if (resp.kvs.length > 0) {
        header = resp.header;
        kv = resp.kvs[0];
      } else {
        // No leader: the first put under the prefix is one.
        const found = await watchUntil(watch, signal, {
          key: pfx,
          range_end: prefixEnd(pfx),
          start_revision: resp.header.revision,
        }, (r) => {
          const put = r.events?.find((ev) => ev.type === "PUT");
          if (put !== undefined) {
            header = { ...r.header, revision: put.kv.mod_revision };
            kv = put.kv;
          }
          return put !== undefined;
        });
        if (!found) return;
      }
      invariant(header !== undefined && kv !== undefined, "a leader was found");
      yield { header, kv };
      // Its updates, until it is deleted.
      const updates: LeaderResponse[] = [];
      const session = watch.open();
      const stop = () => session.close();
      signal?.addEventListener("abort", stop);
      try {
        await session.request({
          create_request: { key: kv.key, start_revision: header.revision + 1 },
        });
        let deleted = false;
        while (!deleted) {
          const r = await session.next();
          if (r === undefined || r.canceled) return;
          for (const ev of r.events ?? []) {
            if (ev.type === "DELETE") {
              deleted = true;
              break;
            }
            updates.push({ header: r.header, kv: ev.kv });
          }
          while (updates.length > 0) yield updates.shift()!;
        }
      } finally {
        signal?.removeEventListener("abort", stop);
        session.close();
      }
    }
  }
}

/**
 * Watch from `create` until `found` accepts a response; false when the
 * watch ended first (`signal` aborted, the watch was canceled).
 */
async function watchUntil(
  watch: ConcurrencyServices["watch"],
  signal: AbortSignal | undefined,
  create: { key: Uint8Array; range_end: Uint8Array; start_revision: number },
  found: (r: { header: ResponseHeader; events?: { type: string; kv: KeyValue }[] }) => boolean,
): Promise<boolean> {
  const session = watch.open();
  const stop = () => session.close();
  signal?.addEventListener("abort", stop);
  try {
    if (signal?.aborted) return false;
    await session.request({ create_request: create });
    for (;;) {
      const r = await session.next();
      if (r === undefined || r.canceled) return false;
      if (found(r)) return true;
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    session.close();
  }
}
