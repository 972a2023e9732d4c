/**
 * Schema-driven proto3-JSON codec for etcd's v3 messages, in both
 * directions, exactly as etcd 3.4's JSON gateway (grpc-gateway v1 with
 * golang/protobuf `jsonpb`, `OrigName: true`) reads and writes them.
 *
 * - {@linkcode toJson}: cairn's internal message (core/api/types.ts) → the
 *   gateway's JSON object. Proto field names (`ID`, `TTL`, `dbSize` where the
 *   proto spells them so), int64/uint64 as decimal strings, bytes as standard
 *   padded base64, zero values omitted (a set oneof member is always written,
 *   as jsonpb does), enums by name, fields in proto declaration order.
 * - {@linkcode fromJson}: gateway JSON → internal message. Accepts the proto
 *   name and the lowerCamel JSON name (the camel name wins when both are
 *   present, as in jsonpb), int64 as strings or numbers, `null` as "not
 *   set", and ignores unknown fields. Bad input throws an `EtcdError`
 *   (InvalidArgument, HTTP 400) whose message is the text etcd sends, e.g.
 *   `illegal base64 data at input byte 3`,
 *   `unknown value "FOO" for enum etcdserverpb.RangeRequest_SortOrder` or
 *   `json: cannot unmarshal bool into Go value of type int64`.
 *
 * Both directions share one schema table ({@linkcode SCHEMA}); watch, lease
 * and member messages are added as new entries there.
 *
 * Numbers: a JSON number may arrive as a plain JS `number` (e.g. from
 * `JSON.parse`) or as a {@linkcode JsonNumber} carrying the literal text (from
 * the gateway's parser, see `json.ts`), which keeps int64 precision and lets
 * the codec reject `1e2` or `1.5` as Go does.
 *
 * @example
 * ```ts
 * import { fromJson, toJson } from "./codec.ts";
 * const req = fromJson("RangeRequest", { key: "YQ==", limit: "10" });
 * // req.key is Uint8Array [0x61], req.limit is 10
 * const json = toJson("RangeRequest", req); // { key: "YQ==", limit: "10" }
 * ```
 *
 * @module
 */

import { Errors } from "../errors.ts";
import type {
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  AuthenticateRequest,
  AuthenticateResponse,
  AuthHeaderResponse,
  AuthNameRequest,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionRequest,
  AuthRoleRequest,
  AuthRoleRevokePermissionRequest,
  AuthRolesResponse,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserGrantRoleRequest,
  AuthUserListResponse,
  AuthUserRevokeRoleRequest,
  CampaignRequest,
  CampaignResponse,
  CompactionRequest,
  CompactionResponse,
  Compare,
  DefragmentRequest,
  DefragmentResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Empty,
  Event,
  HashKVRequest,
  HashKVResponse,
  HashRequest,
  HashResponse,
  KeyValue,
  LeaderKey,
  LeaderRequest,
  LeaderResponse,
  LeaseCheckpoint,
  LeaseCheckpointRequest,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesRequest,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseStatus,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  LockRequest,
  LockResponse,
  Member,
  MemberAddRequest,
  MemberAddResponse,
  MemberListRequest,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  Permission,
  ProclaimRequest,
  ProclaimResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResignRequest,
  ResignResponse,
  ResponseHeader,
  ResponseOp,
  SnapshotRequest,
  SnapshotResponse,
  StatusRequest,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  UnlockRequest,
  UnlockResponse,
  UserAddOptions,
  WatchCancelRequest,
  WatchCreateRequest,
  WatchProgressRequest,
  WatchRequest,
  WatchResponse,
} from "./types.ts";
import { decodeGoBase64, encodeBase64 } from "./base64.ts";
import { goQuoteString, JsonNumber, JsonString, parseGoJson } from "./json.ts";

/** The internal (TypeScript) type of each message the codec knows. */
export interface MessageTypes {
  /** etcd's `KeyValue`. */
  KeyValue: KeyValue;
  /** etcd's `ResponseHeader`. */
  ResponseHeader: ResponseHeader;
  /** etcd's `mvccpb.Event`. */
  Event: Event;
  /** etcd's `WatchRequest`. */
  WatchRequest: WatchRequest;
  /** etcd's `WatchCreateRequest`. */
  WatchCreateRequest: WatchCreateRequest;
  /** etcd's `WatchCancelRequest`. */
  WatchCancelRequest: WatchCancelRequest;
  /** etcd's `WatchProgressRequest`. */
  WatchProgressRequest: WatchProgressRequest;
  /** etcd's `WatchResponse`. */
  WatchResponse: WatchResponse;
  /** etcd's `LeaseGrantRequest`. */
  LeaseGrantRequest: LeaseGrantRequest;
  /** etcd's `LeaseGrantResponse`. */
  LeaseGrantResponse: LeaseGrantResponse;
  /** etcd's `LeaseRevokeRequest`. */
  LeaseRevokeRequest: LeaseRevokeRequest;
  /** etcd's `LeaseRevokeResponse`. */
  LeaseRevokeResponse: LeaseRevokeResponse;
  /** etcd's `LeaseCheckpoint`. */
  LeaseCheckpoint: LeaseCheckpoint;
  /** etcd's `LeaseCheckpointRequest`. */
  LeaseCheckpointRequest: LeaseCheckpointRequest;
  /** etcd's `LeaseKeepAliveRequest`. */
  LeaseKeepAliveRequest: LeaseKeepAliveRequest;
  /** etcd's `LeaseKeepAliveResponse`. */
  LeaseKeepAliveResponse: LeaseKeepAliveResponse;
  /** etcd's `LeaseTimeToLiveRequest`. */
  LeaseTimeToLiveRequest: LeaseTimeToLiveRequest;
  /** etcd's `LeaseTimeToLiveResponse`. */
  LeaseTimeToLiveResponse: LeaseTimeToLiveResponse;
  /** etcd's `LeaseLeasesRequest`. */
  LeaseLeasesRequest: LeaseLeasesRequest;
  /** etcd's `LeaseStatus`. */
  LeaseStatus: LeaseStatus;
  /** etcd's `LeaseLeasesResponse`. */
  LeaseLeasesResponse: LeaseLeasesResponse;
  /** etcd's `v3lockpb.LockRequest`. */
  LockRequest: LockRequest;
  /** etcd's `v3lockpb.LockResponse`. */
  LockResponse: LockResponse;
  /** etcd's `v3lockpb.UnlockRequest`. */
  UnlockRequest: UnlockRequest;
  /** etcd's `v3lockpb.UnlockResponse`. */
  UnlockResponse: UnlockResponse;
  /** etcd's `v3electionpb.LeaderKey`. */
  LeaderKey: LeaderKey;
  /** etcd's `v3electionpb.CampaignRequest`. */
  CampaignRequest: CampaignRequest;
  /** etcd's `v3electionpb.CampaignResponse`. */
  CampaignResponse: CampaignResponse;
  /** etcd's `v3electionpb.ProclaimRequest`. */
  ProclaimRequest: ProclaimRequest;
  /** etcd's `v3electionpb.ProclaimResponse`. */
  ProclaimResponse: ProclaimResponse;
  /** etcd's `v3electionpb.LeaderRequest`. */
  LeaderRequest: LeaderRequest;
  /** etcd's `v3electionpb.LeaderResponse`. */
  LeaderResponse: LeaderResponse;
  /** etcd's `v3electionpb.ResignRequest`. */
  ResignRequest: ResignRequest;
  /** etcd's `v3electionpb.ResignResponse`. */
  ResignResponse: ResignResponse;

  /** etcd's `RangeRequest`. */
  RangeRequest: RangeRequest;
  /** etcd's `RangeResponse`. */
  RangeResponse: RangeResponse;
  /** etcd's `PutRequest`. */
  PutRequest: PutRequest;
  /** etcd's `PutResponse`. */
  PutResponse: PutResponse;
  /** etcd's `DeleteRangeRequest`. */
  DeleteRangeRequest: DeleteRangeRequest;
  /** etcd's `DeleteRangeResponse`. */
  DeleteRangeResponse: DeleteRangeResponse;
  /** etcd's `Compare`. */
  Compare: Compare;
  /** etcd's `RequestOp`. */
  RequestOp: RequestOp;
  /** etcd's `ResponseOp`. */
  ResponseOp: ResponseOp;
  /** etcd's `TxnRequest`. */
  TxnRequest: TxnRequest;
  /** etcd's `TxnResponse`. */
  TxnResponse: TxnResponse;
  /** etcd's `CompactionRequest`. */
  CompactionRequest: CompactionRequest;
  /** etcd's `CompactionResponse`. */
  CompactionResponse: CompactionResponse;
  /** etcd's `StatusRequest`. */
  StatusRequest: StatusRequest;
  /** etcd's `StatusResponse`. */
  StatusResponse: StatusResponse;
  /** etcd's `Member`. */
  Member: Member;
  /** etcd's `MemberAddRequest`. */
  MemberAddRequest: MemberAddRequest;
  /** etcd's `MemberAddResponse`. */
  MemberAddResponse: MemberAddResponse;
  /** etcd's `MemberRemoveRequest`. */
  MemberRemoveRequest: MemberRemoveRequest;
  /** etcd's `MemberRemoveResponse`. */
  MemberRemoveResponse: MemberRemoveResponse;
  /** etcd's `MemberUpdateRequest`. */
  MemberUpdateRequest: MemberUpdateRequest;
  /** etcd's `MemberUpdateResponse`. */
  MemberUpdateResponse: MemberUpdateResponse;
  /** etcd's `MemberListRequest`. */
  MemberListRequest: MemberListRequest;
  /** etcd's `MemberListResponse`. */
  MemberListResponse: MemberListResponse;
  /** etcd's `MemberPromoteRequest`. */
  MemberPromoteRequest: MemberPromoteRequest;
  /** etcd's `MemberPromoteResponse`. */
  MemberPromoteResponse: MemberPromoteResponse;
  /** etcd's `MoveLeaderRequest`. */
  MoveLeaderRequest: MoveLeaderRequest;
  /** etcd's `MoveLeaderResponse`. */
  MoveLeaderResponse: MoveLeaderResponse;
  /** etcd's `AlarmRequest`. */
  AlarmRequest: AlarmRequest;
  /** etcd's `AlarmMember`. */
  AlarmMember: AlarmMember;
  /** etcd's `AlarmResponse`. */
  AlarmResponse: AlarmResponse;
  /** etcd's `DefragmentRequest`. */
  DefragmentRequest: DefragmentRequest;
  /** etcd's `DefragmentResponse`. */
  DefragmentResponse: DefragmentResponse;
  /** etcd's `HashRequest`. */
  HashRequest: HashRequest;
  /** etcd's `HashResponse`. */
  HashResponse: HashResponse;
  /** etcd's `HashKVRequest`. */
  HashKVRequest: HashKVRequest;
  /** etcd's `HashKVResponse`. */
  HashKVResponse: HashKVResponse;
  /** etcd's `SnapshotRequest`. */
  SnapshotRequest: SnapshotRequest;
  /** etcd's `SnapshotResponse`. */
  SnapshotResponse: SnapshotResponse;
  /** etcd's `AuthenticateRequest`. */
  AuthenticateRequest: AuthenticateRequest;
  /** etcd's `AuthenticateResponse`. */
  AuthenticateResponse: AuthenticateResponse;
  /** etcd's `AuthEnableRequest`. */
  AuthEnableRequest: Empty;
  /** etcd's `AuthDisableRequest`. */
  AuthDisableRequest: Empty;
  /** etcd's `AuthUserListRequest`. */
  AuthUserListRequest: Empty;
  /** etcd's `AuthRoleListRequest`. */
  AuthRoleListRequest: Empty;
  /** etcd's `AuthUserAddRequest`. */
  AuthUserAddRequest: AuthUserAddRequest;
  /** etcd's `UserAddOptions`. */
  UserAddOptions: UserAddOptions;
  /** etcd's `Permission`. */
  Permission: Permission;
  /** etcd's `AuthUserGetRequest`. */
  AuthUserGetRequest: AuthNameRequest;
  /** etcd's `AuthUserDeleteRequest`. */
  AuthUserDeleteRequest: AuthNameRequest;
  /** etcd's `AuthRoleAddRequest`. */
  AuthRoleAddRequest: AuthNameRequest;
  /** etcd's `AuthUserChangePasswordRequest`. */
  AuthUserChangePasswordRequest: AuthUserChangePasswordRequest;
  /** etcd's `AuthUserGrantRoleRequest`. */
  AuthUserGrantRoleRequest: AuthUserGrantRoleRequest;
  /** etcd's `AuthUserRevokeRoleRequest`. */
  AuthUserRevokeRoleRequest: AuthUserRevokeRoleRequest;
  /** etcd's `AuthRoleGetRequest`. */
  AuthRoleGetRequest: AuthRoleRequest;
  /** etcd's `AuthRoleDeleteRequest`. */
  AuthRoleDeleteRequest: AuthRoleRequest;
  /** etcd's `AuthRoleGrantPermissionRequest`. */
  AuthRoleGrantPermissionRequest: AuthRoleGrantPermissionRequest;
  /** etcd's `AuthRoleRevokePermissionRequest`. */
  AuthRoleRevokePermissionRequest: AuthRoleRevokePermissionRequest;
  /** etcd's `AuthEnableResponse`. */
  AuthEnableResponse: AuthHeaderResponse;
  /** etcd's `AuthDisableResponse`. */
  AuthDisableResponse: AuthHeaderResponse;
  /** etcd's `AuthUserAddResponse`. */
  AuthUserAddResponse: AuthHeaderResponse;
  /** etcd's `AuthUserDeleteResponse`. */
  AuthUserDeleteResponse: AuthHeaderResponse;
  /** etcd's `AuthUserChangePasswordResponse`. */
  AuthUserChangePasswordResponse: AuthHeaderResponse;
  /** etcd's `AuthUserGrantRoleResponse`. */
  AuthUserGrantRoleResponse: AuthHeaderResponse;
  /** etcd's `AuthUserRevokeRoleResponse`. */
  AuthUserRevokeRoleResponse: AuthHeaderResponse;
  /** etcd's `AuthRoleAddResponse`. */
  AuthRoleAddResponse: AuthHeaderResponse;
  /** etcd's `AuthRoleDeleteResponse`. */
  AuthRoleDeleteResponse: AuthHeaderResponse;
  /** etcd's `AuthRoleGrantPermissionResponse`. */
  AuthRoleGrantPermissionResponse: AuthHeaderResponse;
  /** etcd's `AuthRoleRevokePermissionResponse`. */
  AuthRoleRevokePermissionResponse: AuthHeaderResponse;
  /** etcd's `AuthUserGetResponse`. */
  AuthUserGetResponse: AuthRolesResponse;
  /** etcd's `AuthRoleListResponse`. */
  AuthRoleListResponse: AuthRolesResponse;
  /** etcd's `AuthUserListResponse`. */
  AuthUserListResponse: AuthUserListResponse;
  /** etcd's `AuthRoleGetResponse`. */
  AuthRoleGetResponse: AuthRoleGetResponse;
}

/** Name of a message in {@linkcode SCHEMA}. */
export type MessageName = keyof MessageTypes;

/**
 * Scalar kinds. `int64`/`uint64` are JS numbers internally (revisions,
 * counts, sizes); `int64n`/`uint64n` are bigints (lease, member and cluster
 * IDs). All four are decimal strings on the wire. `uint32` is a JSON number
 * on the wire (e.g. `hash`).
 */
export type ScalarKind =
  | "bytes"
  | "string"
  | "bool"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "int64n"
  | "uint64n";

/** An enum: its Go type name (as etcd's error messages spell it) and values by number. */
export interface EnumSpec {
  /** e.g. `etcdserverpb.RangeRequest_SortOrder`. */
  goName: string;
  /** Value names indexed by their number. */
  values: readonly string[];
}

/** One field of a message, in proto declaration order. */
export interface FieldSpec {
  /** Proto field name; also the internal property name and the output name. */
  name: string;
  /** Proto field number (the protobuf encoding, core/api/proto.ts, and `protoSize`). */
  no: number;
  /** A scalar field's kind (exactly one of scalar, enum, message is set). */
  scalar?: ScalarKind;
  /** An enum field's enum. */
  enum?: EnumSpec;
  /** A message field's message. */
  message?: MessageName;
  /** A repeated field (a JSON array; an array internally). */
  repeated?: boolean;
  /** Name of the oneof this field belongs to. */
  oneof?: string;
}

/** A message: its fields in declaration order. */
export interface MessageSpec {
  /** The fields in declaration order. */
  fields: readonly FieldSpec[];
}

const SortOrder: EnumSpec = {
  goName: "etcdserverpb.RangeRequest_SortOrder",
  values: ["NONE", "ASCEND", "DESCEND"],
};
const SortTarget: EnumSpec = {
  goName: "etcdserverpb.RangeRequest_SortTarget",
  values: ["KEY", "VERSION", "CREATE", "MOD", "VALUE"],
};
const CompareResult: EnumSpec = {
  goName: "etcdserverpb.Compare_CompareResult",
  values: ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"],
};
const CompareTarget: EnumSpec = {
  goName: "etcdserverpb.Compare_CompareTarget",
  values: ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"],
};

const EventType: EnumSpec = {
  goName: "mvccpb.Event_EventType",
  values: ["PUT", "DELETE"],
};
const FilterType: EnumSpec = {
  goName: "etcdserverpb.WatchCreateRequest_FilterType",
  values: ["NOPUT", "NODELETE"],
};
const PermissionType: EnumSpec = {
  goName: "authpb.Permission_Type",
  values: ["READ", "WRITE", "READWRITE"],
};
const AlarmAction: EnumSpec = {
  goName: "etcdserverpb.AlarmRequest_AlarmAction",
  values: ["GET", "ACTIVATE", "DEACTIVATE"],
};
const AlarmType: EnumSpec = {
  goName: "etcdserverpb.AlarmType",
  values: ["NONE", "NOSPACE", "CORRUPT"],
};

/**
 * The message table, transcribed from etcd 3.4's `etcdserverpb/rpc.proto`,
 * `mvccpb/kv.proto`, `v3lockpb/v3lock.proto` and
 * `v3electionpb/v3election.proto`. Field order is declaration order, which
 * is the order jsonpb writes fields in.
 */
export const SCHEMA: { readonly [K in MessageName]: MessageSpec } = {
  KeyValue: {
    fields: [
      { name: "key", no: 1, scalar: "bytes" },
      { name: "create_revision", no: 2, scalar: "int64" },
      { name: "mod_revision", no: 3, scalar: "int64" },
      { name: "version", no: 4, scalar: "int64" },
      { name: "value", no: 5, scalar: "bytes" },
      { name: "lease", no: 6, scalar: "int64n" },
    ],
  },
  ResponseHeader: {
    fields: [
      { name: "cluster_id", no: 1, scalar: "uint64n" },
      { name: "member_id", no: 2, scalar: "uint64n" },
      { name: "revision", no: 3, scalar: "int64" },
      { name: "raft_term", no: 4, scalar: "uint64" },
    ],
  },
  Event: {
    fields: [
      { name: "type", no: 1, enum: EventType },
      { name: "kv", no: 2, message: "KeyValue" },
      { name: "prev_kv", no: 3, message: "KeyValue" },
    ],
  },
  WatchRequest: {
    fields: [
      { name: "create_request", no: 1, message: "WatchCreateRequest", oneof: "request_union" },
      { name: "cancel_request", no: 2, message: "WatchCancelRequest", oneof: "request_union" },
      { name: "progress_request", no: 3, message: "WatchProgressRequest", oneof: "request_union" },
    ],
  },
  WatchCreateRequest: {
    fields: [
      { name: "key", no: 1, scalar: "bytes" },
      { name: "range_end", no: 2, scalar: "bytes" },
      { name: "start_revision", no: 3, scalar: "int64" },
      { name: "progress_notify", no: 4, scalar: "bool" },
      { name: "filters", no: 5, enum: FilterType, repeated: true },
      { name: "prev_kv", no: 6, scalar: "bool" },
      { name: "watch_id", no: 7, scalar: "int64" },
      { name: "fragment", no: 8, scalar: "bool" },
    ],
  },
  WatchCancelRequest: {
    fields: [{ name: "watch_id", no: 1, scalar: "int64" }],
  },
  WatchProgressRequest: { fields: [] },
  WatchResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "watch_id", no: 2, scalar: "int64" },
      { name: "created", no: 3, scalar: "bool" },
      { name: "canceled", no: 4, scalar: "bool" },
      { name: "compact_revision", no: 5, scalar: "int64" },
      { name: "cancel_reason", no: 6, scalar: "string" },
      { name: "fragment", no: 7, scalar: "bool" },
      { name: "events", no: 11, message: "Event", repeated: true },
    ],
  },
  LeaseGrantRequest: {
    fields: [
      { name: "TTL", no: 1, scalar: "int64" },
      { name: "ID", no: 2, scalar: "int64n" },
    ],
  },
  LeaseGrantResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "ID", no: 2, scalar: "int64n" },
      { name: "TTL", no: 3, scalar: "int64" },
      { name: "error", no: 4, scalar: "string" },
    ],
  },
  LeaseRevokeRequest: { fields: [{ name: "ID", no: 1, scalar: "int64n" }] },
  LeaseRevokeResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  LeaseCheckpoint: {
    fields: [
      { name: "ID", no: 1, scalar: "int64n" },
      { name: "remaining_TTL", no: 2, scalar: "int64" },
    ],
  },
  LeaseCheckpointRequest: {
    fields: [{ name: "checkpoints", no: 1, message: "LeaseCheckpoint", repeated: true }],
  },
  LeaseKeepAliveRequest: { fields: [{ name: "ID", no: 1, scalar: "int64n" }] },
  LeaseKeepAliveResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "ID", no: 2, scalar: "int64n" },
      { name: "TTL", no: 3, scalar: "int64" },
    ],
  },
  LeaseTimeToLiveRequest: {
    fields: [
      { name: "ID", no: 1, scalar: "int64n" },
      { name: "keys", no: 2, scalar: "bool" },
    ],
  },
  LeaseTimeToLiveResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "ID", no: 2, scalar: "int64n" },
      { name: "TTL", no: 3, scalar: "int64" },
      { name: "grantedTTL", no: 4, scalar: "int64" },
      { name: "keys", no: 5, scalar: "bytes", repeated: true },
    ],
  },
  LeaseLeasesRequest: { fields: [] },
  LeaseStatus: { fields: [{ name: "ID", no: 1, scalar: "int64n" }] },
  LeaseLeasesResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "leases", no: 2, message: "LeaseStatus", repeated: true },
    ],
  },
  // v3lockpb (etcdserver/api/v3lock/v3lockpb/v3lock.proto)
  LockRequest: {
    fields: [
      { name: "name", no: 1, scalar: "bytes" },
      { name: "lease", no: 2, scalar: "int64n" },
    ],
  },
  LockResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "key", no: 2, scalar: "bytes" },
    ],
  },
  UnlockRequest: { fields: [{ name: "key", no: 1, scalar: "bytes" }] },
  UnlockResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  // v3electionpb (etcdserver/api/v3election/v3electionpb/v3election.proto)
  LeaderKey: {
    fields: [
      { name: "name", no: 1, scalar: "bytes" },
      { name: "key", no: 2, scalar: "bytes" },
      { name: "rev", no: 3, scalar: "int64" },
      { name: "lease", no: 4, scalar: "int64n" },
    ],
  },
  CampaignRequest: {
    fields: [
      { name: "name", no: 1, scalar: "bytes" },
      { name: "lease", no: 2, scalar: "int64n" },
      { name: "value", no: 3, scalar: "bytes" },
    ],
  },
  CampaignResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "leader", no: 2, message: "LeaderKey" },
    ],
  },
  ProclaimRequest: {
    fields: [
      { name: "leader", no: 1, message: "LeaderKey" },
      { name: "value", no: 2, scalar: "bytes" },
    ],
  },
  ProclaimResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  LeaderRequest: { fields: [{ name: "name", no: 1, scalar: "bytes" }] },
  LeaderResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "kv", no: 2, message: "KeyValue" },
    ],
  },
  ResignRequest: { fields: [{ name: "leader", no: 1, message: "LeaderKey" }] },
  ResignResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  RangeRequest: {
    fields: [
      { name: "key", no: 1, scalar: "bytes" },
      { name: "range_end", no: 2, scalar: "bytes" },
      { name: "limit", no: 3, scalar: "int64" },
      { name: "revision", no: 4, scalar: "int64" },
      { name: "sort_order", no: 5, enum: SortOrder },
      { name: "sort_target", no: 6, enum: SortTarget },
      { name: "serializable", no: 7, scalar: "bool" },
      { name: "keys_only", no: 8, scalar: "bool" },
      { name: "count_only", no: 9, scalar: "bool" },
      { name: "min_mod_revision", no: 10, scalar: "int64" },
      { name: "max_mod_revision", no: 11, scalar: "int64" },
      { name: "min_create_revision", no: 12, scalar: "int64" },
      { name: "max_create_revision", no: 13, scalar: "int64" },
    ],
  },
  RangeResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "kvs", no: 2, message: "KeyValue", repeated: true },
      { name: "more", no: 3, scalar: "bool" },
      { name: "count", no: 4, scalar: "int64" },
    ],
  },
  PutRequest: {
    fields: [
      { name: "key", no: 1, scalar: "bytes" },
      { name: "value", no: 2, scalar: "bytes" },
      { name: "lease", no: 3, scalar: "int64n" },
      { name: "prev_kv", no: 4, scalar: "bool" },
      { name: "ignore_value", no: 5, scalar: "bool" },
      { name: "ignore_lease", no: 6, scalar: "bool" },
    ],
  },
  PutResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "prev_kv", no: 2, message: "KeyValue" },
    ],
  },
  DeleteRangeRequest: {
    fields: [
      { name: "key", no: 1, scalar: "bytes" },
      { name: "range_end", no: 2, scalar: "bytes" },
      { name: "prev_kv", no: 3, scalar: "bool" },
    ],
  },
  DeleteRangeResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "deleted", no: 2, scalar: "int64" },
      { name: "prev_kvs", no: 3, message: "KeyValue", repeated: true },
    ],
  },
  Compare: {
    fields: [
      { name: "result", no: 1, enum: CompareResult },
      { name: "target", no: 2, enum: CompareTarget },
      { name: "key", no: 3, scalar: "bytes" },
      { name: "version", no: 4, scalar: "int64", oneof: "target_union" },
      { name: "create_revision", no: 5, scalar: "int64", oneof: "target_union" },
      { name: "mod_revision", no: 6, scalar: "int64", oneof: "target_union" },
      { name: "value", no: 7, scalar: "bytes", oneof: "target_union" },
      { name: "lease", no: 8, scalar: "int64n", oneof: "target_union" },
      { name: "range_end", no: 64, scalar: "bytes" },
    ],
  },
  RequestOp: {
    fields: [
      { name: "request_range", no: 1, message: "RangeRequest", oneof: "request" },
      { name: "request_put", no: 2, message: "PutRequest", oneof: "request" },
      { name: "request_delete_range", no: 3, message: "DeleteRangeRequest", oneof: "request" },
      { name: "request_txn", no: 4, message: "TxnRequest", oneof: "request" },
    ],
  },
  ResponseOp: {
    fields: [
      { name: "response_range", no: 1, message: "RangeResponse", oneof: "response" },
      { name: "response_put", no: 2, message: "PutResponse", oneof: "response" },
      { name: "response_delete_range", no: 3, message: "DeleteRangeResponse", oneof: "response" },
      { name: "response_txn", no: 4, message: "TxnResponse", oneof: "response" },
    ],
  },
  TxnRequest: {
    fields: [
      { name: "compare", no: 1, message: "Compare", repeated: true },
      { name: "success", no: 2, message: "RequestOp", repeated: true },
      { name: "failure", no: 3, message: "RequestOp", repeated: true },
    ],
  },
  TxnResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "succeeded", no: 2, scalar: "bool" },
      { name: "responses", no: 3, message: "ResponseOp", repeated: true },
    ],
  },
  CompactionRequest: {
    fields: [
      { name: "revision", no: 1, scalar: "int64" },
      { name: "physical", no: 2, scalar: "bool" },
    ],
  },
  CompactionResponse: {
    fields: [{ name: "header", no: 1, message: "ResponseHeader" }],
  },
  StatusRequest: { fields: [] },
  StatusResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "version", no: 2, scalar: "string" },
      { name: "dbSize", no: 3, scalar: "int64" },
      { name: "leader", no: 4, scalar: "uint64n" },
      { name: "raftIndex", no: 5, scalar: "uint64" },
      { name: "raftTerm", no: 6, scalar: "uint64" },
      { name: "raftAppliedIndex", no: 7, scalar: "uint64" },
      { name: "errors", no: 8, scalar: "string", repeated: true },
      { name: "dbSizeInUse", no: 9, scalar: "int64" },
      { name: "isLearner", no: 10, scalar: "bool" },
    ],
  },
  Member: {
    fields: [
      { name: "ID", no: 1, scalar: "uint64n" },
      { name: "name", no: 2, scalar: "string" },
      { name: "peerURLs", no: 3, scalar: "string", repeated: true },
      { name: "clientURLs", no: 4, scalar: "string", repeated: true },
      { name: "isLearner", no: 5, scalar: "bool" },
    ],
  },
  MemberAddRequest: {
    fields: [
      { name: "peerURLs", no: 1, scalar: "string", repeated: true },
      { name: "isLearner", no: 2, scalar: "bool" },
    ],
  },
  MemberAddResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "member", no: 2, message: "Member" },
      { name: "members", no: 3, message: "Member", repeated: true },
    ],
  },
  MemberRemoveRequest: { fields: [{ name: "ID", no: 1, scalar: "uint64n" }] },
  MemberRemoveResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "members", no: 2, message: "Member", repeated: true },
    ],
  },
  MemberUpdateRequest: {
    fields: [
      { name: "ID", no: 1, scalar: "uint64n" },
      { name: "peerURLs", no: 2, scalar: "string", repeated: true },
    ],
  },
  MemberUpdateResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "members", no: 2, message: "Member", repeated: true },
    ],
  },
  MemberListRequest: { fields: [] },
  MemberListResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "members", no: 2, message: "Member", repeated: true },
    ],
  },
  MemberPromoteRequest: { fields: [{ name: "ID", no: 1, scalar: "uint64n" }] },
  MemberPromoteResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "members", no: 2, message: "Member", repeated: true },
    ],
  },
  MoveLeaderRequest: { fields: [{ name: "targetID", no: 1, scalar: "uint64n" }] },
  MoveLeaderResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AlarmRequest: {
    fields: [
      { name: "action", no: 1, enum: AlarmAction },
      { name: "memberID", no: 2, scalar: "uint64n" },
      { name: "alarm", no: 3, enum: AlarmType },
    ],
  },
  AlarmMember: {
    fields: [
      { name: "memberID", no: 1, scalar: "uint64n" },
      { name: "alarm", no: 2, enum: AlarmType },
    ],
  },
  AlarmResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "alarms", no: 2, message: "AlarmMember", repeated: true },
    ],
  },
  DefragmentRequest: { fields: [] },
  DefragmentResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  HashRequest: { fields: [] },
  HashResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "hash", no: 2, scalar: "uint32" },
    ],
  },
  HashKVRequest: { fields: [{ name: "revision", no: 1, scalar: "int64" }] },
  HashKVResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "hash", no: 2, scalar: "uint32" },
      { name: "compact_revision", no: 3, scalar: "int64" },
    ],
  },
  SnapshotRequest: { fields: [] },
  SnapshotResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "remaining_bytes", no: 2, scalar: "uint64" },
      { name: "blob", no: 3, scalar: "bytes" },
    ],
  },
  AuthenticateRequest: {
    fields: [
      { name: "name", no: 1, scalar: "string" },
      { name: "password", no: 2, scalar: "string" },
    ],
  },
  AuthenticateResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "token", no: 2, scalar: "string" },
    ],
  },
  AuthEnableRequest: { fields: [] },
  AuthDisableRequest: { fields: [] },
  AuthUserListRequest: { fields: [] },
  AuthRoleListRequest: { fields: [] },
  AuthUserAddRequest: {
    fields: [
      { name: "name", no: 1, scalar: "string" },
      { name: "password", no: 2, scalar: "string" },
      { name: "options", no: 3, message: "UserAddOptions" },
    ],
  },
  UserAddOptions: { fields: [{ name: "no_password", no: 1, scalar: "bool" }] },
  Permission: {
    fields: [
      { name: "permType", no: 1, enum: PermissionType },
      { name: "key", no: 2, scalar: "bytes" },
      { name: "range_end", no: 3, scalar: "bytes" },
    ],
  },
  AuthUserGetRequest: { fields: [{ name: "name", no: 1, scalar: "string" }] },
  AuthUserDeleteRequest: { fields: [{ name: "name", no: 1, scalar: "string" }] },
  AuthRoleAddRequest: { fields: [{ name: "name", no: 1, scalar: "string" }] },
  AuthUserChangePasswordRequest: {
    fields: [
      { name: "name", no: 1, scalar: "string" },
      { name: "password", no: 2, scalar: "string" },
    ],
  },
  AuthUserGrantRoleRequest: {
    fields: [
      { name: "user", no: 1, scalar: "string" },
      { name: "role", no: 2, scalar: "string" },
    ],
  },
  AuthUserRevokeRoleRequest: {
    fields: [
      { name: "name", no: 1, scalar: "string" },
      { name: "role", no: 2, scalar: "string" },
    ],
  },
  AuthRoleGetRequest: { fields: [{ name: "role", no: 1, scalar: "string" }] },
  AuthRoleDeleteRequest: { fields: [{ name: "role", no: 1, scalar: "string" }] },
  AuthRoleGrantPermissionRequest: {
    fields: [
      { name: "name", no: 1, scalar: "string" },
      { name: "perm", no: 2, message: "Permission" },
    ],
  },
  AuthRoleRevokePermissionRequest: {
    fields: [
      { name: "role", no: 1, scalar: "string" },
      { name: "key", no: 2, scalar: "bytes" },
      { name: "range_end", no: 3, scalar: "bytes" },
    ],
  },
  AuthEnableResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthDisableResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthUserAddResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthUserDeleteResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthUserChangePasswordResponse: {
    fields: [{ name: "header", no: 1, message: "ResponseHeader" }],
  },
  AuthUserGrantRoleResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthUserRevokeRoleResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthRoleAddResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthRoleDeleteResponse: { fields: [{ name: "header", no: 1, message: "ResponseHeader" }] },
  AuthRoleGrantPermissionResponse: {
    fields: [{ name: "header", no: 1, message: "ResponseHeader" }],
  },
  AuthRoleRevokePermissionResponse: {
    fields: [{ name: "header", no: 1, message: "ResponseHeader" }],
  },
  AuthUserGetResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "roles", no: 2, scalar: "string", repeated: true },
    ],
  },
  AuthRoleListResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "roles", no: 2, scalar: "string", repeated: true },
    ],
  },
  AuthUserListResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "users", no: 2, scalar: "string", repeated: true },
    ],
  },
  AuthRoleGetResponse: {
    fields: [
      { name: "header", no: 1, message: "ResponseHeader" },
      { name: "perm", no: 2, message: "Permission", repeated: true },
    ],
  },
};

/**
 * The lowerCamel JSON name protoc derives from a proto field name
 * (`prev_kv` → `prevKv`, `ID` → `ID`): underscores dropped, the letter after
 * each one upper-cased.
 */
export function jsonName(protoName: string): string {
  let name = jsonNames.get(protoName);
  if (name === undefined) {
    name = protoName.replace(
      /_([a-z0-9])?/g,
      (_m, c: string | undefined) => c ? c.toUpperCase() : "",
    );
    jsonNames.set(protoName, name);
  }
  return name;
}

const jsonNames = new Map<string, string>();

// ---------------------------------------------------------------------------
// Encoding: internal → JSON
// ---------------------------------------------------------------------------

/**
 * Encodes an internal message as etcd 3.4's gateway JSON object (ready for
 * `JSON.stringify`, which then yields etcd's bytes except for Go's HTML
 * escaping of `<`, `>` and `&`, which only string fields can carry; see
 * {@linkcode stringifyGo}). Zero values are omitted; `undefined` fields count
 * as zero. Throws a `TypeError` if a field holds a value of the wrong type.
 */
export function toJson<K extends MessageName>(
  type: K,
  value: MessageTypes[K],
): Record<string, unknown> {
  return encodeMessage(type, value as unknown as Record<string, unknown>);
}

function encodeMessage(type: MessageName, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const spec = SCHEMA[type];
  let oneofDone: Set<string> | undefined;
  for (const f of spec.fields) {
    const v = value[f.name];
    if (f.oneof !== undefined) {
      // A set oneof member is written even when its value is the zero value.
      if (v === undefined || v === null || oneofDone?.has(f.oneof)) continue;
      (oneofDone ??= new Set()).add(f.oneof);
      out[f.name] = encodeField(f, v, true);
      continue;
    }
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v)) throw new TypeError(`${type}.${f.name}: expected an array`);
      if (v.length === 0) continue;
      out[f.name] = v.map((e) => encodeField(f, e, true));
      continue;
    }
    const e = encodeField(f, v, false);
    if (e !== undefined) out[f.name] = e;
  }
  return out;
}

/** Encodes one value of a field; `undefined` means "zero, omit" (unless `force`). */
function encodeField(f: FieldSpec, v: unknown, force: boolean): unknown {
  if (f.message !== undefined) return encodeMessage(f.message, v as Record<string, unknown>);
  if (f.enum !== undefined) {
    const idx = typeof v === "number" ? v : f.enum.values.indexOf(v as string);
    if (idx < 0) throw new TypeError(`${f.name}: unknown ${f.enum.goName} value ${String(v)}`);
    if (idx === 0 && !force) return undefined;
    return f.enum.values[idx] ?? idx;
  }
  switch (f.scalar) {
    case "bytes": {
      if (!(v instanceof Uint8Array)) throw new TypeError(`${f.name}: expected a Uint8Array`);
      if (v.length === 0 && !force) return undefined;
      return encodeBase64(v);
    }
    case "string":
      if (typeof v !== "string") throw new TypeError(`${f.name}: expected a string`);
      return v === "" && !force ? undefined : v;
    case "bool":
      if (typeof v !== "boolean") throw new TypeError(`${f.name}: expected a boolean`);
      return !v && !force ? undefined : v;
    case "int32":
    case "uint32":
      if (typeof v !== "number") throw new TypeError(`${f.name}: expected a number`);
      return v === 0 && !force ? undefined : v;
    case "int64":
    case "uint64":
    case "int64n":
    case "uint64n": {
      if (typeof v !== "number" && typeof v !== "bigint") {
        throw new TypeError(`${f.name}: expected a number or bigint`);
      }
      // deno-lint-ignore eqeqeq
      if (v == 0 && !force) return undefined;
      return typeof v === "bigint" ? v.toString() : Number.isInteger(v) ? v.toFixed(0) : String(v);
    }
  }
  throw new TypeError(`${f.name}: field has no type`);
}

/**
 * `JSON.stringify(toJson("KeyValue", kv))`, written directly: the hot path
 * of range responses (no intermediate object, monomorphic field access).
 */
export function keyValueJson(kv: KeyValue): string {
  let s = "{";
  let sep = "";
  if (kv.key.length !== 0) {
    s += '"key":"' + encodeBase64(kv.key) + '"';
    sep = ",";
  }
  if (kv.create_revision) {
    s += sep + '"create_revision":"' + int64Text(kv.create_revision) + '"';
    sep = ",";
  }
  if (kv.mod_revision) {
    s += sep + '"mod_revision":"' + int64Text(kv.mod_revision) + '"';
    sep = ",";
  }
  if (kv.version) {
    s += sep + '"version":"' + int64Text(kv.version) + '"';
    sep = ",";
  }
  if (kv.value !== undefined && kv.value.length !== 0) {
    s += sep + '"value":"' + encodeBase64(kv.value) + '"';
    sep = ",";
  }
  if (kv.lease) s += sep + '"lease":"' + kv.lease.toString() + '"';
  return s + "}";
}

/** `JSON.stringify(toJson("ResponseHeader", h))`, written directly. */
export function responseHeaderJson(h: ResponseHeader): string {
  let s = "{";
  let sep = "";
  if (h.cluster_id) {
    s += '"cluster_id":"' + h.cluster_id.toString() + '"';
    sep = ",";
  }
  if (h.member_id) {
    s += sep + '"member_id":"' + h.member_id.toString() + '"';
    sep = ",";
  }
  if (h.revision) {
    s += sep + '"revision":"' + int64Text(h.revision) + '"';
    sep = ",";
  }
  if (h.raft_term) s += sep + '"raft_term":"' + int64Text(h.raft_term) + '"';
  return s + "}";
}

/** Event JSON by event (events are shared by every watcher of a batch). */
const eventJsonCache = new WeakMap<Event, string>();

/** `JSON.stringify(toJson("Event", ev))`, written directly and kept per event object. */
export function eventJson(ev: Event): string {
  let s = eventJsonCache.get(ev);
  if (s !== undefined) return s;
  s = (ev.type === "DELETE" ? '{"type":"DELETE","kv":' : '{"kv":') + keyValueJson(ev.kv);
  if (ev.prev_kv !== undefined) s += ',"prev_kv":' + keyValueJson(ev.prev_kv);
  s += "}";
  eventJsonCache.set(ev, s);
  return s;
}

/** `stringifyGo(toJson("WatchResponse", r))`, written directly (the watch hot path). */
export function watchResponseJson(r: WatchResponse): string {
  let s = '{"header":' + responseHeaderJson(r.header);
  if (r.watch_id) s += ',"watch_id":"' + int64Text(r.watch_id) + '"';
  if (r.created) s += ',"created":true';
  if (r.canceled) s += ',"canceled":true';
  if (r.compact_revision) s += ',"compact_revision":"' + int64Text(r.compact_revision) + '"';
  if (r.cancel_reason) s += ',"cancel_reason":' + stringifyGo(r.cancel_reason);
  if (r.fragment) s += ',"fragment":true';
  const events = r.events;
  if (events !== undefined && events.length > 0) {
    s += ',"events":[' + eventJson(events[0]);
    for (let i = 1; i < events.length; i++) s += "," + eventJson(events[i]);
    s += "]";
  }
  return s + "}";
}

function int64Text(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : n.toFixed(0);
}

/**
 * `JSON.stringify` with Go's `encoding/json` string escaping (`<`, `>`, `&`,
 * U+2028 and U+2029 as `\u003c`-style escapes), which is what etcd's gateway
 * emits. Use it for any JSON written to a client.
 */
export function stringifyGo(value: unknown): string {
  const s = JSON.stringify(value);
  return /[<>&\u2028\u2029]/.test(s)
    ? s.replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))
    : s;
}

// ---------------------------------------------------------------------------
// Protobuf size
// ---------------------------------------------------------------------------

const utf8 = new TextEncoder();

/** Bytes of the protobuf varint encoding of `n` (negative int64s take 10). */
export function varintSize(n: number | bigint): number {
  if (typeof n === "number" && n >= 0 && n <= Number.MAX_SAFE_INTEGER) return smallVarintSize(n);
  let v = BigInt(n);
  if (v < 0n) return 10;
  let size = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    size++;
  }
  return size;
}

function smallVarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * Size in bytes of the protobuf (proto3 wire format) encoding of an internal
 * message. etcd's limits are stated in these bytes: gRPC rejects a request
 * message over `--max-request-bytes` + 512 KiB, and etcdserver rejects a
 * proposal over `--max-request-bytes`, so cairn measures requests the same
 * way. Iterative (an explicit stack, no recursion), so a txn nested as deep
 * as a JSON body allows is measured without exhausting the JS stack.
 */
export function protoSize<K extends MessageName>(type: K, value: MessageTypes[K]): number {
  return messageSize(type, value as unknown as Record<string, unknown>);
}

/** A message being measured: where it is in its fields and its size so far. */
interface SizeFrame {
  fields: readonly FieldSpec[];
  value: Record<string, unknown>;
  /** Index of the field being measured. */
  i: number;
  /** Next element of the repeated message field `fields[i]`; -1 when none is in progress. */
  j: number;
  size: number;
  oneofDone: Set<string> | undefined;
}

function sizeFrame(type: MessageName, value: Record<string, unknown>): SizeFrame {
  return { fields: SCHEMA[type].fields, value, i: 0, j: -1, size: 0, oneofDone: undefined };
}

function messageSize(type: MessageName, value: Record<string, unknown>): number {
  const stack = [sizeFrame(type, value)];
  for (;;) {
    const top = stack[stack.length - 1];
    const child = measure(top);
    if (child !== undefined) {
      stack.push(child);
      continue;
    }
    stack.pop();
    if (stack.length === 0) return top.size;
    // A nested message: its tag, its length and its bytes.
    const parent = stack[stack.length - 1];
    const f = parent.fields[parent.i];
    parent.size += smallVarintSize(f.no * 8) + smallVarintSize(top.size) + top.size;
    if (parent.j < 0) parent.i++;
  }
}

/**
 * Adds the sizes of `fr`'s fields until one holds a nested message: returns
 * that message's frame (its size is added once it is measured), or
 * `undefined` once every field is counted.
 */
function measure(fr: SizeFrame): SizeFrame | undefined {
  const fields = fr.fields;
  while (fr.i < fields.length) {
    const f = fields[fr.i];
    const v = fr.value[f.name];
    if (fr.j >= 0) {
      const items = v as Record<string, unknown>[];
      if (fr.j < items.length) return sizeFrame(f.message!, items[fr.j++]);
      fr.j = -1;
      fr.i++;
      continue;
    }
    if (v === undefined || v === null) {
      fr.i++;
      continue;
    }
    const tag = smallVarintSize(f.no * 8);
    if (f.oneof !== undefined) {
      if (fr.oneofDone?.has(f.oneof)) {
        fr.i++;
        continue;
      }
      (fr.oneofDone ??= new Set()).add(f.oneof);
      if (f.message !== undefined) return sizeFrame(f.message, v as Record<string, unknown>);
      fr.size += tag + valueSize(f, v, true);
    } else if (f.repeated) {
      if (f.message !== undefined) {
        fr.j = 0;
        continue;
      }
      const items = v as unknown[];
      if (f.scalar === "bytes" || f.scalar === "string") {
        for (const e of items) fr.size += tag + valueSize(f, e, true);
      } else if (items.length > 0) {
        // Numbers, bools and enums are packed (proto3's default, and etcd's):
        // one tag, the length, then the values.
        let body = 0;
        for (const e of items) body += valueSize(f, e, true);
        fr.size += tag + smallVarintSize(body) + body;
      }
    } else if (f.message !== undefined) {
      return sizeFrame(f.message, v as Record<string, unknown>);
    } else {
      const s = valueSize(f, v, false);
      if (s > 0) fr.size += tag + s;
    }
    fr.i++;
  }
  return undefined;
}

/**
 * Size of one scalar or enum value without its tag; 0 means "zero value, not
 * written" unless `force`. (Nested messages are measured by `messageSize`.)
 */
function valueSize(f: FieldSpec, v: unknown, force: boolean): number {
  if (f.enum !== undefined) {
    const idx = typeof v === "number" ? v : f.enum.values.indexOf(v as string);
    return idx === 0 && !force ? 0 : varintSize(idx);
  }
  switch (f.scalar) {
    case "bytes":
    case "string": {
      const len = typeof v === "string" ? utf8.encode(v).length : (v as Uint8Array).length;
      return len === 0 && !force ? 0 : smallVarintSize(len) + len;
    }
    case "bool":
      return !v && !force ? 0 : 1;
    default:
      // deno-lint-ignore eqeqeq
      return v == 0 && !force ? 0 : varintSize(v as number | bigint);
  }
}

// ---------------------------------------------------------------------------
// Decoding: JSON → internal
// ---------------------------------------------------------------------------

/**
 * Decodes gateway JSON (an already parsed value: plain `JSON.parse` output,
 * or the gateway parser's output with {@linkcode JsonNumber}s) into an
 * internal message, with jsonpb's rules: fields are read in declaration
 * order (oneof members last) and the first bad one throws; `null` leaves a
 * field at its zero value; unknown fields are ignored; a top-level `null`
 * is the empty message. Absent scalar and enum fields get their proto zero
 * value (empty bytes, 0, 0n, false, "", the enum's first name) and absent
 * repeated fields `[]`; absent singular messages and unset oneof members
 * stay `undefined`.
 *
 * Numeric enum values are accepted as jsonpb accepts them; a number with no
 * name in the enum decodes as the enum's zero value (cairn's internal types
 * carry names only).
 *
 * @throws {EtcdError} InvalidArgument (HTTP 400, code 3) with etcd's text.
 */
export function fromJson<K extends MessageName>(type: K, json: unknown): MessageTypes[K] {
  return decodeMessage(type, json) as unknown as MessageTypes[K];
}

function fail(message: string): never {
  throw Errors.InvalidArgument(message);
}

/** The JSON kind word Go's `UnmarshalTypeError` uses for a value. */
function goKind(v: unknown): string {
  if (v instanceof JsonNumber || typeof v === "number" || typeof v === "bigint") return "number";
  if (typeof v === "string" || v instanceof JsonString) return "string";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "array";
  return "object";
}

function typeError(v: unknown, goType: string): never {
  fail(`json: cannot unmarshal ${goKind(v)} into Go value of type ${goType}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber) &&
    !(v instanceof JsonString);
}

/** A field as the decoder visits it: its JSON names and oneof siblings. */
interface DecodeStep {
  f: FieldSpec;
  /** The lowerCamel name, or undefined when it equals the proto name. */
  camel: string | undefined;
  /** Names of the other members of this field's oneof. */
  siblings: string[];
}

const decodePlans = new Map<MessageName, DecodeStep[]>();

/** Fields in jsonpb's visiting order: regular fields, then oneof members. */
function decodePlan(type: MessageName): DecodeStep[] {
  let plan = decodePlans.get(type);
  if (plan === undefined) {
    const fields = SCHEMA[type].fields;
    const ordered = [
      ...fields.filter((f) => f.oneof === undefined),
      ...fields.filter((f) => f.oneof !== undefined),
    ];
    plan = ordered.map((f) => {
      const camel = jsonName(f.name);
      return {
        f,
        camel: camel === f.name ? undefined : camel,
        siblings: f.oneof === undefined
          ? []
          : fields.filter((g) => g.oneof === f.oneof && g !== f).map((g) => g.name),
      };
    });
    decodePlans.set(type, plan);
  }
  return plan;
}

/**
 * Decodes a message depth-first without recursion: each nested message gets
 * a frame on an explicit stack, so a txn nested as deep as Go's JSON parser
 * allows (10,000 levels) is decoded without exhausting the JS stack. Fields
 * and errors come in the same order as a recursive descent.
 */
function decodeMessage(type: MessageName, json: unknown): Record<string, unknown> {
  if (json === null || json === undefined) return fillZeros(type, {});
  const stack = [decodeFrame(type, json)];
  for (;;) {
    const top = stack[stack.length - 1];
    const child = decodeFields(top);
    if (child !== undefined) {
      stack.push(child);
      continue;
    }
    stack.pop();
    if (stack.length === 0) return top.out;
    const parent = stack[stack.length - 1];
    if (parent.items !== undefined) parent.items.push(top.out);
    else {
      parent.out[parent.plan[parent.step].f.name] = top.out;
      parent.step++;
    }
  }
}

/** A message being decoded: its JSON, its output and the field it is at. */
interface DecodeFrame {
  json: Record<string, unknown>;
  out: Record<string, unknown>;
  plan: DecodeStep[];
  /** Index into `plan` of the field being decoded. */
  step: number;
  /** The JSON elements of the repeated message field being decoded. */
  raw: unknown[] | undefined;
  /** The elements of that field decoded so far. */
  items: unknown[] | undefined;
}

function decodeFrame(type: MessageName, json: unknown): DecodeFrame {
  if (!isObject(json)) typeError(json, "map[string]json.RawMessage");
  return { json, out: {}, plan: decodePlan(type), step: 0, raw: undefined, items: undefined };
}

/**
 * Decodes `fr`'s fields in jsonpb's order until one holds a nested message:
 * returns that message's frame (its result is stored once it is decoded),
 * or `undefined` once every field is done.
 */
function decodeFields(fr: DecodeFrame): DecodeFrame | undefined {
  const { json, out, plan } = fr;
  while (fr.step < plan.length) {
    const { f, camel, siblings } = plan[fr.step];
    if (fr.items !== undefined) {
      // A repeated message field in progress; a null element is the empty message.
      const raw = fr.raw!;
      while (fr.items.length < raw.length) {
        const e = raw[fr.items.length];
        if (e !== null) return decodeFrame(f.message!, e);
        fr.items.push(fillZeros(f.message!, {}));
      }
      out[f.name] = fr.items;
      fr.raw = fr.items = undefined;
      fr.step++;
      continue;
    }
    // The camel name wins when both are present (jsonpb). No field name
    // collides with an Object.prototype member, and `undefined` (never
    // produced by JSON) counts as absent.
    let raw = camel === undefined ? undefined : json[camel];
    if (raw === undefined) raw = json[f.name];
    if (raw === undefined) {
      // Absent: the proto zero value (messages and oneof members stay unset).
      if (f.repeated) out[f.name] = [];
      else if (f.oneof === undefined && f.message === undefined) out[f.name] = zeroOf(f);
      fr.step++;
      continue;
    }
    if (f.oneof !== undefined) { for (const name of siblings) delete out[name]; }
    if (f.message !== undefined) {
      if (raw === null) {
        // null: an empty list, or an unset message (a null message oneof
        // member is lost on etcd's way to the server).
        if (f.repeated) out[f.name] = [];
        fr.step++;
        continue;
      }
      if (!f.repeated) return decodeFrame(f.message, raw);
      if (!Array.isArray(raw)) typeError(raw, "[]json.RawMessage");
      fr.raw = raw;
      fr.items = [];
      continue;
    }
    // A scalar or enum; null sets the zero value.
    const v = decodeField(f, raw);
    if (v !== undefined) out[f.name] = v;
    else if (f.repeated) out[f.name] = [];
    else out[f.name] = zeroOf(f);
    fr.step++;
  }
  return undefined;
}

function fillZeros(type: MessageName, out: Record<string, unknown>): Record<string, unknown> {
  for (const f of SCHEMA[type].fields) {
    if (out[f.name] !== undefined || f.oneof !== undefined) continue;
    if (f.repeated) out[f.name] = [];
    else if (f.message === undefined) out[f.name] = zeroOf(f);
  }
  return out;
}

/** The zero value of every absent bytes field (shared: it has nothing to mutate). */
const EMPTY_BYTES: Uint8Array = Object.freeze(new Uint8Array(0)) as Uint8Array;

/**
 * The proto3 zero value of a scalar or enum field: the enum's first value,
 * empty bytes (one shared, frozen array), "", false, 0n for 64-bit fields
 * kept as bigint, 0 otherwise.
 */
export function zeroOf(f: FieldSpec): unknown {
  if (f.enum !== undefined) return f.enum.values[0];
  switch (f.scalar) {
    case "bytes":
      return EMPTY_BYTES;
    case "string":
      return "";
    case "bool":
      return false;
    case "int64n":
    case "uint64n":
      return 0n;
    default:
      return 0;
  }
}

/** Decodes a scalar or enum field (repeated or not); `undefined` means "not set". */
function decodeField(f: FieldSpec, raw: unknown): unknown {
  if (f.repeated) {
    if (raw === null) return undefined;
    if (!Array.isArray(raw)) typeError(raw, "[]json.RawMessage");
    return raw.map((e) => decodeSingle(f, e) ?? zeroOf(f));
  }
  return decodeSingle(f, raw);
}

/** Decodes one scalar or enum value; `undefined` means "not set". */
function decodeSingle(f: FieldSpec, raw: unknown): unknown {
  if (raw === null) return undefined;
  if (f.enum !== undefined) return decodeEnum(f.enum, raw);
  switch (f.scalar) {
    case "bytes":
      return decodeBytes(raw);
    case "string":
      if (raw instanceof JsonString) return raw.value;
      if (typeof raw !== "string") typeError(raw, "string");
      return raw;
    case "bool":
      if (typeof raw !== "boolean") typeError(raw, "bool");
      return raw;
    case "int32":
      return toNumber(decodeInteger(raw, "int32", -(2n ** 31n), 2n ** 31n - 1n));
    case "uint32":
      return toNumber(decodeInteger(raw, "uint32", 0n, 2n ** 32n - 1n));
    case "int64":
      return toNumber(decodeInteger(raw, "int64", -(2n ** 63n), 2n ** 63n - 1n));
    case "uint64":
      return toNumber(decodeInteger(raw, "uint64", 0n, 2n ** 64n - 1n));
    case "int64n":
      return decodeInteger(raw, "int64", -(2n ** 63n), 2n ** 63n - 1n);
    case "uint64n":
      return decodeInteger(raw, "uint64", 0n, 2n ** 64n - 1n);
  }
  throw new TypeError(`${f.name}: field has no type`);
}

/** A decoded integer as a JS number; `undefined` (a quoted `"null"`) stays unset. */
function toNumber(n: bigint | undefined): number | undefined {
  return n === undefined ? undefined : Number(n);
}

function decodeEnum(spec: EnumSpec, raw: unknown): string {
  if (typeof raw === "string" || raw instanceof JsonString) {
    // jsonpb looks the name up by the raw text between the quotes.
    const text = typeof raw === "string" ? raw : raw.raw;
    const i = spec.values.indexOf(text);
    if (i < 0) fail(`unknown value ${goQuoteString(text)} for enum ${spec.goName}`);
    return spec.values[i];
  }
  const n = decodeNumberLiteral(raw, spec.goName, -(2n ** 31n), 2n ** 31n - 1n);
  return spec.values[Number(n)] ?? spec.values[0];
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;

/**
 * An int64/uint64 field: a JSON number, or a string whose contents jsonpb
 * re-reads as a JSON value (so `" 12"` is 12 and `"x"` is a syntax error).
 */
function decodeInteger(raw: unknown, goType: string, min: bigint, max: bigint): bigint | undefined {
  if (typeof raw === "string" || raw instanceof JsonString) {
    // jsonpb drops the quotes and parses the raw text as JSON.
    const inner = parseGoJson(typeof raw === "string" ? raw : raw.raw, "unmarshal");
    if (inner === null) return undefined;
    if (typeof inner === "string" || inner instanceof JsonString) typeError(inner, goType);
    raw = inner;
  }
  return decodeNumberLiteral(raw, goType, min, max);
}

function decodeNumberLiteral(raw: unknown, goType: string, min: bigint, max: bigint): bigint {
  let literal: string;
  if (raw instanceof JsonNumber) literal = raw.literal;
  else if (typeof raw === "number") literal = Number.isInteger(raw) ? raw.toFixed(0) : String(raw);
  else if (typeof raw === "bigint") literal = raw.toString();
  else typeError(raw, goType);
  if (!INTEGER.test(literal)) {
    fail(`json: cannot unmarshal number ${literal} into Go value of type ${goType}`);
  }
  const n = BigInt(literal);
  if (n < min || n > max) {
    fail(`json: cannot unmarshal number ${literal} into Go value of type ${goType}`);
  }
  return n;
}

function decodeBytes(raw: unknown): Uint8Array {
  if (raw instanceof JsonString) raw = raw.value;
  if (typeof raw === "string") {
    const r = decodeGoBase64(raw);
    if (typeof r === "number") fail(`illegal base64 data at input byte ${r}`);
    return r;
  }
  if (Array.isArray(raw)) {
    // encoding/json decodes a JSON array into []byte element by element.
    const out = new Uint8Array(raw.length);
    raw.forEach((e, i) => {
      if (e === null) return;
      out[i] = Number(decodeNumberLiteral(e, "uint8", 0n, 255n));
    });
    return out;
  }
  typeError(raw, "[]uint8");
}
