/**
 * etcd's permission checks (auth/store.go isOpPermitted, IsAdminPermitted,
 * and the request walks of etcdserver/apply_auth.go): which requests a user
 * may make, given the auth store. The service layer runs them before a read
 * or a proposal; the applier runs the write checks again at apply, against
 * the auth store as of that log position (etcd checks writes only there), so
 * a permission revoked while a write waited in the log still refuses it. No
 * I/O.
 *
 * @module
 */
import type {
  Credentials,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "../api/types.ts";
import { Errors, type EtcdError } from "../errors.ts";
import { type AuthStore, ROOT } from "./mod.ts";

/**
 * Who makes a request, once its token (or client certificate) is resolved:
 * etcd's AuthInfo. `revision` is the auth revision the credentials stand
 * for: a `simple` token's is the store's current one when the request
 * arrives; a JWT's is the one it was issued at.
 */
export interface AuthInfo {
  /** The user name. */
  user: string;
  /** The auth revision of the credentials (0: none). */
  revision: number;
}

/** The keys attached to a lease, or undefined when it does not exist (the applier's lessor). */
export type LeaseKeys = (id: bigint) => Uint8Array[] | undefined;

export type { Credentials };

const NO_USER: AuthInfo = { user: "", revision: 0 };

/**
 * etcd's isOpPermitted: may `info` do `permType` on `[key, rangeEnd)`?
 * Nothing is checked while auth is off.
 *
 * @returns undefined when permitted; otherwise UserEmpty (no credentials),
 *   AuthOldRevision (credentials of an older auth revision), or
 *   PermissionDenied (unknown user, or no role covering the whole range).
 */
export function opPermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  key: Uint8Array,
  rangeEnd: Uint8Array | undefined,
  permType: "READ" | "WRITE",
): EtcdError | undefined {
  if (!store.enabled) return undefined;
  const ai = info ?? NO_USER;
  if (ai.revision === 0) return Errors.UserEmpty();
  if (ai.revision < store.revision) return Errors.AuthOldRevision();
  const user = store.user(ai.user);
  if (user === undefined) return Errors.PermissionDenied();
  if (user.roles.includes(ROOT)) return undefined;
  return store.checkRange(ai.user, key, rangeEnd ?? new Uint8Array(), permType)
    ? undefined
    : Errors.PermissionDenied();
}

/**
 * etcd's IsAdminPermitted: only a user with the root role (no auth
 * revision check, as etcd). Nothing is checked while auth is off.
 *
 * @returns undefined when permitted; otherwise UserEmpty, UserNotFound or
 *   PermissionDenied.
 */
export function adminPermission(
  store: AuthStore,
  info: AuthInfo | undefined,
): EtcdError | undefined {
  if (!store.enabled) return undefined;
  if (info === undefined || info.user === "") return Errors.UserEmpty();
  const user = store.user(info.user);
  if (user === undefined) return Errors.UserNotFound();
  return user.roles.includes(ROOT) ? undefined : Errors.PermissionDenied();
}

/** A range: READ on its keys. */
export function rangePermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  req: RangeRequest,
): EtcdError | undefined {
  return opPermission(store, info, req.key, req.range_end, "READ");
}

/**
 * A put: WRITE on its key; with `prev_kv`, READ on it too; with a lease
 * (when `leaseKeys` is given: at apply), WRITE on every key already attached
 * to it, since a user who could not revoke the lease may not attach to it.
 */
export function putPermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  req: PutRequest,
  leaseKeys?: LeaseKeys,
): EtcdError | undefined {
  const denied = opPermission(store, info, req.key, undefined, "WRITE");
  if (denied !== undefined) return denied;
  if (leaseKeys !== undefined && req.lease !== undefined && req.lease !== 0n) {
    const attached = leaseRevokePermission(store, info, leaseKeys(req.lease));
    if (attached !== undefined) return attached;
  }
  return req.prev_kv ? opPermission(store, info, req.key, undefined, "READ") : undefined;
}

/** A delete: WRITE on its keys; with `prev_kv`, READ on them too. */
export function deletePermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  req: DeleteRangeRequest,
): EtcdError | undefined {
  const denied = opPermission(store, info, req.key, req.range_end, "WRITE");
  if (denied !== undefined) return denied;
  return req.prev_kv ? opPermission(store, info, req.key, req.range_end, "READ") : undefined;
}

/**
 * A txn (etcd's checkTxnAuth): READ on every compare's keys, then every op
 * of both branches, whichever branch would run. Stricter than etcd 3.4.23,
 * as later etcd releases: a nested txn is checked as the outer one, and a
 * put in a txn as a put of its own (prev_kv, lease).
 */
export function txnPermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  req: TxnRequest,
  leaseKeys?: LeaseKeys,
): EtcdError | undefined {
  if (!store.enabled) return undefined;
  for (const c of req.compare ?? []) {
    const denied = opPermission(store, info, c.key, c.range_end, "READ");
    if (denied !== undefined) return denied;
  }
  return opsPermission(store, info, req.success ?? [], leaseKeys) ??
    opsPermission(store, info, req.failure ?? [], leaseKeys);
}

function opsPermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  ops: RequestOp[],
  leaseKeys: LeaseKeys | undefined,
): EtcdError | undefined {
  for (const op of ops) {
    let denied: EtcdError | undefined;
    if ("request_range" in op) denied = rangePermission(store, info, op.request_range);
    else if ("request_put" in op) {
      // As a put of its own: etcd 3.4 checks only the key here, so a txn
      // could read a key through prev_kv, or attach to another's lease.
      denied = putPermission(store, info, op.request_put, leaseKeys);
    } else if ("request_delete_range" in op) {
      const d = op.request_delete_range;
      denied = (d.prev_kv ? opPermission(store, info, d.key, d.range_end, "READ") : undefined) ??
        opPermission(store, info, d.key, d.range_end, "WRITE");
    } else if ("request_txn" in op) denied = txnPermission(store, info, op.request_txn, leaseKeys);
    if (denied !== undefined) return denied;
  }
  return undefined;
}

/**
 * A lease revoke (etcd's checkLeasePuts): a root user may; anyone else
 * needs WRITE on every key attached to the lease (`keys` undefined: no such
 * lease, nothing to check).
 */
export function leaseRevokePermission(
  store: AuthStore,
  info: AuthInfo | undefined,
  keys: Uint8Array[] | undefined,
): EtcdError | undefined {
  if (!store.enabled || keys === undefined) return undefined;
  if (adminPermission(store, info) === undefined) return undefined;
  for (const key of keys) {
    const denied = opPermission(store, info, key, undefined, "WRITE");
    if (denied !== undefined) return denied;
  }
  return undefined;
}
