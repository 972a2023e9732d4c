/**
 * etcd's KV semantics over a view (etcd's `applierV3backend`): range with
 * filters, sort and limit; put; delete range; txn; compaction. The server
 * calls these inside the apply step for writes, and on a read view for reads.
 *
 * @module
 */
import { goSort } from "../go_sort.ts";
import { Errors } from "../errors.ts";
import { compareBytes } from "./encoding.ts";
import { invariant } from "../invariant.ts";
import { rangeBound, type ReadView, WriteView } from "./view.ts";
import type {
  CompactionRequest,
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from "../api/types.ts";

/** Answers whether a lease exists (the lessor), for puts with a lease. */
export type LeaseLookup = (id: bigint) => boolean;

const EMPTY = new Uint8Array(0);

/** A header carrying only a revision, as etcd's applier produces it. */
export function revisionHeader(revision: number): ResponseHeader {
  return { cluster_id: 0n, member_id: 0n, revision, raft_term: 0 };
}

/**
 * A range request (etcd's `applierV3backend.Range`): filters on mod/create
 * revision, sort by target and order, `limit` with `more`; `count` is the
 * number of keys in the range before the limit and the filters.
 *
 * @throws {EtcdError} FutureRev / Compacted for an unreadable revision.
 */
export function applyRange(view: ReadView, r: RangeRequest): RangeResponse {
  const requestLimit = r.limit ?? 0;
  const sortOrder = r.sort_order ?? "NONE";
  const sortTarget = r.sort_target ?? "KEY";
  let limit = requestLimit;
  if (
    sortOrder !== "NONE" || r.min_mod_revision || r.max_mod_revision || r.min_create_revision ||
    r.max_create_revision
  ) {
    limit = 0; // fetch everything; filter, sort and truncate afterwards
  }
  if (limit > 0) limit++; // one extra tells whether there is more
  let order = sortOrder;
  if (sortTarget !== "KEY" && order === "NONE") order = "ASCEND";
  // etcd sorts before it drops values for keys_only: a value sort needs them.
  const sortByValue = order !== "NONE" && sortTarget === "VALUE";
  const rr = view.rangeKeys(r.key, rangeBound(r.range_end), {
    rev: r.revision,
    limit,
    countOnly: r.count_only,
    keysOnly: r.keys_only && !sortByValue,
  });
  let kvs = rr.kvs;
  const { max_mod_revision: maxMod, min_mod_revision: minMod } = r;
  const { max_create_revision: maxCreate, min_create_revision: minCreate } = r;
  if (maxMod) kvs = kvs.filter((kv) => kv.mod_revision <= maxMod);
  if (minMod) kvs = kvs.filter((kv) => kv.mod_revision >= minMod);
  if (maxCreate) kvs = kvs.filter((kv) => kv.create_revision <= maxCreate);
  if (minCreate) kvs = kvs.filter((kv) => kv.create_revision >= minCreate);

  if (order !== "NONE") {
    // Go's sort.Sort (not stable), so ties come out in etcd's order.
    const cmp = sorter(sortTarget);
    goSort(kvs, order === "ASCEND" ? (a, b) => cmp(a, b) < 0 : (a, b) => cmp(b, a) < 0);
  }
  if (r.keys_only && sortByValue) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
  let more = false;
  if (requestLimit > 0 && kvs.length > requestLimit) {
    kvs = kvs.slice(0, requestLimit);
    more = true;
  }
  return { header: revisionHeader(rr.rev), kvs, more, count: rr.count };
}

function sorter(target: string): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case "VERSION":
      return (a, b) => a.version - b.version;
    case "CREATE":
      return (a, b) => a.create_revision - b.create_revision;
    case "MOD":
      return (a, b) => a.mod_revision - b.mod_revision;
    case "VALUE":
      return (a, b) => compareBytes(a.value, b.value);
    default:
      return (a, b) => compareBytes(a.key, b.key);
  }
}

/**
 * Check a put against the state before it runs (etcd's `checkRequestPut`):
 * the lease must exist; ignore_value / ignore_lease need an existing key.
 *
 * @throws {EtcdError} LeaseNotFound, KeyNotFound.
 */
function checkPut(view: ReadView, p: PutRequest, leaseExists: LeaseLookup): void {
  const lease = p.lease ?? 0n;
  if (lease !== 0n && !leaseExists(lease)) throw Errors.LeaseNotFound();
  if (p.ignore_value || p.ignore_lease) {
    if (view.rangeKeys(p.key, undefined).kvs.length === 0) throw Errors.KeyNotFound();
  }
}

/**
 * A put (etcd's `applierV3backend.Put`).
 *
 * @throws {EtcdError} LeaseNotFound, KeyNotFound (ignore_value/ignore_lease
 *   on a missing key); nothing is written then.
 */
export function applyPut(view: WriteView, p: PutRequest, leaseExists: LeaseLookup): PutResponse {
  checkPut(view, p, leaseExists);
  return put(view, p);
}

function put(view: WriteView, p: PutRequest): PutResponse {
  let value = p.value ?? EMPTY;
  let lease = p.lease ?? 0n;
  let prev: KeyValue | undefined;
  if (p.ignore_value || p.ignore_lease || p.prev_kv) {
    prev = view.rangeKeys(p.key, undefined).kvs[0];
  }
  if (p.ignore_value || p.ignore_lease) {
    if (prev === undefined) throw Errors.KeyNotFound();
    if (p.ignore_value) value = prev.value;
    if (p.ignore_lease) lease = prev.lease;
  }
  const revision = view.put(p.key, value, lease);
  const resp: PutResponse = { header: revisionHeader(revision) };
  if (p.prev_kv && prev !== undefined) resp.prev_kv = prev;
  return resp;
}

/** A delete range (etcd's `applierV3backend.DeleteRange`). */
export function applyDeleteRange(view: WriteView, d: DeleteRangeRequest): DeleteRangeResponse {
  const end = rangeBound(d.range_end);
  const prev_kvs = d.prev_kv ? view.rangeKeys(d.key, end).kvs : [];
  const deleted = view.deleteRange(d.key, end);
  return { header: revisionHeader(view.rev()), deleted, prev_kvs };
}

/**
 * etcd 3.4's `isTxnReadonly`: true when every op of both branches is a range.
 * A nested txn counts as a write whatever it holds, as in etcd, so a txn
 * holding one is proposed (and gets the proposal-size limit) even when
 * nothing in it writes. The one read-only predicate: the service layer uses
 * it to serve a txn locally, {@linkcode applyTxn} to decide on the put checks.
 */
export function isTxnReadOnly(t: TxnRequest): boolean {
  for (const op of t.success) if (!("request_range" in op)) return false;
  for (const op of t.failure) if (!("request_range" in op)) return false;
  return true;
}

/**
 * Evaluate one compare (etcd's `applyCompare`): with a range_end every key in
 * range must match; on no key, VALUE compares fail and the others compare
 * against zero.
 */
export function applyCompare(view: ReadView, c: Compare): boolean {
  let kvs: KeyValue[];
  try {
    kvs = view.rangeKeys(c.key, rangeBound(c.range_end)).kvs;
  } catch {
    return false;
  }
  if (kvs.length === 0) {
    if (c.target === "VALUE") return false;
    return compareKV(c, {
      key: c.key,
      create_revision: 0,
      mod_revision: 0,
      version: 0,
      value: EMPTY,
      lease: 0n,
    });
  }
  return kvs.every((kv) => compareKV(c, kv));
}

function compareKV(c: Compare, kv: KeyValue): boolean {
  let result: number;
  switch (c.target) {
    case "VALUE":
      result = compareBytes(kv.value, c.value ?? EMPTY);
      break;
    case "CREATE":
      result = Math.sign(kv.create_revision - (c.create_revision ?? 0));
      break;
    case "MOD":
      result = Math.sign(kv.mod_revision - (c.mod_revision ?? 0));
      break;
    case "LEASE": {
      const lease = c.lease ?? 0n;
      result = kv.lease === lease ? 0 : kv.lease > lease ? 1 : -1;
      break;
    }
    default:
      result = Math.sign(kv.version - (c.version ?? 0));
  }
  switch (c.result) {
    case "EQUAL":
      return result === 0;
    case "NOT_EQUAL":
      return result !== 0;
    case "GREATER":
      return result > 0;
    case "LESS":
      return result < 0;
  }
  return true;
}

/** The branch each (nested) txn takes, in execution order (etcd's `compareToPath`). */
function compareToPath(view: ReadView, t: TxnRequest): boolean[] {
  const succeeded = t.compare.every((c) => applyCompare(view, c));
  const path = [succeeded];
  for (const op of succeeded ? t.success : t.failure) {
    if ("request_txn" in op) path.push(...compareToPath(view, op.request_txn));
  }
  return path;
}

function checkPath(
  view: ReadView,
  t: TxnRequest,
  path: boolean[],
  at: { i: number },
  leaseExists: LeaseLookup | undefined,
): void {
  const ops = path[at.i++] ? t.success : t.failure;
  for (const op of ops) {
    if ("request_range" in op) {
      const rev = op.request_range.revision ?? 0;
      if (rev > view.rev()) throw Errors.FutureRev();
      if (rev > 0 && rev < view.compactRev) throw Errors.Compacted();
    } else if ("request_put" in op && leaseExists) {
      checkPut(view, op.request_put, leaseExists);
    } else if ("request_txn" in op) {
      checkPath(view, op.request_txn, path, at, leaseExists);
    }
  }
}

/**
 * A txn (etcd's `applierV3backend.Txn`): compares decide the branch of each
 * level, the chosen ops are checked first (so a failing op writes nothing),
 * then run in order, reads seeing earlier writes; one revision for all.
 * A read-only txn ({@linkcode isTxnReadOnly}) may run on a ReadView; any
 * other needs a WriteView. Whether it wrote shows in the view's events (the
 * header revision is the view's, one more than before only if it changed
 * something).
 *
 * @throws {EtcdError} LeaseNotFound, KeyNotFound, FutureRev, Compacted.
 */
export function applyTxn(view: ReadView, t: TxnRequest, leaseExists: LeaseLookup): TxnResponse {
  const path = compareToPath(view, t);
  const write = !isTxnReadOnly(t);
  checkPath(view, t, path, { i: 0 }, write ? leaseExists : undefined);
  // etcd reads the compares and checks in one transaction and writes in
  // another (a read-only txn is one), which its metrics count apart.
  if (write) view.endTxn();
  const resp = runTxn(view, t, path, { i: 0 });
  resp.header = revisionHeader(view.rev());
  return resp;
}

function runTxn(view: ReadView, t: TxnRequest, path: boolean[], at: { i: number }): TxnResponse {
  const succeeded = path[at.i++];
  const responses: ResponseOp[] = [];
  for (const op of succeeded ? t.success : t.failure) {
    responses.push(runOp(view, op, path, at));
  }
  return { header: revisionHeader(0), succeeded, responses };
}

function runOp(view: ReadView, op: RequestOp, path: boolean[], at: { i: number }): ResponseOp {
  if ("request_range" in op) return { response_range: applyRange(view, op.request_range) };
  if ("request_txn" in op) return { response_txn: runTxn(view, op.request_txn, path, at) };
  invariant(view instanceof WriteView, "a txn with writes runs on a WriteView");
  const w = view;
  if ("request_put" in op) return { response_put: put(w, op.request_put) };
  return { response_delete_range: applyDeleteRange(w, op.request_delete_range) };
}

/**
 * Record a compaction at `c.revision` (etcd's `kvstore.Compact`): reads below
 * it fail from now on; the history below it is removed afterwards by
 * {@linkcode compactHistory}.
 *
 * @throws {EtcdError} Compacted when revision ≤ the last compaction's
 *   revision (-1 for a store never compacted, so 0 is accepted once),
 *   FutureRev when it is above the current revision.
 */
export function applyCompaction(view: WriteView, c: CompactionRequest): void {
  if (c.revision <= view.lastCompaction()) throw Errors.Compacted();
  if (c.revision > view.rev()) throw Errors.FutureRev();
  view.setCompactRevision(c.revision);
}
