/**
 * etcdserver's proposal-size limit, measured as etcd measures it: bytes of
 * the protobuf encoding of the `InternalRaftRequest` it would append to the
 * Raft log (raft_internal.proto).
 *
 * @module
 */
import { protoSize, varintSize } from "../../core/api/codec.ts";
import { Errors } from "../../core/errors.ts";
import { type InternalRequest, unreachable } from "../raftnode/request.ts";
import type { AuthChange } from "../../core/auth/mod.ts";

/**
 * Size in bytes of the `InternalRaftRequest` etcd 3.4 would propose for a
 * write: a `RequestHeader{ID}` (field 100) plus the request (put,
 * delete_range, txn, compaction, lease_grant, lease_revoke: fields 4–9;
 * lease_checkpoint: 13; each a one-byte tag; auth requests: 1000–1019, a
 * two-byte tag). The request ID
 * is `(memberID & 0xffff) << 48 | counter`, so its varint is 10 bytes when
 * the member ID's low 16 bits are ≥ 0x8000 and 9 bytes otherwise (for a
 * prefix ≥ 0x100); with no member ID the 10-byte case is assumed.
 */
export function proposalSize(req: InternalRequest, memberId?: bigint): number {
  let idSize = 10;
  if (memberId !== undefined) {
    idSize = varintSize(((memberId & 0xffffn) << 48n) | 0xffffffffffffn);
  }
  // Field 100's two-byte tag, its length, then ID's tag and varint.
  const header = 2 + 1 + (1 + idSize);
  const inner = requestSize(req);
  // Auth requests sit at fields 1000–1019 of InternalRaftRequest: two-byte tags.
  const tag = req.type === "auth" ? 2 : 1;
  return header + tag + varintSize(inner) + inner;
}

/** Protobuf bytes of the request an `InternalRaftRequest` carries. */
function requestSize(req: InternalRequest): number {
  switch (req.type) {
    case "put":
      return protoSize("PutRequest", req.put);
    case "delete_range":
      return protoSize("DeleteRangeRequest", req.delete_range);
    case "txn":
      return protoSize("TxnRequest", req.txn);
    case "compaction":
      return protoSize("CompactionRequest", req.compaction);
    case "lease_grant":
      return protoSize("LeaseGrantRequest", req.lease_grant);
    case "lease_revoke":
      return protoSize("LeaseRevokeRequest", req.lease_revoke);
    case "lease_checkpoint":
      return protoSize("LeaseCheckpointRequest", req.lease_checkpoint);
    case "alarm":
      // AlarmRequest: action, memberID and alarm, each a tag and a varint.
      return 2 + 1 + varintSize(req.alarm.memberID) + 2;
    case "auth":
      return authRequestSize(req.auth);
    case "member_update": {
      // etcd sends these as v2 store requests (a path and a JSON value): about its JSON.
      const u = req.member_update;
      return 64 + JSON.stringify({ ...u, ID: String(u.ID) }).length;
    }
    default:
      return unreachable(req);
  }
}

/**
 * Protobuf bytes of the Auth request etcd would propose for `change` (its
 * AuthUserAddRequest etc.); password changes are counted with their bcrypt
 * hash (60 bytes), which is what the log carries.
 */
function authRequestSize(change: AuthChange): number {
  const str = (no: number, s: string) => {
    const n = new TextEncoder().encode(s).length;
    return n === 0 ? 0 : (no < 16 ? 1 : 2) + varintSize(n) + n;
  };
  const bytes = (b: Uint8Array) => b.length === 0 ? 0 : 1 + varintSize(b.length) + b.length;
  switch (change.op) {
    case "enable":
    case "disable":
      return 0;
    case "user_add":
      return str(1, change.name) + str(2, change.hashedPassword) + (change.noPassword ? 4 : 0);
    case "user_delete":
    case "role_add":
      return str(1, change.name);
    case "role_delete":
      return str(1, change.role);
    case "user_change_password":
      return str(1, change.name) + str(2, change.hashedPassword);
    case "user_grant_role":
      return str(1, change.user) + str(2, change.role);
    case "user_revoke_role":
      return str(1, change.name) + str(2, change.role);
    case "role_grant_permission": {
      const perm = protoSize("Permission", change.perm);
      return str(1, change.name) + 1 + varintSize(perm) + perm;
    }
    case "role_revoke_permission":
      return str(1, change.role) + bytes(change.key) + bytes(change.range_end);
  }
}

/**
 * etcdserver's proposal limit (`processInternalRaftRequestOnce`): a write
 * whose `InternalRaftRequest` is over `maxRequestBytes` bytes fails.
 *
 * @throws {EtcdError} RequestTooLarge (`etcdserver: request is too large`,
 *   InvalidArgument).
 */
export function checkProposalSize(
  req: InternalRequest,
  maxRequestBytes: number,
  memberId?: bigint,
): void {
  if (proposalSize(req, memberId) > maxRequestBytes) throw Errors.RequestTooLarge();
}
