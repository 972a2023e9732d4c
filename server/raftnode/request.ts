/**
 * The requests a Raft log entry carries (etcd's InternalRaftRequest): one
 * tagged union for every replicated request, and its log encoding. An
 * entry's data is `request ID (8 bytes, big-endian) ‖ msgpack(request)`, so
 * the member that proposed it can answer the waiting caller once it is
 * applied, and an entry decodes to exactly the request that was proposed:
 * bytes stay bytes, lease IDs stay bigint.
 *
 * @module
 */
import { Packr } from "msgpackr";
import { invariant } from "../../core/invariant.ts";
import type { AuthChange } from "../../core/auth/mod.ts";
import type {
  CompactionRequest,
  DeleteRangeRequest,
  LeaseCheckpointRequest,
  LeaseGrantRequest,
  LeaseRevokeRequest,
  PutRequest,
  TxnRequest,
} from "../../core/api/types.ts";

/**
 * A write request as replicated through the log, tagged by `type`; the
 * payload sits under etcd's InternalRaftRequest field name. Dispatch with an
 * exhaustive `switch (request.type)` ending in {@linkcode unreachable}.
 */
export type InternalRequest = RequestKind & {
  /**
   * Who proposed it (etcd's RequestHeader username and auth_revision):
   * absent when the request carried no credentials. The applier checks the
   * request's permissions against it while auth is on.
   */
  header?: RequestHeader;
};

/** etcd's RequestHeader: the user a request runs as, and the auth revision of its credentials. */
export interface RequestHeader {
  /** The user name. */
  username: string;
  /** The auth revision of the credentials. */
  auth_revision: number;
}

/** The replicated requests, by kind (see {@linkcode InternalRequest}). */
export type RequestKind =
  | { type: "put"; put: PutRequest }
  | { type: "delete_range"; delete_range: DeleteRangeRequest }
  | { type: "txn"; txn: TxnRequest }
  | { type: "compaction"; compaction: CompactionRequest }
  | { type: "lease_grant"; lease_grant: Required<LeaseGrantRequest> }
  | { type: "lease_revoke"; lease_revoke: LeaseRevokeRequest }
  | { type: "lease_checkpoint"; lease_checkpoint: LeaseCheckpointRequest }
  | { type: "member_update"; member_update: MemberUpdateRequest }
  | { type: "alarm"; alarm: AlarmChange }
  | { type: "auth"; auth: AuthChange };

/**
 * An alarm raised or cleared (etcd's AlarmRequest with action ACTIVATE or
 * DEACTIVATE; a GET is a read and never replicated).
 */
export interface AlarmChange {
  /** ACTIVATE raises the alarm, DEACTIVATE clears it. */
  action: "ACTIVATE" | "DEACTIVATE";
  /** The member the alarm is about. */
  memberID: bigint;
  /** The kind of alarm. */
  alarm: "NOSPACE" | "CORRUPT";
}

/**
 * A change of a member's attributes: its peer URLs (etcd's MemberUpdate) or
 * the name and client URLs it publishes when it starts (etcd's publish).
 */
export interface MemberUpdateRequest {
  /** The member's 64-bit ID. */
  ID: bigint;
  /** New peer URLs; unchanged when absent. */
  peerURLs?: string[];
  /** The member's --name; unchanged when absent. */
  name?: string;
  /** The member's client URLs; unchanged when absent. */
  clientURLs?: string[];
}

/**
 * The end of an exhaustive switch over a tagged union: a new kind that one
 * place forgot fails type-checking there, and throws if it ever runs.
 *
 * @throws {InvariantError} always.
 */
export function unreachable(value: never): never {
  invariant(false, `unhandled request kind ${JSON.stringify((value as { type?: unknown }).type)}`);
}

// msgpack keeps the types: Uint8Array as bin, bigint as 64-bit integers
// (decoded as bigint), numbers as numbers.
const packr = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });

/** Encode a request (msgpack), e.g. to carry it from a worker thread. */
export function encodeRequest(req: InternalRequest): Uint8Array {
  return packr.pack(req);
}

/**
 * Decode a request written by {@linkcode encodeRequest}.
 *
 * @throws {InvariantError} when the bytes do not hold a tagged request.
 */
export function decodeRequest(data: Uint8Array): InternalRequest {
  const req = packr.unpack(data) as InternalRequest;
  invariant(typeof req?.type === "string", "a log entry holds a tagged request");
  return req;
}

/** Bytes of the request ID before the encoded request in an entry. */
const ID_BYTES = 8;

/**
 * An entry's data: `id` (a non-negative safe integer) then the encoded
 * request (`encoded`, from {@linkcode encodeRequest}).
 */
export function entryData(id: number, encoded: Uint8Array): Uint8Array {
  invariant(Number.isSafeInteger(id) && id >= 0, "request IDs are non-negative safe integers");
  const out = new Uint8Array(ID_BYTES + encoded.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(id / 0x1_0000_0000));
  view.setUint32(4, id >>> 0);
  out.set(encoded, ID_BYTES);
  return out;
}

/** The request ID and request of an entry made by {@linkcode entryData}. */
export function decodeEntryData(data: Uint8Array): { id: number; request: InternalRequest } {
  invariant(data.length > ID_BYTES, "an entry's data holds a request ID and a request");
  const view = new DataView(data.buffer, data.byteOffset, ID_BYTES);
  const id = view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
  return { id, request: decodeRequest(data.subarray(ID_BYTES)) };
}
