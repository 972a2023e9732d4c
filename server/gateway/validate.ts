/**
 * etcd 3.4's request-size limits, measured as etcd measures them (bytes of
 * the protobuf encoding): the gRPC transport's receive limit and
 * etcdserver's limit on a Raft proposal. The API-layer checks (empty key,
 * txn ops, duplicate keys…) live in core/mvcc/validate.ts.
 *
 * @module
 */

import { Errors } from "../../core/errors.ts";
import type {
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  TxnRequest,
} from "../../core/api/types.ts";
import { protoSize, varintSize } from "../../core/api/codec.ts";

export type { CompactionRequest, DeleteRangeRequest, PutRequest, TxnRequest };

/** etcd's default `--max-request-bytes`: 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1572864;
/** etcd's default `--max-txn-ops`. */
export const DEFAULT_MAX_TXN_OPS = 128;
/** Slack gRPC allows over `--max-request-bytes` (etcd's `grpcOverheadBytes`). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/**
 * etcd 3.4's `isTxnReadonly`: every op of both branches is a range (a nested
 * txn counts as a write, whatever it holds). Such a txn is served without a
 * Raft proposal, so it has no proposal-size limit.
 */
export function isTxnProposalFree(r: TxnRequest): boolean {
  for (const op of r.success) if (!("request_range" in op)) return false;
  for (const op of r.failure) if (!("request_range" in op)) return false;
  return true;
}

/**
 * gRPC's receive limit: a request whose protobuf encoding is over
 * `maxRequestBytes + 512 KiB` fails with 429 / ResourceExhausted
 * `grpc: received message larger than max (N vs. M)`.
 */
export function checkGrpcSize(size: number, maxRequestBytes: number): void {
  const max = maxRequestBytes + GRPC_OVERHEAD_BYTES;
  if (size > max) throw Errors.MessageTooLarge(size, max);
}

/** A write as etcd proposes it to Raft. */
export type ProposedRequest =
  | { put: PutRequest }
  | { delete_range: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest };

/**
 * Size of the `InternalRaftRequest` etcd would propose for a write: a
 * `RequestHeader{ID}` (field 100) plus the request. The request ID is
 * `(memberID & 0xffff) << 48 | counter`, so its varint is 10 bytes when the
 * member ID's low 16 bits are ≥ 0x8000 and 9 bytes otherwise (for a prefix
 * ≥ 0x100); with no member ID the 10-byte case is assumed.
 */
export function proposalSize(req: ProposedRequest, memberId?: bigint): number {
  let idSize = 10;
  if (memberId !== undefined) {
    idSize = varintSize(((memberId & 0xffffn) << 48n) | 0xffffffffffffn);
  }
  const header = 2 + 1 + (1 + idSize);
  let inner: number;
  if ("put" in req) inner = protoSize("PutRequest", req.put);
  else if ("delete_range" in req) inner = protoSize("DeleteRangeRequest", req.delete_range);
  else if ("txn" in req) inner = protoSize("TxnRequest", req.txn);
  else inner = protoSize("CompactionRequest", req.compaction);
  // put/delete_range/txn/compaction are fields 4–7: a one-byte tag.
  return header + 1 + varintSize(inner) + inner;
}

/**
 * etcdserver's proposal limit: a write whose `InternalRaftRequest` is over
 * `maxRequestBytes` fails with `etcdserver: request is too large`.
 */
export function checkProposalSize(
  req: ProposedRequest,
  maxRequestBytes: number,
  memberId?: bigint,
): void {
  if (proposalSize(req, memberId) > maxRequestBytes) throw Errors.RequestTooLarge();
}
