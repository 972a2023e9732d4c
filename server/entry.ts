/**
 * The requests a Raft log entry carries (etcd's InternalRaftRequest) and
 * their encoding (msgpack), so an entry decodes to exactly the request that
 * was proposed: bytes stay bytes, lease IDs stay bigint.
 *
 * @module
 */
import { Packr } from "msgpackr";
import type {
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  TxnRequest,
} from "../core/mvcc/types.ts";

/** A write request as replicated through the log. */
export type InternalRequest =
  | { put: PutRequest }
  | { delete_range: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest };

// msgpack keeps the types: Uint8Array as bin, bigint as 64-bit integers
// (decoded as bigint), numbers as numbers.
const packr = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });

/** Encode a request for the log (msgpack). */
export function encodeRequest(req: InternalRequest): Uint8Array {
  return packr.pack(req);
}

/** Decode a request written by {@linkcode encodeRequest}. */
export function decodeRequest(data: Uint8Array): InternalRequest {
  return packr.unpack(data) as InternalRequest;
}
