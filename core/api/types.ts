/**
 * Request and response shapes of etcd's services (etcdserverpb/rpc.proto,
 * mvccpb/kv.proto, v3lockpb, v3electionpb; Auth),
 * in cairn's internal form, shared by the server, the client and ctl: keys
 * and values are `Uint8Array`, revisions, versions and counts are JS numbers
 * (they stay below 2^53), lease IDs and cluster/member IDs are `bigint`. Field names are the proto field names, so
 * the JSON gateway maps them one to one. Optional fields default to the proto
 * zero value (empty bytes, 0, false, "NONE"/"KEY"/"EQUAL"…).
 *
 * @module
 */

/** A key's state at one revision (mvccpb.KeyValue). */
export interface KeyValue {
  /** The key, in bytes. An empty key is not allowed. */
  key: Uint8Array;
  /** Revision of the last creation of this key. */
  create_revision: number;
  /** Revision of the last modification of this key. */
  mod_revision: number;
  /** Number of modifications since creation; 0 means deleted. */
  version: number;
  /** The value held by the key, in bytes. */
  value: Uint8Array;
  /** Lease ID attached to the key; 0n for none. */
  lease: bigint;
}

/** etcdserverpb.ResponseHeader. Nested txn responses carry only `revision`. */
export interface ResponseHeader {
  /** ID of the cluster that sent the response. */
  cluster_id: bigint;
  /** ID of the member that sent the response. */
  member_id: bigint;
  /** The store's revision when the request was served. */
  revision: number;
  /** Raft term of the member when the request was served. */
  raft_term: number;
}

/** RangeRequest.SortOrder. */
export type SortOrder = "NONE" | "ASCEND" | "DESCEND";
/** RangeRequest.SortTarget. */
export type SortTarget = "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";

/** etcdserverpb.RangeRequest. */
export interface RangeRequest {
  /** First key of the range; without a range_end, the only key looked up. */
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
  /** Sort order; "NONE" (default) is key order, or ascending if sort_target ≠ "KEY". */
  sort_order?: SortOrder;
  /** Field of the key-value to sort by; default "KEY". */
  sort_target?: SortTarget;
  /** Serve from the local member without a ReadIndex round. */
  serializable?: boolean;
  /** Return only the keys, with empty values. */
  keys_only?: boolean;
  /** Return only the count of keys in the range, no kvs. */
  count_only?: boolean;
  /** Lower bound on returned kvs' mod_revision; lower ones are filtered out. 0 = no bound. */
  min_mod_revision?: number;
  /** Upper bound on returned kvs' mod_revision; higher ones are filtered out. 0 = no bound. */
  max_mod_revision?: number;
  /** Lower bound on returned kvs' create_revision; lower ones are filtered out. 0 = no bound. */
  min_create_revision?: number;
  /** Upper bound on returned kvs' create_revision; higher ones are filtered out. 0 = no bound. */
  max_create_revision?: number;
}

/** etcdserverpb.RangeResponse. */
export interface RangeResponse {
  /** Response header; `revision` is the store's current revision. */
  header: ResponseHeader;
  /** The key-values matched by the range; empty when count_only is set. */
  kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  more: boolean;
  /** Number of keys in the range at the revision (before limit and filters). */
  count: number;
}

/** etcdserverpb.PutRequest. */
export interface PutRequest {
  /** The key to put, in bytes. */
  key: Uint8Array;
  /** The value to associate with the key, in bytes. */
  value?: Uint8Array;
  /** Lease to attach; 0n for none. */
  lease?: bigint;
  /** Return the key's previous key-value (if any) in the response. */
  prev_kv?: boolean;
  /** Keep the current value (the key must exist). */
  ignore_value?: boolean;
  /** Keep the current lease (the key must exist). */
  ignore_lease?: boolean;
}

/** etcdserverpb.PutResponse. */
export interface PutResponse {
  /** Response header; `revision` is the revision of this put. */
  header: ResponseHeader;
  /** The key-value before the put, if prev_kv was requested and the key existed. */
  prev_kv?: KeyValue;
}

/** etcdserverpb.DeleteRangeRequest. `range_end` as in RangeRequest. */
export interface DeleteRangeRequest {
  /** First key of the range to delete; without a range_end, the only key. */
  key: Uint8Array;
  /** Exclusive end of the range [key, range_end); as in RangeRequest. */
  range_end?: Uint8Array;
  /** Return the deleted key-values in the response. */
  prev_kv?: boolean;
}

/** etcdserverpb.DeleteRangeResponse. */
export interface DeleteRangeResponse {
  /** Response header; `revision` is the store's revision after the delete. */
  header: ResponseHeader;
  /** Number of keys deleted. */
  deleted: number;
  /** The deleted key-values, when prev_kv was requested; else empty. */
  prev_kvs: KeyValue[];
}

/** Compare.CompareResult. */
export type CompareResult = "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
/** Compare.CompareTarget. */
export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";

/** etcdserverpb.Compare: the field matching `target` holds the operand. */
export interface Compare {
  /** The comparison: the key's target field against the operand. */
  result: CompareResult;
  /** Which field of the key is compared (and which operand field is used). */
  target: CompareTarget;
  /** The key compared. */
  key: Uint8Array;
  /** With a range_end, every key in [key, range_end) must satisfy the compare. */
  range_end?: Uint8Array;
  /** Operand for target "VERSION": the key's version. */
  version?: number;
  /** Operand for target "CREATE": the key's create revision. */
  create_revision?: number;
  /** Operand for target "MOD": the key's last modified revision. */
  mod_revision?: number;
  /** Operand for target "VALUE": the key's value, in bytes. */
  value?: Uint8Array;
  /** Operand for target "LEASE": the key's lease ID. */
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
  /** Predicates that must all hold (a conjunction) for `success` to run. */
  compare: Compare[];
  /** Requests applied in order when every compare holds. */
  success: RequestOp[];
  /** Requests applied in order when any compare fails. */
  failure: RequestOp[];
}

/** etcdserverpb.TxnResponse. */
export interface TxnResponse {
  /** Response header; `revision` is the store's revision after the txn. */
  header: ResponseHeader;
  /** True if the compares all held (success ran), false if failure ran. */
  succeeded: boolean;
  /** Responses of the branch that ran, one per request, in order. */
  responses: ResponseOp[];
}

/** etcdserverpb.CompactionRequest. */
export interface CompactionRequest {
  /** Revision to compact at: key versions superseded by then are discarded; reads below it fail. */
  revision: number;
  /** Wait until the compaction is physically applied. */
  physical?: boolean;
}

/** etcdserverpb.CompactionResponse. */
export interface CompactionResponse {
  /** Response header. */
  header: ResponseHeader;
}

/** etcdserverpb.StatusRequest: an empty message. */
// deno-lint-ignore ban-types
export type StatusRequest = {};

/** etcdserverpb.StatusResponse (Maintenance.Status). */
export interface StatusResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The etcd API version cairn speaks, e.g. "3.4.0". */
  version: string;
  /** Size of the backend database in bytes. */
  dbSize: number;
  /** Member ID of the leader; 0n if none. */
  leader: bigint;
  /** Current Raft committed index of the member. */
  raftIndex: number;
  /** Current Raft term of the member. */
  raftTerm: number;
  /** Current Raft applied index of the member. */
  raftAppliedIndex: number;
  /** Alarm and health errors of the member; empty when healthy. */
  errors: string[];
  /** Bytes of the database actually in use. */
  dbSizeInUse: number;
  /** Whether the member is a Raft learner (non-voting). */
  isLearner: boolean;
}

/** etcdserverpb.Member: one member of the cluster as Cluster.MemberList reports it. */
export interface Member {
  /** The member's ID (uint64). */
  ID: bigint;
  /** The member's name; empty until the member has started and published it. */
  name: string;
  /** URLs the member serves Raft traffic on. */
  peerURLs: string[];
  /** URLs the member serves clients on; empty until it has started. */
  clientURLs: string[];
  /** Whether the member is a Raft learner (non-voting). */
  isLearner: boolean;
}

/** etcdserverpb.MemberAddRequest. */
export interface MemberAddRequest {
  /** Peer URLs of the member to add. */
  peerURLs: string[];
  /** Add the member as a learner (non-voting). */
  isLearner?: boolean;
}

/** etcdserverpb.MemberAddResponse. */
export interface MemberAddResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The member added, with the ID the cluster gave it. */
  member?: Member;
  /** Every member after the addition. */
  members: Member[];
}

/** etcdserverpb.MemberRemoveRequest. */
export interface MemberRemoveRequest {
  /** ID of the member to remove. */
  ID: bigint;
}

/** etcdserverpb.MemberRemoveResponse. */
export interface MemberRemoveResponse {
  /** Response header. */
  header: ResponseHeader;
  /** Every member left after the removal. */
  members: Member[];
}

/** etcdserverpb.MemberUpdateRequest. */
export interface MemberUpdateRequest {
  /** ID of the member to update. */
  ID: bigint;
  /** The member's new peer URLs. */
  peerURLs: string[];
}

/** etcdserverpb.MemberUpdateResponse. */
export interface MemberUpdateResponse {
  /** Response header. */
  header: ResponseHeader;
  /** Every member after the update. */
  members: Member[];
}

/** etcdserverpb.MemberListRequest (3.4: no fields). */
// deno-lint-ignore ban-types
export type MemberListRequest = {};

/** etcdserverpb.MemberListResponse. */
export interface MemberListResponse {
  /** Response header (etcd sends no revision in it). */
  header: ResponseHeader;
  /** Every member, in the order the server lists them (etcd: by ID). */
  members: Member[];
}

/** etcdserverpb.MemberPromoteRequest. */
export interface MemberPromoteRequest {
  /** ID of the learner to promote. */
  ID: bigint;
}

/** etcdserverpb.MemberPromoteResponse. */
export interface MemberPromoteResponse {
  /** Response header. */
  header: ResponseHeader;
  /** Every member after the promotion. */
  members: Member[];
}

/** etcdserverpb.MoveLeaderRequest (Maintenance.MoveLeader). */
export interface MoveLeaderRequest {
  /** ID of the member to hand leadership to. */
  targetID: bigint;
}

/** etcdserverpb.MoveLeaderResponse (etcd 3.4 sends it without a header: `{}`). */
export interface MoveLeaderResponse {
  /** Response header, when the server sends one. */
  header?: ResponseHeader;
}

/** etcdserverpb.AlarmType: the kind of an alarm a member raises. */
export type AlarmType = "NONE" | "NOSPACE" | "CORRUPT";

/** AlarmRequest.AlarmAction: what an Alarm request does. */
export type AlarmAction = "GET" | "ACTIVATE" | "DEACTIVATE";

/** etcdserverpb.AlarmRequest (Maintenance.Alarm). */
export interface AlarmRequest {
  /** "GET" lists the raised alarms, "ACTIVATE" raises one, "DEACTIVATE" clears one. */
  action?: AlarmAction;
  /** ID of the member the alarm is about; 0n: every member. */
  memberID?: bigint;
  /** The kind of alarm; "NONE" (with "GET"): every kind. */
  alarm?: AlarmType;
}

/** etcdserverpb.AlarmMember: one raised alarm. */
export interface AlarmMember {
  /** ID of the member that raised the alarm. */
  memberID: bigint;
  /** The kind of alarm raised. */
  alarm: AlarmType;
}

/** etcdserverpb.AlarmResponse. */
export interface AlarmResponse {
  /** Response header. */
  header?: ResponseHeader;
  /** The alarms the request matched (GET) or changed (ACTIVATE, DEACTIVATE). */
  alarms: AlarmMember[];
}

/** etcdserverpb.DefragmentRequest (Maintenance.Defragment): an empty message. */
// deno-lint-ignore ban-types
export type DefragmentRequest = {};

/** etcdserverpb.DefragmentResponse (etcd 3.4 sends it without a header: `{}`). */
export interface DefragmentResponse {
  /** Response header, when the server sends one. */
  header?: ResponseHeader;
}

/** etcdserverpb.HashRequest (Maintenance.Hash, a hash of the whole backend): an empty message. */
// deno-lint-ignore ban-types
export type HashRequest = {};

/** etcdserverpb.HashResponse. */
export interface HashResponse {
  /** Response header; `revision` is the store's revision the hash was taken at. */
  header: ResponseHeader;
  /** CRC-32 (Castagnoli) of the member's backend, a uint32. */
  hash: number;
}

/** etcdserverpb.HashKVRequest (Maintenance.HashKV). */
export interface HashKVRequest {
  /** Hash the MVCC keys up to this revision; 0 means the current revision. */
  revision?: number;
}

/** etcdserverpb.HashKVResponse. */
export interface HashKVResponse {
  /** Response header; `revision` is the revision the hash covers. */
  header: ResponseHeader;
  /** CRC-32 (Castagnoli) of the MVCC keys and values up to the revision, a uint32. */
  hash: number;
  /** The store's compacted revision when the hash began. */
  compact_revision: number;
}

/** etcdserverpb.SnapshotRequest (Maintenance.Snapshot, a server stream): an empty message. */
// deno-lint-ignore ban-types
export type SnapshotRequest = {};

/**
 * etcdserverpb.SnapshotResponse: one chunk of the snapshot stream. etcd 3.4
 * sends no header; its last message has remaining_bytes 0 and the SHA-256 of
 * the snapshot as its blob.
 */
export interface SnapshotResponse {
  /** Response header, when the server sends one (etcd 3.4 does not). */
  header?: ResponseHeader;
  /** Bytes of blob still to come after this message. */
  remaining_bytes: number;
  /** The next chunk of the snapshot, in bytes. */
  blob: Uint8Array;
}

/** etcdserverpb.AuthenticateRequest (Auth.Authenticate). */
export interface AuthenticateRequest {
  /** The user's name. */
  name: string;
  /** The user's password. */
  password: string;
}

/** authpb.Permission.Type: what a permission allows. */
export type PermissionType = "READ" | "WRITE" | "READWRITE";

/** authpb.Permission: `permType` on a key range (etcd's range semantics). */
export interface Permission {
  /** What the permission allows. */
  permType: PermissionType;
  /** First key covered. */
  key: Uint8Array;
  /** End of the range (exclusive); empty: `key` alone; "\0": every key from `key`. */
  range_end: Uint8Array;
}

/** authpb.UserAddOptions. */
export interface UserAddOptions {
  /** A user that cannot authenticate with a password. */
  no_password: boolean;
}

/** A request or response of the Auth service that carries nothing (or only a header). */
export type Empty = Record<string, never>;

/** etcdserverpb.AuthUserAddRequest: a user's name, password and options. */
export interface AuthUserAddRequest {
  /** The user's name. */
  name: string;
  /** The password (hashed before it is proposed). */
  password: string;
  /** Options; absent: a user with a password. */
  options?: UserAddOptions;
}

/** etcdserverpb.AuthUserChangePasswordRequest. */
export interface AuthUserChangePasswordRequest {
  /** The user's name. */
  name: string;
  /** The new password (hashed before it is proposed). */
  password: string;
}

/** etcdserverpb.AuthUserGrantRoleRequest. */
export interface AuthUserGrantRoleRequest {
  /** The user's name. */
  user: string;
  /** The role granted. */
  role: string;
}

/** etcdserverpb.AuthUserRevokeRoleRequest. */
export interface AuthUserRevokeRoleRequest {
  /** The user's name. */
  name: string;
  /** The role revoked. */
  role: string;
}

/** etcdserverpb.AuthRoleGrantPermissionRequest. */
export interface AuthRoleGrantPermissionRequest {
  /** The role's name. */
  name: string;
  /** The permission granted (or, on the same key and range_end, its new type). */
  perm: Permission;
}

/** etcdserverpb.AuthRoleRevokePermissionRequest. */
export interface AuthRoleRevokePermissionRequest {
  /** The role's name. */
  role: string;
  /** Key of the permission revoked. */
  key: Uint8Array;
  /** range_end of the permission revoked. */
  range_end: Uint8Array;
}

/** A request that names a user (AuthUserGet, AuthUserDelete) or a role (AuthRoleAdd). */
export interface AuthNameRequest {
  /** The user's or role's name. */
  name: string;
}

/** A request that names a role (AuthRoleGet, AuthRoleDelete). */
export interface AuthRoleRequest {
  /** The role's name. */
  role: string;
}

/** The response of an Auth change: a header alone. */
export interface AuthHeaderResponse {
  /** Response header (the revision is the KV store's current one). */
  header: ResponseHeader;
}

/** etcdserverpb.AuthUserGetResponse / AuthRoleListResponse: role names. */
export interface AuthRolesResponse {
  /** Response header. */
  header: ResponseHeader;
  /** Role names, sorted. */
  roles: string[];
}

/** etcdserverpb.AuthUserListResponse. */
export interface AuthUserListResponse {
  /** Response header. */
  header: ResponseHeader;
  /** User names, sorted. */
  users: string[];
}

/** etcdserverpb.AuthRoleGetResponse. */
export interface AuthRoleGetResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The role's permissions, in key order. */
  perm: Permission[];
}

/** etcdserverpb.AuthenticateResponse. */
export interface AuthenticateResponse {
  /** Response header. */
  header: ResponseHeader;
  /** A token for the `token` metadata of later requests. */
  token: string;
}

/** etcdserverpb.LeaseGrantRequest. */
export interface LeaseGrantRequest {
  /** Advisory time-to-live in seconds (raised to the server's minimum, 2 s by default). */
  TTL: number;
  /** The lease ID to use; 0n lets the server choose a random one. */
  ID?: bigint;
}

/** etcdserverpb.LeaseGrantResponse. */
export interface LeaseGrantResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The lease ID granted. */
  ID: bigint;
  /** The TTL granted, in seconds. */
  TTL: number;
  /** Unused by etcd 3.4 (always empty). */
  error?: string;
}

/** etcdserverpb.LeaseRevokeRequest. */
export interface LeaseRevokeRequest {
  /** The lease to revoke; its keys are deleted. */
  ID: bigint;
}

/** etcdserverpb.LeaseRevokeResponse. */
export interface LeaseRevokeResponse {
  /** Response header. */
  header: ResponseHeader;
}

/** etcdserverpb.LeaseCheckpoint: a lease's remaining TTL as recorded. */
export interface LeaseCheckpoint {
  /** The lease ID. */
  ID: bigint;
  /** Seconds left; 0 clears the record (the lease has its full TTL). */
  remaining_TTL: number;
}

/** etcdserverpb.LeaseCheckpointRequest (replicated only, never sent by clients). */
export interface LeaseCheckpointRequest {
  /** The checkpoints. */
  checkpoints: LeaseCheckpoint[];
}

/** etcdserverpb.LeaseKeepAliveRequest. */
export interface LeaseKeepAliveRequest {
  /** The lease to keep alive. */
  ID: bigint;
}

/** etcdserverpb.LeaseKeepAliveResponse. */
export interface LeaseKeepAliveResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The lease renewed. */
  ID: bigint;
  /** Its new TTL in seconds; 0 (omitted in JSON) when the lease does not exist. */
  TTL: number;
}

/** etcdserverpb.LeaseTimeToLiveRequest. */
export interface LeaseTimeToLiveRequest {
  /** The lease. */
  ID: bigint;
  /** List the keys attached to it. */
  keys?: boolean;
}

/** etcdserverpb.LeaseTimeToLiveResponse. */
export interface LeaseTimeToLiveResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The lease. */
  ID: bigint;
  /** Seconds left; -1 when the lease does not exist (or has expired). */
  TTL: number;
  /** The TTL granted, in seconds. */
  grantedTTL: number;
  /** The attached keys, when asked for. */
  keys: Uint8Array[];
}

/** etcdserverpb.LeaseLeasesRequest: an empty message. */
// deno-lint-ignore ban-types
export type LeaseLeasesRequest = {};

/** etcdserverpb.LeaseStatus. */
export interface LeaseStatus {
  /** A lease ID. */
  ID: bigint;
}

/** etcdserverpb.LeaseLeasesResponse. */
export interface LeaseLeasesResponse {
  /** Response header. */
  header: ResponseHeader;
  /** Every lease. */
  leases: LeaseStatus[];
}

/** mvccpb.Event.EventType. */
export type EventType = "PUT" | "DELETE";

/** mvccpb.Event: one change of one key (a watch event). */
export interface Event {
  /** A put or a deletion of the key. */
  type: EventType;
  /** The key-value after the change; for a DELETE, the key at the deletion's mod_revision. */
  kv: KeyValue;
  /** The key's previous version, if it existed (sent when the watch asked for prev_kv). */
  prev_kv?: KeyValue;
}

/** WatchCreateRequest.FilterType: events a watcher does not want. */
export type WatchFilterType = "NOPUT" | "NODELETE";

/** etcdserverpb.WatchCreateRequest. */
export interface WatchCreateRequest {
  /** The key to watch (empty: `\0`, the smallest key). */
  key: Uint8Array;
  /** End of the range [key, range_end); empty: the single key; `\0`: every key ≥ key. */
  range_end?: Uint8Array;
  /** First revision to deliver (inclusive); 0: the revision after the current one. */
  start_revision?: number;
  /** Ask for a progress notification after each idle interval. */
  progress_notify?: boolean;
  /** Event types to leave out. */
  filters?: WatchFilterType[];
  /** Attach the previous key-value to each event. */
  prev_kv?: boolean;
  /** The watch's ID on its stream; 0: the server picks the next free one. */
  watch_id?: number;
  /** Split responses larger than --max-request-bytes into fragments. */
  fragment?: boolean;
}

/** etcdserverpb.WatchCancelRequest. */
export interface WatchCancelRequest {
  /** The watch to cancel. */
  watch_id: number;
}

/** etcdserverpb.WatchProgressRequest: an empty message. */
// deno-lint-ignore ban-types
export type WatchProgressRequest = {};

/** etcdserverpb.WatchRequest: one of a create, a cancel or a progress request. */
export interface WatchRequest {
  /** Start a watch. */
  create_request?: WatchCreateRequest;
  /** Stop a watch. */
  cancel_request?: WatchCancelRequest;
  /** Ask for the stream's progress (a response with watch_id -1). */
  progress_request?: WatchProgressRequest;
}

/** etcdserverpb.WatchResponse. */
export interface WatchResponse {
  /** Response header; its revision is the revision the response brings the watcher to. */
  header: ResponseHeader;
  /** The watch this response is for (-1: the whole stream). */
  watch_id: number;
  /** The response to a create request. */
  created?: boolean;
  /** The watch ended (canceled, compacted, or its creation failed). */
  canceled?: boolean;
  /** Set when the watch was canceled because its start revision is compacted: the compacted revision. */
  compact_revision?: number;
  /** Why the watch was canceled. */
  cancel_reason?: string;
  /** More fragments of this response follow. */
  fragment?: boolean;
  /** The events, in revision order. */
  events?: Event[];
}

/** v3lockpb.LockRequest. */
export interface LockRequest {
  /** The lock's name: its holders' keys are `name/<lease ID in hex>`. */
  name: Uint8Array;
  /** The lease the lock key is attached to (0: a new 60 s lease is granted). */
  lease?: bigint;
}

/** v3lockpb.LockResponse. */
export interface LockResponse {
  /** Response header at the revision the lock was acquired. */
  header: ResponseHeader;
  /** The key the lock is held with, until Unlock deletes it or its lease ends. */
  key: Uint8Array;
}

/** v3lockpb.UnlockRequest. */
export interface UnlockRequest {
  /** The key a Lock answered with. */
  key: Uint8Array;
}

/** v3lockpb.UnlockResponse. */
export interface UnlockResponse {
  /** Response header of the deletion. */
  header: ResponseHeader;
}

/** v3electionpb.LeaderKey: who holds an election, as Campaign answers it. */
export interface LeaderKey {
  /** The election's name. */
  name: Uint8Array;
  /** The leader's key, `name/<lease ID in hex>`. */
  key: Uint8Array;
  /** The key's create revision (leadership holds while it is unchanged). */
  rev: number;
  /** The lease the key is attached to. */
  lease: bigint;
}

/** v3electionpb.CampaignRequest. */
export interface CampaignRequest {
  /** The election's name. */
  name: Uint8Array;
  /** The lease the candidate's key is attached to (0: a new 60 s lease is granted). */
  lease?: bigint;
  /** The value the candidate proclaims once elected. */
  value?: Uint8Array;
}

/** v3electionpb.CampaignResponse. */
export interface CampaignResponse {
  /** Response header of the campaign's first write. */
  header: ResponseHeader;
  /** The elected candidate's key. */
  leader: LeaderKey;
}

/** v3electionpb.ProclaimRequest. */
export interface ProclaimRequest {
  /** The leader's key, as Campaign answered it (required). */
  leader?: LeaderKey;
  /** The new value. */
  value?: Uint8Array;
}

/** v3electionpb.ProclaimResponse. */
export interface ProclaimResponse {
  /** Response header of the update. */
  header: ResponseHeader;
}

/** v3electionpb.LeaderRequest (Leader and Observe). */
export interface LeaderRequest {
  /** The election's name. */
  name: Uint8Array;
}

/** v3electionpb.LeaderResponse. */
export interface LeaderResponse {
  /** Response header. */
  header: ResponseHeader;
  /** The leader's key-value: the key under `name/` with the lowest create revision. */
  kv: KeyValue;
}

/** v3electionpb.ResignRequest. */
export interface ResignRequest {
  /** The leader's key, as Campaign answered it (required). */
  leader?: LeaderKey;
}

/** v3electionpb.ResignResponse. */
export interface ResignResponse {
  /** Response header. */
  header: ResponseHeader;
}

/**
 * Options of a watch in the embedded Store and the Client (`watch(key,
 * options)`), etcdctl's names: the range as in a get, then the create
 * request's fields.
 */
export interface WatchOptions {
  /** Watch every key starting with `key` (every key for an empty key). */
  prefix?: boolean;
  /** Watch every key ≥ `key`. */
  fromKey?: boolean;
  /** Watch [key, range_end). */
  range_end?: Uint8Array | string;
  /** First revision to deliver (inclusive); default: the revision after the current one. */
  startRevision?: number;
  /** Attach each event's previous key-value. */
  prevKv?: boolean;
  /** Event types to leave out. */
  filters?: WatchFilterType[];
  /** Get an empty batch after each idle progress interval (10 min by default). */
  progressNotify?: boolean;
  /** Ends the watch: the iteration finishes without error. */
  signal?: AbortSignal;
}

/**
 * What a watch yields: the events of one or more revisions in order (empty
 * for a progress notification), up to `revision`.
 */
export interface WatchBatch {
  /** Response header; `header.revision` is `revision`. */
  header: ResponseHeader;
  /** Every event up to this revision has been delivered. */
  revision: number;
  /** The events, in revision order; empty for a progress notification. */
  events: Event[];
}

/**
 * One Watch call as a transport drives it: the client's requests go in, in
 * order, and its responses come out until the stream ends.
 */
export interface WatchStreamHandle {
  /** Handle one request (create, cancel or progress); resolves once it is handled. */
  request(req: WatchRequest): Promise<void>;
  /** The next response, waiting for one; undefined once the stream has ended. */
  next(): Promise<WatchResponse | undefined>;
  /** The next response if one is ready now, else undefined. */
  take(): WatchResponse | undefined;
  /** End the stream and its watchers. */
  close(): void;
}

/**
 * The credentials a transport received with a request: the token (gRPC
 * `token` metadata, the gateway's `Authorization` header) and the common
 * name of the client certificate verified at the TLS handshake.
 */
export interface Credentials {
  /** The auth token, as sent. */
  token?: string;
  /** The CN of the verified client certificate (used as the user name with --client-cert-auth). */
  commonName?: string;
}

/**
 * The KV and maintenance surface a server exposes to the gateway (and the
 * embedded API): etcd's KV service plus Maintenance.Status. Every method
 * rejects with an `EtcdError` from core/errors.ts on bad input.
 */
export interface KVService {
  /** etcd Range: the keys in [key, range_end) at a revision. */
  range(req: RangeRequest): Promise<RangeResponse>;
  /** etcd Put: set a key's value, creating a new revision. */
  put(req: PutRequest): Promise<PutResponse>;
  /** etcd DeleteRange: delete the keys in [key, range_end). */
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  /** etcd Txn: compares, then the success or failure requests, atomically. */
  txn(req: TxnRequest): Promise<TxnResponse>;
  /** etcd Compact: discard the key-value history before a revision. */
  compact(req: CompactionRequest): Promise<CompactionResponse>;
  /** etcd Maintenance.Status of this member. */
  status(): Promise<StatusResponse>;
}
