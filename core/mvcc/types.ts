/**
 * Request and response shapes of etcd's KV service (etcdserverpb/rpc.proto),
 * in cairn's internal form: keys and values are `Uint8Array`, revisions,
 * versions and counts are JS numbers (they stay below 2^53), lease IDs and
 * cluster/member IDs are `bigint`. Field names are the proto field names, so
 * the JSON gateway maps them one to one. Optional fields default to the proto
 * zero value (empty bytes, 0, false, "NONE"/"KEY"/"EQUAL"…).
 *
 * @module
 */

/** A key's state at one revision (mvccpb.KeyValue). */
export interface KeyValue {
  key: Uint8Array;
  /** Revision of the last creation of this key. */
  create_revision: number;
  /** Revision of the last modification of this key. */
  mod_revision: number;
  /** Number of modifications since creation; 0 means deleted. */
  version: number;
  value: Uint8Array;
  /** Lease ID attached to the key; 0n for none. */
  lease: bigint;
}

/** etcdserverpb.ResponseHeader. Nested txn responses carry only `revision`. */
export interface ResponseHeader {
  cluster_id: bigint;
  member_id: bigint;
  /** The store's revision when the request was served. */
  revision: number;
  raft_term: number;
}

/** RangeRequest.SortOrder. */
export type SortOrder = "NONE" | "ASCEND" | "DESCEND";
/** RangeRequest.SortTarget. */
export type SortTarget = "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";

/** etcdserverpb.RangeRequest. */
export interface RangeRequest {
  key: Uint8Array;
  /**
   * Exclusive end of the range. Empty: only `key`. `[0]` ("\0"): every key
   * ≥ key. A key and range_end both `[0]`: all keys.
   */
  range_end?: Uint8Array;
  /** Maximum number of kvs returned; 0 means no limit. */
  limit?: number;
  /** Revision to read at; 0 (or ≤ 0) means the current revision. */
  revision?: number;
  sort_order?: SortOrder;
  sort_target?: SortTarget;
  /** Serve from the local member without a ReadIndex round. */
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: number;
  max_mod_revision?: number;
  min_create_revision?: number;
  max_create_revision?: number;
}

/** etcdserverpb.RangeResponse. */
export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  more: boolean;
  /** Number of keys in the range at the revision (before limit and filters). */
  count: number;
}

/** etcdserverpb.PutRequest. */
export interface PutRequest {
  key: Uint8Array;
  value?: Uint8Array;
  /** Lease to attach; 0n for none. */
  lease?: bigint;
  prev_kv?: boolean;
  /** Keep the current value (the key must exist). */
  ignore_value?: boolean;
  /** Keep the current lease (the key must exist). */
  ignore_lease?: boolean;
}

/** etcdserverpb.PutResponse. */
export interface PutResponse {
  header: ResponseHeader;
  prev_kv?: KeyValue;
}

/** etcdserverpb.DeleteRangeRequest. `range_end` as in RangeRequest. */
export interface DeleteRangeRequest {
  key: Uint8Array;
  range_end?: Uint8Array;
  prev_kv?: boolean;
}

/** etcdserverpb.DeleteRangeResponse. */
export interface DeleteRangeResponse {
  header: ResponseHeader;
  /** Number of keys deleted. */
  deleted: number;
  prev_kvs: KeyValue[];
}

/** Compare.CompareResult. */
export type CompareResult = "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
/** Compare.CompareTarget. */
export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";

/** etcdserverpb.Compare: the field matching `target` holds the operand. */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Uint8Array;
  /** With a range_end, every key in [key, range_end) must satisfy the compare. */
  range_end?: Uint8Array;
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Uint8Array;
  lease?: bigint;
}

/** etcdserverpb.RequestOp (a oneof: exactly one field is set). */
export type RequestOp =
  | { request_range: RangeRequest }
  | { request_put: PutRequest }
  | { request_delete_range: DeleteRangeRequest }
  | { request_txn: TxnRequest };

/** etcdserverpb.ResponseOp (a oneof). Inner headers carry only `revision`. */
export type ResponseOp =
  | { response_range: RangeResponse }
  | { response_put: PutResponse }
  | { response_delete_range: DeleteRangeResponse }
  | { response_txn: TxnResponse };

/** etcdserverpb.TxnRequest. */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/** etcdserverpb.TxnResponse. */
export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

/** etcdserverpb.CompactionRequest. */
export interface CompactionRequest {
  revision: number;
  /** Wait until the compaction is physically applied. */
  physical?: boolean;
}

/** etcdserverpb.CompactionResponse. */
export interface CompactionResponse {
  header: ResponseHeader;
}

/** etcdserverpb.StatusResponse (Maintenance.Status). */
export interface StatusResponse {
  header: ResponseHeader;
  /** The etcd API version cairn speaks, e.g. "3.4.0". */
  version: string;
  /** Size of the backend database in bytes. */
  dbSize: number;
  /** Member ID of the leader; 0n if none. */
  leader: bigint;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  /** Bytes of the database actually in use. */
  dbSizeInUse: number;
  isLearner: boolean;
}

/**
 * The KV and maintenance surface a server exposes to the gateway (and the
 * embedded API): etcd's KV service plus Maintenance.Status. Every method
 * rejects with an `EtcdError` from core/errors.ts on bad input.
 */
export interface KVService {
  range(req: RangeRequest): Promise<RangeResponse>;
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  compact(req: CompactionRequest): Promise<CompactionResponse>;
  status(): Promise<StatusResponse>;
}
