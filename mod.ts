/**
 * cairn: a strongly consistent, etcd v3-compatible key-value store for Deno.
 *
 * - {@linkcode openStore}: the store embedded in a Deno app, no server (the
 *   same MVCC store, log and apply path a cairn server runs).
 * - {@linkcode Client}: a client of cairn's (or etcd's) v3 JSON gateway,
 *   with the same method shapes.
 * - {@linkcode Lease} and {@linkcode Session}: leases kept alive at TTL/3
 *   over either of them (clientv3's Lease and concurrency.Session).
 * - Request/response types (etcd's KV messages) and {@linkcode EtcdError}.
 *
 * @example
 * ```ts
 * import { openStore } from "./mod.ts";
 * const store = await openStore("./my.cairn");
 * await store.put("config/mode", "fast");
 * const { kvs } = await store.get("config/", { prefix: true });
 * await store.close();
 * ```
 *
 * @module
 */
import type {
  AlarmRequest,
  AlarmResponse,
  CampaignRequest,
  CampaignResponse,
  CompactionRequest,
  CompactionResponse,
  DefragmentResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKVRequest,
  HashKVResponse,
  LeaderRequest,
  LeaderResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  LockRequest,
  LockResponse,
  ProclaimRequest,
  ProclaimResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResignRequest,
  ResignResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  UnlockRequest,
  UnlockResponse,
  WatchBatch,
  WatchOptions,
} from "./core/api/types.ts";
import { Errors, EtcdError, GrpcCode } from "./core/errors.ts";
import type { EtcdServer } from "./server/etcdserver/mod.ts";
import { openMember } from "./server/member.ts";
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS } from "./server/config.ts";
import { memberId } from "./server/ids.ts";
import {
  applyRangeOptions,
  type Bytes,
  type DeleteOptions,
  type GetOptions,
  type PutOptions,
  toBytes,
} from "./client/mod.ts";
import { watchCanceledError } from "./client/watch.ts";

export * from "./core/api/types.ts";
export { Errors, EtcdError, GrpcCode };
export {
  AuthenticationError,
  type Bytes,
  Client,
  type ClientOptions,
  type DeleteOptions,
  type GetOptions,
  type PutOptions,
} from "./client/mod.ts";
export type { CallOptions, HealthResponse, VersionResponse } from "./client/mod.ts";
export {
  type Clock,
  DEFAULT_SESSION_TTL,
  GrantedLease,
  KeepAlive,
  type KeepAliveOptions,
  Lease,
  type LeaseApi,
  type LeaseOptions,
  Session,
  type SessionOptions,
  systemClock,
} from "./client/lease.ts";
export { type ConcurrencyApi, Election, Mutex, type WaitOptions } from "./client/concurrency.ts";
export {
  isWatchCanceled,
  type WatchCallOptions,
  type WatchCanceledError,
  Watcher,
} from "./client/mod.ts";

/** Options of {@linkcode openStore}. */
export interface StoreOptions {
  /** Ops or compares per txn level, at most (etcd's --max-txn-ops). Default 128. */
  maxTxnOps?: number;
  /**
   * Largest write, in bytes of its protobuf encoding as etcd proposes it
   * (etcd's --max-request-bytes); larger ones fail with
   * `etcdserver: request is too large`. Default 1572864 (1.5 MiB).
   */
  maxRequestBytes?: number;
  /**
   * etcd's --quota-backend-bytes: writes that would take the store past
   * this many bytes in use raise the NOSPACE alarm and fail with
   * `etcdserver: mvcc: database space exceeded`. 0 (default) = 2 GiB;
   * negative = no quota.
   */
  quotaBackendBytes?: number;
}

/**
 * An embedded cairn store: etcd's KV API in-process. Every write is durable
 * (fsync'd) when its promise resolves; concurrent writes share one commit.
 * Reads see every write that has resolved. Requests go through the same
 * service layer as a server's (server/etcdserver/): the same checks, limits
 * and answers as the JSON gateway. Errors are {@linkcode EtcdError}s with
 * etcd's messages and gRPC codes.
 */
export class Store {
  #service: EtcdServer;
  #close: () => Promise<void>;

  /** Use {@linkcode openStore}. */
  constructor(service: EtcdServer, close: () => Promise<void>) {
    this.#service = service;
    this.#close = close;
  }

  /**
   * etcd Range with a full request.
   * @throws {EtcdError} key is not provided; required revision has been compacted / is a future revision.
   */
  range(req: RangeRequest): Promise<RangeResponse> {
    return this.#service.range(req);
  }

  /**
   * Read a key, or a range with `range_end`, `prefix` or `fromKey`, and the
   * other RangeRequest fields (`limit`, `revision`, sorting, filters).
   */
  get(key: Bytes, options: GetOptions = {}): Promise<RangeResponse> {
    const { prefix, fromKey, range_end, endpoint: _e, timeout: _t, signal: _s, ...fields } =
      options;
    return this.#service.range({
      ...fields,
      ...applyRangeOptions(toBytes(key), { prefix, fromKey, range_end }),
    });
  }

  /**
   * etcd Put: a full PutRequest, or `put(key, value, options)`.
   * Resolves with the revision of the write once it is durable.
   * @throws {EtcdError} key is not provided; value/lease is provided (with ignore_value/ignore_lease);
   *   request is too large (over `maxRequestBytes`); requested lease not found; key not found
   *   (ignore_value/ignore_lease on a missing key).
   */
  put(req: PutRequest): Promise<PutResponse>;
  /** Put `value` at `key`; `options` holds the other PutRequest fields (`lease`, `prev_kv`, …). */
  put(key: Bytes, value: Bytes, options?: PutOptions): Promise<PutResponse>;
  put(a: PutRequest | Bytes, value?: Bytes, options: PutOptions = {}): Promise<PutResponse> {
    if (typeof a === "string" || a instanceof Uint8Array) {
      const { endpoint: _e, timeout: _t, signal: _s, ...fields } = options;
      return this.#service.put({ ...fields, key: toBytes(a), value: toBytes(value ?? "") });
    }
    return this.#service.put(a);
  }

  /**
   * etcd DeleteRange with a full request.
   * @throws {EtcdError} key is not provided; request is too large.
   */
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.#service.deleteRange(req);
  }

  /** Delete a key, or a range with `range_end`, `prefix` or `fromKey`; `prev_kv` returns them. */
  delete(key: Bytes, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const { key: k, range_end } = applyRangeOptions(toBytes(key), options);
    const req: DeleteRangeRequest = { key: k };
    if (range_end !== undefined) req.range_end = range_end;
    if (options.prev_kv) req.prev_kv = true;
    return this.#service.deleteRange(req);
  }

  /**
   * etcd Txn: compares, then the success or failure ops, in one revision.
   * @throws {EtcdError} too many operations in txn request; duplicate key given in txn request;
   *   request is too large (a txn that is not all ranges); and the ops' errors.
   */
  txn(req: TxnRequest): Promise<TxnResponse> {
    return this.#service.txn(req);
  }

  /**
   * etcd Compact: history below `revision` becomes unreadable (the revision
   * itself stays readable); `physical` waits until it is removed from disk.
   * @throws {EtcdError} required revision has been compacted / is a future revision.
   */
  compact(req: CompactionRequest | number): Promise<CompactionResponse> {
    return this.#service.compact(typeof req === "number" ? { revision: req } : req);
  }

  /** etcd Maintenance.Status: revision, db size in bytes, raft index and term, raised alarms in `errors`. */
  status(): Promise<StatusResponse> {
    return this.#service.status();
  }

  /**
   * etcd Maintenance.Alarm: GET lists the raised alarms (NOSPACE after a
   * write past the quota, CORRUPT), ACTIVATE raises one, DEACTIVATE clears
   * it. See the server's MaintenanceServer.alarm.
   */
  alarm(req: AlarmRequest): Promise<AlarmResponse> {
    return this.#service.maintenance.alarm(req);
  }

  /**
   * etcd Maintenance.Defragment: shrink the store's file to what its data
   * needs (a compacted copy swapped in; reads and writes wait only for the
   * swap). Resolves when done.
   */
  defragment(): Promise<DefragmentResponse> {
    return this.#service.maintenance.defragment();
  }

  /**
   * etcd Maintenance.HashKV: a CRC-32 of the key space's history up to
   * `revision` (0: the current one).
   * @throws {EtcdError} required revision has been compacted / is a future revision.
   */
  hashKV(req: HashKVRequest = {}): Promise<HashKVResponse> {
    return this.#service.maintenance.hashKV(req);
  }

  /**
   * etcd Watch: the changes of `key` (or of a range, with `prefix`,
   * `fromKey` or `range_end`) from `startRevision` (default: the revision
   * after the current one), as batches of events in revision order; each
   * revision's events arrive together, none twice, none skipped. A batch
   * with no events is a progress notification (`progressNotify`): every
   * change up to its revision was delivered. The iteration ends without
   * error when `signal` aborts, the loop breaks, or the store closes.
   *
   * ```ts
   * for await (const { revision, events } of store.watch("config/", { prefix: true })) {
   *   for (const ev of events) console.log(revision, ev.type, ev.kv.key);
   * }
   * ```
   *
   * @throws {WatchCanceledError} when the server cancels the watch (as
   *   `Client.watch`): `etcdserver: mvcc: required revision has been
   *   compacted` (OutOfRange) when `startRevision` is compacted, with the
   *   compacted revision in `compactRevision`; `mvcc: watcher range is
   *   empty` for a range whose end is not after its key.
   */
  watch(key: Bytes, options: WatchOptions = {}): AsyncIterable<WatchBatch> {
    const range = applyRangeOptions(toBytes(key), options);
    const service = this.#service;
    const signal = options.signal;
    return {
      async *[Symbol.asyncIterator]() {
        if (signal?.aborted) return;
        const session = service.openWatch();
        const stop = () => session.close();
        signal?.addEventListener("abort", stop);
        try {
          await session.request({
            create_request: {
              key: range.key,
              range_end: range.range_end,
              start_revision: options.startRevision ?? 0,
              prev_kv: options.prevKv ?? false,
              filters: options.filters ?? [],
              progress_notify: options.progressNotify ?? false,
            },
          });
          for (;;) {
            const r = await session.next();
            if (r === undefined) return;
            // A canceled watch ends with the error the Client gives for it.
            if (r.canceled) throw watchCanceledError(r);
            if (r.created) continue;
            yield { header: r.header, revision: r.header.revision, events: r.events ?? [] };
          }
        } finally {
          signal?.removeEventListener("abort", stop);
          session.close();
        }
      },
    };
  }

  /**
   * etcd LeaseGrant: a lease of `TTL` seconds (raised to the 2 s minimum),
   * with a random ID unless `ID` is given. Attach keys with put's `lease`.
   *
   * @throws {EtcdError} `etcdserver: lease already exists`; `etcdserver: too large lease TTL`.
   */
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.#service.lease.grant(req);
  }

  /**
   * etcd LeaseRevoke: the lease and every key attached to it go, in one revision.
   *
   * @throws {EtcdError} `etcdserver: requested lease not found`.
   */
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.#service.lease.revoke(req);
  }

  /** etcd LeaseKeepAlive, once: the lease's full TTL again (TTL 0: the lease does not exist). */
  leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    return this.#service.lease.keepAlive(req);
  }

  /** etcd LeaseTimeToLive: whole seconds left (-1: no such lease), the granted TTL, the keys with `keys`. */
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    return this.#service.lease.timeToLive(req);
  }

  /** etcd LeaseLeases: every lease's ID. */
  leaseLeases(): Promise<LeaseLeasesResponse> {
    return this.#service.lease.leases();
  }

  // etcd's Lock and Election services (v3lock, v3election).

  /**
   * etcd Lock: resolves once lock `name` is held, with the key it is held
   * by (`name/<lease hex>`, attached to `lease`; 0 grants a 60 s lease).
   * The key's create revision is a fencing token. `signal` gives up the
   * wait (the key is deleted).
   *
   * @throws {EtcdError} (gRPC Unknown, as etcd) `etcdserver: requested lease
   *   not found`; `mutex: session is expired` when the lease ends first.
   */
  lock(req: LockRequest, signal?: AbortSignal): Promise<LockResponse> {
    return this.#service.lock.lock(req, signal);
  }

  /** etcd Unlock: deletes the key Lock answered with. */
  unlock(req: UnlockRequest): Promise<UnlockResponse> {
    return this.#service.lock.unlock(req);
  }

  /**
   * etcd Campaign: resolves once elected in election `name`, with the
   * leader key to proclaim and resign with. `signal` gives up (resigns).
   *
   * @throws {EtcdError} (gRPC Unknown) `etcdserver: requested lease not
   *   found`; `election: not leader` when the lease ends first.
   */
  campaign(req: CampaignRequest, signal?: AbortSignal): Promise<CampaignResponse> {
    return this.#service.election.campaign(req, signal);
  }

  /**
   * etcd Proclaim: the leader's new value.
   * @throws {EtcdError} `election: not leader`; `"leader" field must be provided`.
   */
  proclaim(req: ProclaimRequest): Promise<ProclaimResponse> {
    return this.#service.election.proclaim(req);
  }

  /**
   * etcd Leader: the leader's key-value.
   * @throws {EtcdError} `election: no leader`.
   */
  leader(req: LeaderRequest): Promise<LeaderResponse> {
    return this.#service.election.leader(req);
  }

  /** etcd Observe: the leader's key-value now and at each change, until `signal` aborts. */
  observe(req: LeaderRequest, signal?: AbortSignal): AsyncIterable<LeaderResponse> {
    return this.#service.election.observe(req, signal);
  }

  /** etcd Resign: deletes the leader's key if it is still the one elected. */
  resign(req: ResignRequest): Promise<ResignResponse> {
    return this.#service.election.resign(req);
  }

  /** Finish in-flight writes and close the store. */
  close(): Promise<void> {
    return this.#close();
  }
}

/**
 * Open (creating if needed) an embedded store whose data lives in the
 * directory `path` (the same layout as a server's --data-dir, so a server can
 * later be started on it). The store holds the directory's exclusive lock
 * until {@linkcode Store.close}: a server or another store on the same
 * directory, in this process or another, fails to open meanwhile.
 *
 * @throws {Error} `Cannot open data dir …: it is locked by process …` when
 *   the directory is in use; other errors when it cannot be created or opened.
 */
export async function openStore(path: string, options: StoreOptions = {}): Promise<Store> {
  const id = memberId(["http://localhost:2380"], "etcd-cluster");
  const m = await openMember(path, { memberId: id, clusterId: id }, {
    maxTxnOps: options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS,
    maxRequestBytes: options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    quotaBackendBytes: options.quotaBackendBytes ?? 0,
  });
  return new Store(m.service, () => m.close());
}
