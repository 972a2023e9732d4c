/**
 * Request checks etcd makes at its API layer before a request reaches Raft
 * (etcd 3.4 `api/v3rpc/key.go`): empty keys, ignore_value/ignore_lease
 * conflicts, the txn op limit and the duplicate-key rule. The service layer
 * (server/etcdserver/) runs them first for every request, whatever its
 * transport.
 *
 * @module
 */
import { Errors } from "../errors.ts";
import { MAX_TXN_DEPTH } from "../limits.ts";
import { compareBytes, isStorableKey } from "./encoding.ts";
import type {
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "../api/types.ts";

/**
 * Check a Range request: the key must not be empty.
 *
 * @throws {EtcdError} EmptyKey.
 */
export function checkRangeRequest(r: RangeRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey();
}

/**
 * Check a Put request: a non-empty, storable key; no value with ignore_value
 * and no lease with ignore_lease.
 *
 * @throws {EtcdError} EmptyKey, KeyTooLarge, ValueProvided, LeaseProvided.
 */
export function checkPutRequest(r: PutRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey();
  if (!isStorableKey(r.key)) throw Errors.KeyTooLarge();
  if (r.ignore_value && r.value !== undefined && r.value.length !== 0) {
    throw Errors.ValueProvided();
  }
  if (r.ignore_lease && r.lease !== undefined && r.lease !== 0n) throw Errors.LeaseProvided();
}

/**
 * Check a DeleteRange request: the key must not be empty.
 *
 * @throws {EtcdError} EmptyKey.
 */
export function checkDeleteRequest(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey();
}

/**
 * The whole txn check of etcd's `kvServer.Txn`: op counts against
 * `maxTxnOps` (the largest of compares, success and failure; each nested
 * txn gets what its level leaves, so nesting deeper than `maxTxnOps + 1`
 * levels always fails), each op's own checks, then the duplicate-key rule on
 * each branch.
 *
 * The op-count pass walks the txn without recursion, so nesting of any depth
 * gets etcd's answer. Nesting deeper than {@linkcode MAX_TXN_DEPTH} levels is
 * then refused as too many operations before any recursive step (the
 * duplicate-key rule, the apply, the response encoding) could exhaust the JS
 * stack; with etcd's default `--max-txn-ops` such nesting has already failed
 * the op count, so the bound is visible only with `--max-txn-ops` ≥
 * MAX_TXN_DEPTH.
 *
 * @throws {EtcdError} TooManyOps, EmptyKey, KeyTooLarge, ValueProvided,
 *   LeaseProvided, KeyNotFound (an op with no request set), DuplicateKey.
 */
export function checkTxnRequest(r: TxnRequest, maxTxnOps: number): void {
  const depth = checkTxnOps(r, maxTxnOps);
  if (depth > MAX_TXN_DEPTH) throw Errors.TooManyOps();
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/** A txn level being checked: its ops (success then failure) and the budget its nested txns get. */
interface OpsFrame {
  ops: RequestOp[];
  i: number;
  budget: number;
}

/**
 * etcd's `checkTxnRequest`/`checkRequestOp` recursion, depth first in the
 * same order, on an explicit stack. Returns the number of txn levels (1 for
 * a txn without nested txns).
 */
function checkTxnOps(r: TxnRequest, maxTxnOps: number): number {
  const stack: OpsFrame[] = [];
  let depth = 0;
  const enter = (t: TxnRequest, budget: number) => {
    const opc = Math.max(t.compare.length, t.success.length, t.failure.length);
    if (opc > budget) throw Errors.TooManyOps();
    for (const c of t.compare) {
      if (c.key.length === 0) throw Errors.EmptyKey();
    }
    stack.push({ ops: [...t.success, ...t.failure], i: 0, budget: budget - opc });
    depth = Math.max(depth, stack.length);
  };
  enter(r, maxTxnOps);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i === top.ops.length) {
      stack.pop();
      continue;
    }
    const op = top.ops[top.i++];
    if ("request_range" in op) checkRangeRequest(op.request_range);
    else if ("request_put" in op) checkPutRequest(op.request_put);
    else if ("request_delete_range" in op) checkDeleteRequest(op.request_delete_range);
    else if ("request_txn" in op) enter(op.request_txn, top.budget);
    else throw Errors.KeyNotFound(); // an empty RequestOp, as etcd
  }
  return depth;
}

/** A deleted interval [begin, end); a point when end is undefined. */
interface Interval {
  begin: Uint8Array;
  end?: Uint8Array;
}

function intersects(dels: Interval[], key: Uint8Array): boolean {
  return dels.some((iv) =>
    iv.end === undefined
      ? compareBytes(iv.begin, key) === 0
      : compareBytes(iv.begin, key) <= 0 && compareBytes(key, iv.end) < 0
  );
}

/**
 * etcd's `checkIntervals`: within one branch (nested txns included) no key
 * may be put twice, nor put inside a range the branch deletes. Puts in the
 * success and failure branches of one nested txn may share keys (only one
 * runs). A range_end of `\0` is taken literally as etcd does, so a from-key
 * delete conflicts with no put.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (!("request_delete_range" in op)) continue;
    const d = op.request_delete_range;
    dels.push(
      d.range_end !== undefined && d.range_end.length !== 0
        ? { begin: d.key, end: d.range_end }
        : { begin: d.key },
    );
  }
  const puts = new Set<string>();
  const seen = (k: string) => puts.has(k);
  for (const op of ops) {
    if (!("request_txn" in op)) continue;
    const then = checkIntervals(op.request_txn.success);
    const otherwise = checkIntervals(op.request_txn.failure);
    for (const k of then.puts) {
      if (seen(k) || intersects(dels, binary(k))) throw Errors.DuplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (seen(k) && !then.puts.has(k)) throw Errors.DuplicateKey();
      if (intersects(dels, binary(k))) throw Errors.DuplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (!("request_put" in op)) continue;
    const k = latin1(op.request_put.key);
    if (seen(k) || intersects(dels, op.request_put.key)) throw Errors.DuplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}

function latin1(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

function binary(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
