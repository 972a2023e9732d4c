/**
 * What etcd's lock and election services are built from (etcd 3.4 builds
 * them on clientv3/concurrency: a Session's lease, a key per holder named
 * `<name>/<lease ID in hex>`, waiting for the deletion of every older key),
 * here over this member's own service layer: every read, write and watch
 * goes through the KV, Watch and Lease services, the code paths a client's
 * requests take, so locks and elections add nothing to the log.
 *
 * @module
 */
import type {
  Compare,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
} from "../../core/api/types.ts";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import type { KVServer } from "./kv.ts";
import type { Credentials } from "./context.ts";
import type { LeaseServer } from "./lease.ts";
import type { WatchServer, WatchSession } from "./watch.ts";

/**
 * TTL in seconds of the lease granted for a lock or campaign asked with
 * lease 0 (clientv3/concurrency's `defaultSessionTTL`). Nothing keeps it
 * alive, as in etcd: the key goes when the lease ends.
 */
export const SESSION_TTL_SECONDS = 60;

/** The services a lock or an election runs on. */
export interface ConcurrencyServices {
  /** etcd's KV service. */
  kv: Pick<KVServer, "range" | "txn" | "deleteRange">;
  /** This thread's Watch service. */
  watch: Pick<WatchServer, "open">;
  /** etcd's Lease service. */
  lease: Pick<LeaseServer, "grant">;
}

/** A member's KV, Watch and Lease services, as the Lock and Election services are built on. */
export interface MemberServices {
  /** etcd's KV service. */
  kv: KVServer;
  /** This thread's Watch service. */
  watch: WatchServer;
  /** etcd's Lease service. */
  lease: LeaseServer;
}

/**
 * The services as one caller uses them: every request carries `creds`, so
 * a lock or an election needs the permissions its own requests need (as
 * etcd's v3lock and v3election, clients of the server with the caller's
 * token).
 */
export function asCaller(svc: MemberServices, creds: Credentials | undefined): ConcurrencyServices {
  return {
    kv: {
      range: (req) => svc.kv.range(req, creds),
      txn: (req) => svc.kv.txn(req, creds),
      deleteRange: (req) => svc.kv.deleteRange(req, creds),
    },
    watch: { open: () => svc.watch.open(creds) },
    lease: { grant: (req) => svc.lease.grant(req, creds) },
  };
}

const encoder = new TextEncoder();

/** The empty value lock keys hold. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The lease a request runs under, as concurrency.NewSession picks it: `lease`
 * itself, or for 0 a new lease of {@linkcode SESSION_TTL_SECONDS}. A lease
 * that does not exist is not checked here: the write that attaches it fails.
 *
 * @throws {EtcdError} the grant's errors.
 */
export async function sessionLease(
  lease: ConcurrencyServices["lease"],
  id: bigint,
): Promise<bigint> {
  if (id !== 0n) return id;
  const granted = await lease.grant({ TTL: SESSION_TTL_SECONDS, ID: 0n });
  return granted.ID;
}

/** `prefix` followed by `/` (the keys of a lock or an election are under it). */
export function keyPrefix(name: Uint8Array): Uint8Array {
  const out = new Uint8Array(name.length + 1);
  out.set(name);
  out[name.length] = 0x2f;
  return out;
}

/** A holder's key: `pfx` then the lease ID in lowercase hex (Go's `%x`). */
export function leaseKey(pfx: Uint8Array, lease: bigint): Uint8Array {
  const hex = encoder.encode(lease.toString(16));
  const out = new Uint8Array(pfx.length + hex.length);
  out.set(pfx);
  out.set(hex, pfx.length);
  return out;
}

/**
 * The end of the range of keys starting with `prefix` (clientv3's
 * `GetPrefixRangeEnd`): the prefix with its last byte below 0xff
 * incremented and the rest dropped; `\0` (every key) when there is none.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** The range of the first-created key under `pfx` (clientv3's `WithFirstCreate`). */
export function firstCreated(pfx: Uint8Array): RangeRequest {
  return {
    key: pfx,
    range_end: prefixEnd(pfx),
    sort_target: "CREATE",
    sort_order: "ASCEND",
    limit: 1,
  };
}

/** A compare that holds while `key`'s create revision is `rev` (0: the key does not exist). */
export function createdAt(key: Uint8Array, rev: number): Compare {
  return { result: "EQUAL", target: "CREATE", key, create_revision: rev };
}

/** The range response of a txn response op. */
export function rangeOf(op: ResponseOp | undefined): RangeResponse {
  invariant(op !== undefined && "response_range" in op, "the txn op answered is a range");
  return op.response_range;
}

/** Whether two byte strings are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * An error as etcd's lock and election services return it: they reach the
 * KV and Lease services through an in-process client, which hands back
 * etcd's errors as plain Go errors, so every one of them reaches the
 * caller as gRPC Unknown (HTTP 500) with its message unchanged.
 */
export function clientError(err: unknown): unknown {
  if (err instanceof EtcdError && err.code !== GrpcCode.Unknown) {
    return new EtcdError(err.message, GrpcCode.Unknown);
  }
  return err;
}

/**
 * Deletions of keys, seen through one stream of this thread's Watch service
 * (each watch sees only deletions). Closes when `signal` aborts.
 */
export class DeleteWatch {
  readonly #session: WatchSession;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  readonly #canceled = new Set<number>();
  #nextId = 1;

  /** A stream of `watch`; `signal` ends it (then {@linkcode DeleteWatch.next} throws `context canceled`). */
  constructor(watch: ConcurrencyServices["watch"], signal?: AbortSignal) {
    this.#session = watch.open();
    this.#signal = signal;
    this.#onAbort = () => this.#session.close();
    signal?.addEventListener("abort", this.#onAbort);
    if (signal?.aborted) this.#session.close();
  }

  /** Watch `key` for its deletion from `revision` (inclusive); resolves with the watch's ID. */
  async add(key: Uint8Array, revision: number): Promise<number> {
    invariant(revision > 0, "a delete watch starts at a revision");
    const id = this.#nextId++;
    await this.#session.request({
      create_request: { key, start_revision: revision, watch_id: id, filters: ["NOPUT"] },
    });
    return id;
  }

  /** Stop watch `id` (a deletion it saw later is not reported). */
  async cancel(id: number): Promise<void> {
    this.#canceled.add(id);
    await this.#session.request({ cancel_request: { watch_id: id } });
  }

  /**
   * The ID of the next watch that sees its key deleted.
   *
   * @throws {EtcdError} `context canceled` once the signal aborted;
   *   `etcdserver: server stopped` when the stream ended otherwise;
   *   `etcdserver: mvcc: required revision has been compacted` when a
   *   watch's revision is compacted.
   */
  async next(): Promise<number> {
    for (;;) {
      const r = await this.#session.next();
      if (r === undefined) throw this.#signal?.aborted ? Errors.Canceled() : Errors.Stopped();
      if (this.#canceled.has(r.watch_id)) continue;
      if (r.canceled) {
        if (r.compact_revision) throw Errors.Compacted();
        throw new EtcdError(r.cancel_reason || "lost watcher waiting for delete", GrpcCode.Unknown);
      }
      if (r.events?.some((ev) => ev.type === "DELETE")) return r.watch_id;
    }
  }

  /** End the stream and its watches. */
  close(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#session.close();
  }
}

/** The key a waiter holds its place with, watched while it waits. */
export interface OwnKey {
  /** The key. */
  key: Uint8Array;
  /** A revision at which the key was known to exist; its deletion after it ends the wait. */
  revision: number;
  /** The error the wait fails with when the key is deleted. */
  error: () => EtcdError;
}

/**
 * etcd's `waitDeletes`: wait until no key under `pfx` has a create revision
 * ≤ `maxCreateRev`, watching one key at a time, the newest of them (the
 * waiter's predecessor), from the revision it was read at. Resolves with
 * the header of the read that found none, and whether it had to wait.
 * While it waits, `own` is watched too: its deletion (its lease ended)
 * fails the wait at once with `own.error()`.
 *
 * @throws {EtcdError} `own.error()`; `context canceled` when `signal`
 *   aborts; the reads' errors.
 */
export async function waitDeletes(
  svc: ConcurrencyServices,
  pfx: Uint8Array,
  maxCreateRev: number,
  own: OwnKey,
  signal?: AbortSignal,
): Promise<{ header: ResponseHeader; waited: boolean }> {
  invariant(maxCreateRev > 0, "waiters wait for keys created before their own");
  const newestBefore: RangeRequest = {
    key: pfx,
    range_end: prefixEnd(pfx),
    sort_target: "CREATE",
    sort_order: "DESCEND",
    limit: 1,
    max_create_revision: maxCreateRev,
  };
  let resp = await svc.kv.range(newestBefore);
  if (resp.kvs.length === 0) return { header: resp.header, waited: false };
  const deletes = new DeleteWatch(svc.watch, signal);
  try {
    const ownId = await deletes.add(own.key, own.revision + 1);
    while (resp.kvs.length > 0) {
      const id = await deletes.add(resp.kvs[0].key, resp.header.revision);
      for (;;) {
        const deleted = await deletes.next();
        if (deleted === ownId) throw own.error();
        if (deleted === id) break;
      }
      await deletes.cancel(id);
      resp = await svc.kv.range(newestBefore);
    }
    return { header: resp.header, waited: true };
  } finally {
    deletes.close();
  }
}
