/**
 * The requests a Raft log entry carries (etcd's InternalRaftRequest) and
 * their encoding: JSON where byte arrays are `{"$b": base64}` and 64-bit
 * integers `{"$n": "decimal"}`, so an entry decodes to exactly the request
 * that was proposed.
 *
 * @module
 */
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encode a request for the log. */
export function encodeRequest(req: InternalRequest): Uint8Array {
  return encoder.encode(JSON.stringify(req, (_key, value) => {
    if (value instanceof Uint8Array) return { $b: toBase64(value) };
    if (typeof value === "bigint") return { $n: value.toString() };
    // A Buffer reaches the replacer already turned into {type, data} by its toJSON.
    if (value?.type === "Buffer" && Array.isArray(value.data)) {
      return { $b: toBase64(Uint8Array.from(value.data)) };
    }
    return value;
  }));
}

/** Decode a request written by {@linkcode encodeRequest}. */
export function decodeRequest(data: Uint8Array): InternalRequest {
  return JSON.parse(decoder.decode(data), (_key, value) => {
    if (value !== null && typeof value === "object") {
      if (typeof value.$b === "string") return fromBase64(value.$b);
      if (typeof value.$n === "string") return BigInt(value.$n);
    }
    return value;
  });
}
