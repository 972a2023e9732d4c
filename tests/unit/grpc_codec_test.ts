/**
 * Unit tests of the gRPC transport's protobuf codec (core/api/proto.ts) and
 * etcd 3.4's .proto files (server/grpc/proto/): SCHEMA against the files,
 * round trips against protobufjs's reflection codec (an independent
 * implementation of the wire format), parity with the JSON gateway's codec
 * (`decodeMessage` gives what `fromJson` gives, `encodeMessage` carries what
 * `toJson` carries), `protoSize`, and malformed input.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import protobuf from "protobufjs";
import {
  fromJson,
  type MessageName,
  type MessageTypes,
  protoSize,
  SCHEMA,
  toJson,
} from "../../core/api/codec.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_DECODE_DEPTH,
  ProtoDecodeError,
} from "../../core/api/proto.ts";
import { InvariantError } from "../../core/invariant.ts";
import { loadProtos, PROTO_FILES } from "../../server/grpc/proto.ts";

const root = loadProtos();
const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const unhex = (s: string) =>
  Uint8Array.from(s.split(/\s+/).filter(Boolean), (x) => parseInt(x, 16));
const MESSAGES = Object.keys(SCHEMA) as MessageName[];

/** The proto package of each SCHEMA message not in etcdserverpb. */
const PACKAGE: Partial<Record<MessageName, string>> = {
  KeyValue: "mvccpb",
  Event: "mvccpb",
  LockRequest: "v3lockpb",
  LockResponse: "v3lockpb",
  UnlockRequest: "v3lockpb",
  UnlockResponse: "v3lockpb",
  LeaderKey: "v3electionpb",
  CampaignRequest: "v3electionpb",
  CampaignResponse: "v3electionpb",
  ProclaimRequest: "v3electionpb",
  ProclaimResponse: "v3electionpb",
  LeaderRequest: "v3electionpb",
  LeaderResponse: "v3electionpb",
  ResignRequest: "v3electionpb",
  ResignResponse: "v3electionpb",
  Permission: "authpb",
  UserAddOptions: "authpb",
};

/** Messages of etcd's .proto files that SCHEMA does not (yet) carry. */
const NOT_IN_SCHEMA = [
  "authpb.Role",
  "authpb.User",
  "etcdserverpb.LeaseCheckpointResponse",
];

function fullName(type: MessageName): string {
  return `${PACKAGE[type] ?? "etcdserverpb"}.${type}`;
}

function protoType(type: MessageName): protobuf.Type {
  return root.lookupType(fullName(type));
}

/** Every message type of the loaded files, by full name (no leading dot). */
function allProtoMessages(ns: protobuf.NamespaceBase = root, out: string[] = []): string[] {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type) out.push(obj.fullName.slice(1));
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) {
      allProtoMessages(obj, out);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// The .proto files and SCHEMA
// ---------------------------------------------------------------------------

Deno.test("protos: SCHEMA matches etcd's .proto files field by field", () => {
  const protoKind: Record<string, string> = {
    bytes: "bytes",
    string: "string",
    bool: "bool",
    int32: "int32",
    uint32: "uint32",
    int64: "int64",
    int64n: "int64",
    uint64: "uint64",
    uint64n: "uint64",
  };
  for (const type of MESSAGES) {
    const pt = protoType(type);
    const where = fullName(type);
    assertEquals(
      SCHEMA[type].fields.map((f) => f.name),
      pt.fieldsArray.map((f) => f.name),
      `${where}: field names in declaration order`,
    );
    for (const f of SCHEMA[type].fields) {
      const pf = pt.fields[f.name];
      const at = `${where}.${f.name}`;
      assertEquals(f.no, pf.id, `${at}: number`);
      assertEquals(f.repeated === true, pf.repeated, `${at}: repeated`);
      assertEquals(f.oneof, pf.partOf?.name, `${at}: oneof`);
      if (f.scalar !== undefined) {
        assertEquals(protoKind[f.scalar], pf.type, `${at}: scalar type`);
        assertEquals(pf.resolvedType, null, `${at}: a scalar`);
      } else if (f.message !== undefined) {
        assert(pf.resolvedType instanceof protobuf.Type, `${at}: a message`);
        assertEquals(pf.resolvedType.fullName, "." + fullName(f.message), `${at}: message type`);
      } else {
        const e = pf.resolvedType;
        assert(e instanceof protobuf.Enum, `${at}: an enum`);
        const values = Object.fromEntries(f.enum!.values.map((name, i) => [name, i]));
        assertEquals(values, e.values, `${at}: enum values`);
        // Go's name of the enum type, as etcd's JSON errors spell it.
        const parent = e.parent instanceof protobuf.Type ? `${e.parent.name}_` : "";
        const pkg = e.fullName.slice(1).split(".")[0];
        assertEquals(f.enum!.goName, `${pkg}.${parent}${e.name}`, `${at}: Go enum name`);
      }
    }
  }
});

Deno.test("protos: every message of the files is in SCHEMA or a listed exception", () => {
  const inFiles = allProtoMessages().sort();
  const inSchema = MESSAGES.map(fullName);
  for (const name of inSchema) assert(inFiles.includes(name), `${name} is in the .proto files`);
  assertEquals(inFiles.filter((n) => !inSchema.includes(n)), [...NOT_IN_SCHEMA].sort());
});

Deno.test("protos: etcd 3.4's services, rpcs and streaming flags", () => {
  // [rpc, request, response] with "stream " where etcd streams.
  const services: Record<string, string[]> = {
    "etcdserverpb.KV": [
      "Range RangeRequest RangeResponse",
      "Put PutRequest PutResponse",
      "DeleteRange DeleteRangeRequest DeleteRangeResponse",
      "Txn TxnRequest TxnResponse",
      "Compact CompactionRequest CompactionResponse",
    ],
    "etcdserverpb.Watch": ["Watch stream:WatchRequest stream:WatchResponse"],
    "etcdserverpb.Lease": [
      "LeaseGrant LeaseGrantRequest LeaseGrantResponse",
      "LeaseRevoke LeaseRevokeRequest LeaseRevokeResponse",
      "LeaseKeepAlive stream:LeaseKeepAliveRequest stream:LeaseKeepAliveResponse",
      "LeaseTimeToLive LeaseTimeToLiveRequest LeaseTimeToLiveResponse",
      "LeaseLeases LeaseLeasesRequest LeaseLeasesResponse",
    ],
    "etcdserverpb.Cluster": [
      "MemberAdd MemberAddRequest MemberAddResponse",
      "MemberRemove MemberRemoveRequest MemberRemoveResponse",
      "MemberUpdate MemberUpdateRequest MemberUpdateResponse",
      "MemberList MemberListRequest MemberListResponse",
      "MemberPromote MemberPromoteRequest MemberPromoteResponse",
    ],
    "etcdserverpb.Maintenance": [
      "Alarm AlarmRequest AlarmResponse",
      "Status StatusRequest StatusResponse",
      "Defragment DefragmentRequest DefragmentResponse",
      "Hash HashRequest HashResponse",
      "HashKV HashKVRequest HashKVResponse",
      "Snapshot SnapshotRequest stream:SnapshotResponse",
      "MoveLeader MoveLeaderRequest MoveLeaderResponse",
    ],
    "etcdserverpb.Auth": [
      "AuthEnable AuthEnableRequest AuthEnableResponse",
      "AuthDisable AuthDisableRequest AuthDisableResponse",
      "Authenticate AuthenticateRequest AuthenticateResponse",
      "UserAdd AuthUserAddRequest AuthUserAddResponse",
      "UserGet AuthUserGetRequest AuthUserGetResponse",
      "UserList AuthUserListRequest AuthUserListResponse",
      "UserDelete AuthUserDeleteRequest AuthUserDeleteResponse",
      "UserChangePassword AuthUserChangePasswordRequest AuthUserChangePasswordResponse",
      "UserGrantRole AuthUserGrantRoleRequest AuthUserGrantRoleResponse",
      "UserRevokeRole AuthUserRevokeRoleRequest AuthUserRevokeRoleResponse",
      "RoleAdd AuthRoleAddRequest AuthRoleAddResponse",
      "RoleGet AuthRoleGetRequest AuthRoleGetResponse",
      "RoleList AuthRoleListRequest AuthRoleListResponse",
      "RoleDelete AuthRoleDeleteRequest AuthRoleDeleteResponse",
      "RoleGrantPermission AuthRoleGrantPermissionRequest AuthRoleGrantPermissionResponse",
      "RoleRevokePermission AuthRoleRevokePermissionRequest AuthRoleRevokePermissionResponse",
    ],
    "v3lockpb.Lock": [
      "Lock LockRequest LockResponse",
      "Unlock UnlockRequest UnlockResponse",
    ],
    "v3electionpb.Election": [
      "Campaign CampaignRequest CampaignResponse",
      "Proclaim ProclaimRequest ProclaimResponse",
      "Leader LeaderRequest LeaderResponse",
      "Observe LeaderRequest stream:LeaderResponse",
      "Resign ResignRequest ResignResponse",
    ],
  };
  const found: string[] = [];
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) found.push(obj.fullName.slice(1));
      else if (obj instanceof protobuf.Namespace) walk(obj);
    }
  };
  walk(root);
  assertEquals(found.sort(), Object.keys(services).sort());
  for (const [name, rpcs] of Object.entries(services)) {
    const service = root.lookupService(name);
    const actual = service.methodsArray.map((m) => {
      const req = m.resolvedRequestType!.name;
      const res = m.resolvedResponseType!.name;
      return `${m.name} ${m.requestStream ? "stream:" : ""}${req} ${
        m.responseStream ? "stream:" : ""
      }${res}`;
    });
    assertEquals(actual, rpcs, name);
  }
  assertEquals(PROTO_FILES.length, 5);
});

// ---------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------

const MEMBER_ID = 0x8e9e05c52164694dn;
const CLUSTER_ID = 0xcdf818194e3a8c32n;
const header = (revision: number) => ({
  cluster_id: CLUSTER_ID,
  member_id: MEMBER_ID,
  revision,
  raft_term: 7,
});
const kv = (key: string, rev: number, lease = 0n) => ({
  key: bytes(key),
  create_revision: rev - 1,
  mod_revision: rev,
  version: 2,
  value: bytes(`value of ${key}`),
  lease,
});

/** Hand-written samples: realistic messages, edge values, empty vs absent. */
const SAMPLES: [MessageName, unknown][] = [
  ["RangeRequest", {
    key: bytes("/registry/pods/"),
    range_end: bytes("/registry/pods0"),
    limit: 500,
    revision: 123456789,
    sort_order: "DESCEND",
    sort_target: "MOD",
    serializable: true,
    keys_only: true,
    count_only: true,
    min_mod_revision: 1,
    max_mod_revision: 2 ** 53 - 1,
    min_create_revision: 3,
    max_create_revision: 2 ** 40,
  }],
  ["RangeRequest", { key: bytes("a") }],
  ["RangeRequest", { key: new Uint8Array(0), range_end: Uint8Array.of(0), revision: -1 }],
  ["RangeResponse", {
    header: header(42),
    kvs: [kv("a", 40, MEMBER_ID >> 1n), kv("b", 41), { key: bytes("c") }],
    more: true,
    count: 3,
  }],
  ["RangeResponse", { header: {}, kvs: [], more: false, count: 0 }],
  ["PutRequest", { key: bytes("k"), value: new Uint8Array(0), lease: 0n }],
  ["PutRequest", {
    key: bytes("k"),
    value: new Uint8Array(300).fill(0xff),
    lease: 2n ** 63n - 1n,
    prev_kv: true,
    ignore_value: true,
    ignore_lease: true,
  }],
  ["PutResponse", { header: header(5), prev_kv: kv("k", 4) }],
  ["DeleteRangeResponse", { header: header(9), deleted: 2, prev_kvs: [kv("x", 3), kv("y", 4)] }],
  ["TxnRequest", {
    compare: [
      { result: "EQUAL", target: "VERSION", key: bytes("a"), version: 0 },
      { result: "GREATER", target: "CREATE", key: bytes("b"), create_revision: 5 },
      { result: "LESS", target: "MOD", key: bytes("c"), mod_revision: 2 ** 53 - 1 },
      { result: "NOT_EQUAL", target: "VALUE", key: bytes("d"), value: new Uint8Array(0) },
      {
        result: "EQUAL",
        target: "LEASE",
        key: bytes("e"),
        lease: -(2n ** 63n),
        range_end: bytes("f"),
      },
    ],
    success: [
      { request_range: { key: bytes("a"), limit: 1 } },
      { request_put: { key: bytes("b"), value: bytes("v"), lease: 0x694dn } },
      { request_delete_range: { key: bytes("c"), range_end: bytes("d"), prev_kv: true } },
      {
        request_txn: {
          compare: [],
          success: [{ request_txn: { compare: [], success: [], failure: [] } }],
          failure: [{ request_put: { key: bytes("n") } }],
        },
      },
    ],
    failure: [{ request_range: { key: bytes("z"), serializable: true } }],
  }],
  ["TxnResponse", {
    header: header(77),
    succeeded: true,
    responses: [
      { response_range: { header: { revision: 77 }, kvs: [kv("a", 70)], more: false, count: 1 } },
      { response_put: { header: { revision: 77 } } },
      { response_delete_range: { header: { revision: 77 }, deleted: 0, prev_kvs: [] } },
      { response_txn: { header: { revision: 77 }, succeeded: false, responses: [] } },
    ],
  }],
  ["WatchRequest", {
    create_request: {
      key: bytes("/a"),
      range_end: bytes("/b"),
      start_revision: 12,
      progress_notify: true,
      filters: ["NOPUT", "NODELETE"],
      prev_kv: true,
      watch_id: 3,
      fragment: true,
    },
  }],
  ["WatchRequest", { create_request: { key: bytes("k"), filters: ["NOPUT"] } }],
  ["WatchRequest", { cancel_request: { watch_id: 0 } }],
  ["WatchRequest", { progress_request: {} }],
  ["WatchRequest", {}],
  ["WatchResponse", {
    header: header(100),
    watch_id: 3,
    created: false,
    canceled: false,
    compact_revision: 0,
    cancel_reason: "",
    fragment: false,
    events: [
      { type: "PUT", kv: kv("/a/1", 99) },
      { type: "DELETE", kv: { key: bytes("/a/2"), mod_revision: 100 }, prev_kv: kv("/a/2", 98) },
    ],
  }],
  ["WatchResponse", {
    header: header(5),
    watch_id: -1,
    canceled: true,
    compact_revision: 4,
    cancel_reason: "mvcc: required revision has been compacted ✓",
  }],
  ["StatusResponse", {
    header: header(3),
    version: "3.4.0",
    dbSize: 20480,
    leader: MEMBER_ID,
    raftIndex: 2 ** 40 + 1,
    raftTerm: 9,
    raftAppliedIndex: 2 ** 40,
    errors: ["memberID:10276657743932975437 alarm:NOSPACE ", ""],
    dbSizeInUse: 16384,
    isLearner: true,
  }],
  ["MemberListResponse", {
    header: { cluster_id: CLUSTER_ID, member_id: MEMBER_ID, raft_term: 2 },
    members: [
      {
        ID: MEMBER_ID,
        name: "infra0",
        peerURLs: ["http://10.0.0.1:2380", "http://10.0.0.1:12380"],
        clientURLs: ["http://10.0.0.1:2379"],
        isLearner: false,
      },
      { ID: 2n ** 64n - 1n, name: "", peerURLs: ["http://10.0.0.2:2380"], clientURLs: [] },
      { ID: 1n, name: "learner", peerURLs: [], clientURLs: [], isLearner: true },
    ],
  }],
  ["MemberAddResponse", {
    header: header(0),
    member: { ID: 1n << 63n, peerURLs: ["http://x:2380"] },
    members: [],
  }],
  ["MemberRemoveRequest", { ID: MEMBER_ID }],
  ["MoveLeaderRequest", { targetID: 2n ** 64n - 1n }],
  ["LeaseGrantRequest", { TTL: 60, ID: 0n }],
  ["LeaseGrantResponse", { header: header(1), ID: 7587862072067741971n, TTL: 60, error: "" }],
  ["LeaseKeepAliveRequest", { ID: 2n ** 63n - 1n }],
  ["LeaseKeepAliveRequest", { ID: -1n }],
  ["LeaseKeepAliveResponse", { header: header(8), ID: 0x694dn, TTL: 0 }],
  ["LeaseTimeToLiveResponse", {
    header: header(8),
    ID: 5n,
    TTL: -1,
    grantedTTL: 0,
    keys: [bytes("a"), new Uint8Array(0), Uint8Array.of(0, 255)],
  }],
  ["LeaseLeasesResponse", { header: header(2), leases: [{ ID: 1n }, { ID: 0n }, { ID: -2n }] }],
  ["LeaseCheckpointRequest", { checkpoints: [{ ID: 9n, remaining_TTL: 30 }] }],
  ["LockRequest", { name: bytes("mylock"), lease: 0x694d2164694dn }],
  ["LockResponse", { header: header(4), key: bytes("mylock/694d2164694d") }],
  ["LeaderKey", { name: bytes("e"), key: bytes("e/694d"), rev: 17, lease: 0x694dn }],
  ["CampaignResponse", {
    header: header(17),
    leader: { name: bytes("e"), key: bytes("e/694d"), rev: 17, lease: 0x694dn },
  }],
  ["ProclaimRequest", { leader: { name: bytes("e"), key: bytes("k"), rev: 0, lease: 0n } }],
  ["ResignRequest", {}],
  ["LeaderResponse", { header: header(3), kv: kv("e/1", 3) }],
  ["AlarmRequest", { action: "ACTIVATE", memberID: MEMBER_ID, alarm: "NOSPACE" }],
  ["AlarmRequest", { action: "GET", memberID: 0n, alarm: "NONE" }],
  ["AlarmResponse", {
    header: header(3),
    alarms: [{ memberID: MEMBER_ID, alarm: "CORRUPT" }, { memberID: 0n, alarm: "NONE" }],
  }],
  ["HashResponse", { header: header(3), hash: 2 ** 32 - 1 }],
  ["HashKVRequest", { revision: 0 }],
  ["HashKVResponse", { header: header(3), hash: 3735928559, compact_revision: 2 }],
  ["SnapshotResponse", { remaining_bytes: 2 ** 35, blob: new Uint8Array(1000).fill(7) }],
  ["SnapshotResponse", { remaining_bytes: 0, blob: new Uint8Array(32) }],
  ["AuthenticateRequest", { name: "root", password: "pässwörd" }],
  ["AuthenticateRequest", { name: "\uFEFFbom", password: "\u{10FFFF}\0" }],
  ["AuthenticateResponse", { header: header(1), token: "abc.def.ghi" }],
];

/** A small seeded PRNG (mulberry32), so a failing sample can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOL: Record<string, unknown[]> = {
  bytes: [new Uint8Array(0), bytes("a"), Uint8Array.of(0, 0xff, 0x80), new Uint8Array(200).fill(1)],
  string: ["", "x", "é<&>\u{1F600}", "s".repeat(130)],
  bool: [false, true],
  int32: [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)],
  uint32: [0, 1, 127, 128, 2 ** 32 - 1],
  int64: [0, 1, -1, 127, 128, 2 ** 28 - 1, 2 ** 28, 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1)],
  uint64: [0, 1, 300, 2 ** 31, 2 ** 53 - 1],
  int64n: [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 0x694dn, 7587862072067741971n],
  uint64n: [0n, 1n, 2n ** 64n - 1n, MEMBER_ID, 1n << 63n, 2n ** 53n],
};

/** A random message: each field set or not, values from the pool, nesting bounded. */
function randomMessage(type: MessageName, rand: () => number, depth = 0): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const out: Record<string, unknown> = {};
  const value = (f: (typeof SCHEMA)[MessageName]["fields"][number]): unknown => {
    if (f.message !== undefined) return randomMessage(f.message, rand, depth + 1);
    if (f.enum !== undefined) return pick(f.enum.values);
    return pick(POOL[f.scalar!]);
  };
  for (const f of SCHEMA[type].fields) {
    if (rand() < 0.3) continue;
    if (f.message !== undefined && depth >= 3) continue;
    if (
      f.oneof !== undefined && rand() < 0.7 &&
      Object.keys(out).some((k) => isSibling(type, k, f.oneof!))
    ) continue;
    out[f.name] = f.repeated
      ? Array.from({ length: Math.floor(rand() * 4) }, () => value(f))
      : value(f);
  }
  return out;
}

function isSibling(type: MessageName, name: string, oneof: string): boolean {
  return SCHEMA[type].fields.some((g) => g.name === name && g.oneof === oneof);
}

/** Every sample: the hand-written ones, then random ones of every message. */
function allSamples(): [MessageName, Record<string, unknown>][] {
  const rand = prng(20240601);
  const out = SAMPLES.map(([t, v]) => [t, v] as [MessageName, Record<string, unknown>]);
  for (const type of MESSAGES) {
    for (let i = 0; i < 25; i++) out.push([type, randomMessage(type, rand)]);
  }
  return out;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  oneofs: false,
};

// ---------------------------------------------------------------------------
// Round trips against protobufjs
// ---------------------------------------------------------------------------

Deno.test("codec: protobufjs's bytes decode to what fromJson gives for the same JSON", () => {
  let n = 0;
  for (const [type, value] of allSamples()) {
    const json = toJson(type, value as never);
    const pt = protoType(type);
    const theirs = pt.encode(pt.fromObject(json)).finish();
    assertEquals(
      decodeMessage(type, theirs),
      fromJson(type, json),
      `${type} ${JSON.stringify(json)}`,
    );
    n++;
  }
  assert(n > MESSAGES.length * 25);
});

Deno.test("codec: encodeMessage's bytes decode in protobufjs to what toJson carries", () => {
  for (const [type, value] of allSamples()) {
    const json = toJson(type, value as never);
    const pt = protoType(type);
    const ours = encodeMessage(type, value as never);
    assertEquals(pt.toObject(pt.decode(ours), TO_OBJECT), json, `${type} ${JSON.stringify(json)}`);
    // Same field order and packing as protobufjs (and etcd's gogoproto): the same bytes.
    assertEquals(hex(ours), hex(pt.encode(pt.fromObject(json)).finish()), type);
    // And back: the value fromJson would give.
    assertEquals(decodeMessage(type, ours), fromJson(type, json), type);
  }
});

Deno.test("codec: protoSize is the length of encodeMessage's bytes", () => {
  for (const [type, value] of allSamples()) {
    const size = protoSize(type, value as never);
    assertEquals(size, encodeMessage(type, value as never).length, type);
  }
  // Packed filters: tag, length, two values.
  const watch: MessageTypes["WatchRequest"] = {
    create_request: { key: bytes("k"), filters: ["NOPUT", "NODELETE"] },
  };
  assertEquals(protoSize("WatchRequest", watch), 2 + 3 + 4);
});

Deno.test("codec: wire forms pinned: IDs, negatives, packed enums, zero oneof members", () => {
  const cases: [MessageName, unknown, string][] = [
    // A full 64-bit member ID, and a negative int64 revision (10 bytes, two's complement).
    [
      "ResponseHeader",
      { cluster_id: MEMBER_ID, member_id: 0n, revision: -3, raft_term: 0 },
      "08 cd d2 91 8b d2 b8 81 cf 8e 01 18 fd ff ff ff ff ff ff ff ff 01",
    ],
    ["LeaseKeepAliveRequest", { ID: -(2n ** 63n) }, "08 80 80 80 80 80 80 80 80 80 01"],
    ["MemberRemoveRequest", { ID: 2n ** 64n - 1n }, "08 ff ff ff ff ff ff ff ff ff 01"],
    // Zero values are left out; an empty message is no bytes.
    ["PutRequest", { key: new Uint8Array(0), value: new Uint8Array(0), lease: 0n }, ""],
    // A zero oneof member is written; only the first set member of a oneof.
    ["Compare", { key: bytes("a"), version: 0, lease: 5n }, "1a 01 61 20 00"],
    ["Compare", { key: bytes("a"), value: new Uint8Array(0) }, "1a 01 61 3a 00"],
    // filters: packed (etcd's gogoproto writes them so), zero enum included.
    ["WatchCreateRequest", { filters: ["NOPUT", "NODELETE"] }, "2a 02 00 01"],
    // A present empty nested message is written.
    ["WatchRequest", { progress_request: {} }, "1a 00"],
    ["RangeRequest", { key: bytes("a"), limit: 10 }, "0a 01 61 18 0a"],
  ];
  for (const [type, value, wire] of cases) {
    assertEquals(hex(encodeMessage(type, value as never)), wire, type);
    assertEquals(decodeMessage(type, unhex(wire)), fromJson(type, toJson(type, value as never)));
  }
});

// ---------------------------------------------------------------------------
// Decoding rules
// ---------------------------------------------------------------------------

Deno.test("decode: absent fields get fromJson's defaults; messages and oneofs stay absent", () => {
  const range = decodeMessage("RangeRequest", new Uint8Array(0));
  assertEquals(range, fromJson("RangeRequest", {}));
  assertEquals(range.sort_order, "NONE");
  assertEquals(range.range_end, new Uint8Array(0));
  const put = decodeMessage("PutResponse", new Uint8Array(0));
  assert(!("header" in put) && !("prev_kv" in put), "absent messages have no property");
  const cmp = decodeMessage("Compare", unhex("1a 01 61"));
  assertEquals(Object.keys(cmp).sort(), ["key", "range_end", "result", "target"]);
  assertEquals(cmp, fromJson("Compare", { key: "YQ==" }));
  const txn = decodeMessage("TxnRequest", unhex("12 00"));
  assertEquals(txn, { compare: [], success: [{}], failure: [] });
  assertEquals(txn, fromJson("TxnRequest", { success: [{}] }));
  // An explicit zero on the wire is the same as absent (protobufjs writes set zeros).
  const pt = protoType("RangeRequest");
  const zeros = pt.encode(pt.fromObject({ key: "", limit: "0", serializable: false })).finish();
  assertEquals(hex(zeros), "0a 00 18 00 38 00");
  assertEquals(decodeMessage("RangeRequest", zeros), range);
});

Deno.test("decode: unpacked repeated scalars, unknown fields, last scalar and oneof win, merges", () => {
  // filters unpacked (a proto2-style encoder) and packed in two runs.
  assertEquals(
    decodeMessage("WatchCreateRequest", unhex("28 01 28 00 2a 01 01")).filters,
    ["NODELETE", "NOPUT", "NODELETE"],
  );
  // Unknown fields of every wire type, including a group, are skipped.
  const unknown = "f8 06 96 01 f9 06 01 02 03 04 05 06 07 08 fa 06 02 aa bb fd 06 01 02 03 04 " +
    "fb 06 08 01 fc 06";
  assertEquals(
    decodeMessage("RangeRequest", unhex(`0a 01 61 ${unknown} 18 05`)),
    fromJson("RangeRequest", { key: "YQ==", limit: "5" }),
  );
  // The last occurrence of a scalar wins.
  assertEquals(decodeMessage("RangeRequest", unhex("18 01 18 02")).limit, 2);
  // The last oneof member set wins, and the others are gone.
  const op = decodeMessage("RequestOp", unhex("0a 02 0a 00 12 03 0a 01 62"));
  assertEquals(op, { request_put: fromJson("PutRequest", { key: "Yg==" }) });
  const cmp = decodeMessage("Compare", unhex("20 05 40 07"));
  assertEquals(cmp.version, undefined);
  assertEquals(cmp.lease, 7n);
  // A singular message field that occurs twice is merged (proto semantics).
  const merged = decodeMessage("RangeResponse", unhex("0a 02 18 05 0a 02 20 02 12 00 12 00"));
  assertEquals(merged.header, { cluster_id: 0n, member_id: 0n, revision: 5, raft_term: 2 });
  assertEquals(merged.kvs.length, 2);
  // Strings: a BOM is kept, invalid UTF-8 becomes U+FFFD (etcd 3.4 does not check it).
  assertEquals(decodeMessage("AuthenticateRequest", unhex("0a 04 ef bb bf 61")).name, "\uFEFFa");
  assertEquals(decodeMessage("AuthenticateRequest", unhex("0a 02 ff 61")).name, "\uFFFDa");
  // An enum number without a name decodes as the zero name, as fromJson does.
  assertEquals(decodeMessage("RangeRequest", unhex("28 07")).sort_order, "NONE");
  assertEquals(fromJson("RangeRequest", { sort_order: 7 }).sort_order, "NONE");
  assertEquals(decodeMessage("RangeRequest", unhex("28 02")).sort_order, "DESCEND");
});

Deno.test("decode: 64-bit integers: full uint64 range, two's complement int64, safe-integer limit", () => {
  assertEquals(
    decodeMessage("MemberRemoveRequest", unhex("08 ff ff ff ff ff ff ff ff ff 01")).ID,
    2n ** 64n - 1n,
  );
  assertEquals(
    decodeMessage("LeaseRevokeRequest", unhex("08 ff ff ff ff ff ff ff ff ff 01")).ID,
    -1n,
  );
  const edge = (n: number) => {
    const w = protobuf.Writer.create();
    w.uint32(0x20).int64(n);
    return w.finish();
  };
  assertEquals(decodeMessage("RangeRequest", edge(2 ** 53 - 1)).revision, 2 ** 53 - 1);
  assertEquals(decodeMessage("RangeRequest", edge(-(2 ** 53 - 1))).revision, -(2 ** 53 - 1));
  throws(
    () => decodeMessage("RangeRequest", edge(2 ** 53)),
    (e: Error) =>
      e instanceof ProtoDecodeError &&
      /RangeRequest\.revision holds 9007199254740992/.test(e.message),
  );
  throws(() => decodeMessage("RangeRequest", edge(-(2 ** 53))), ProtoDecodeError);
  // uint64 as a number: 2^63 is beyond the safe range, not a negative number.
  throws(
    () => decodeMessage("ResponseHeader", unhex("20 80 80 80 80 80 80 80 80 80 01")),
    (e: Error) => /9223372036854775808/.test(e.message),
  );
});

Deno.test("decode: bytes are plain Uint8Array views into the input, also from a Buffer", () => {
  const wire = Buffer.from(unhex("0a 03 61 62 63 12 01 7a"));
  const req = decodeMessage("PutRequest", wire.subarray(0));
  assertEquals(Object.getPrototypeOf(req.key), Uint8Array.prototype);
  assertEquals(Object.getPrototypeOf(req.value), Uint8Array.prototype);
  assertEquals(req.key, bytes("abc"));
  assertEquals(req.value, bytes("z"));
  // Views, not copies (the documented contract): same buffer, at the field's offset.
  assert(req.key.buffer === wire.buffer);
  assertEquals(req.key.byteOffset, wire.byteOffset + 2);
  // A view into a larger buffer decodes only its own bytes.
  const outer = unhex("ff ff 0a 01 61 ff");
  assertEquals(decodeMessage("PutRequest", outer.subarray(2, 5)).key, bytes("a"));
  // Absent and empty bytes are fromJson's shared, frozen empty array.
  assert(Object.isFrozen(decodeMessage("PutRequest", unhex("0a 00")).key));
});

Deno.test("decode: nesting is iterative up to MAX_DECODE_DEPTH, then an error", () => {
  /** A txn nested `levels` deep: TxnRequest{success: [RequestOp{request_txn: ...}]}. */
  const nested = (levels: number): Uint8Array => {
    let inner: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < levels; i++) {
      const op = protobuf.Writer.create().uint32(0x22).bytes(inner).finish();
      inner = protobuf.Writer.create().uint32(0x12).bytes(op).finish();
    }
    return inner;
  };
  // 4,999 txn levels: 9,999 messages (the root TxnRequest included).
  let txn = decodeMessage("TxnRequest", nested(4999));
  let depth = 1;
  while (txn.success.length > 0) {
    txn = (txn.success[0] as { request_txn: typeof txn }).request_txn;
    depth++;
  }
  assertEquals(depth, 5000);
  assertEquals(MAX_DECODE_DEPTH, 10_000);
  throws(() => decodeMessage("TxnRequest", nested(5000)), /nested deeper than 10000/);
});

// ---------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------

Deno.test("decode: malformed input throws ProtoDecodeError", () => {
  const bad: [MessageName, string, RegExp][] = [
    // Truncated varints: no value byte, a continuation at the end, 4 of them (which
    // protobufjs's reader alone would accept), and inside a nested message.
    ["RangeRequest", "18", /truncated varint|index out of range/],
    ["RangeRequest", "18 80", /truncated varint|index out of range/],
    ["RangeRequest", "18 80 80 80 80", /truncated varint|index out of range/],
    ["LeaseKeepAliveRequest", "08 ff ff ff ff ff ff ff", /truncated varint|index out of range/],
    ["RangeResponse", "0a 01 18 05", /truncated varint|index out of range/],
    // Truncated length-delimited fields, and one running past its enclosing message.
    ["RangeRequest", "0a 05 61 62", /runs past the end/],
    ["TxnRequest", "0a 03 1a 05 61 62 63 64 65", /runs past the end/],
    ["RangeRequest", "0a", /truncated varint|index out of range/],
    // Wrong wire types for known fields.
    ["RangeRequest", "08 01", /RangeRequest\.key \(1\) has wire type 0, want 2/],
    ["RangeRequest", "1a 01 00", /RangeRequest\.limit \(3\) has wire type 2, want 0/],
    ["RangeResponse", "08 01", /RangeRequest|RangeResponse\.header \(1\) has wire type 0/],
    ["RangeRequest", "1d 00 00 00 00", /wire type 5/],
    // Varints longer than 10 bytes, as a value and as a tag.
    ["RangeRequest", "18 ff ff ff ff ff ff ff ff ff ff 01", /invalid varint/],
    ["RangeRequest", "ff ff ff ff ff ff ff ff ff ff 01", /invalid varint|bad field tag/],
    ["WatchCreateRequest", "28 ff ff ff ff ff ff ff ff ff ff 01", /invalid varint/],
    // Field number 0, wire types 6 and 7, a lone end-group, an unterminated group.
    ["RangeRequest", "00 00", /bad field tag/],
    ["RangeRequest", "fe 06 00", /bad wire type 6/],
    ["RangeRequest", "ff 06 00", /bad wire type 7/],
    ["RangeRequest", "fc 06", /bad wire type 4/],
    ["RangeRequest", "fb 06 08 01", /index out of range|truncated/],
    // Unknown fixed-width fields cut short.
    ["RangeRequest", "f9 06 01 02", /truncated fixed64/],
    ["RangeRequest", "fd 06 01", /truncated fixed32/],
    // A packed run whose length cuts a varint in half.
    ["WatchCreateRequest", "2a 01 80 01", /truncated varint/],
  ];
  for (const [type, wire, re] of bad) {
    throws(() => decodeMessage(type, unhex(wire)), (e: Error) => {
      assert(e instanceof ProtoDecodeError, `${wire}: ${e}`);
      assert(e.message.startsWith(`Cannot decode ${type}: `), e.message);
      assert(re.test(e.message), `${wire}: ${e.message} should match ${re}`);
      return true;
    });
  }
});

Deno.test("decode: every prefix and byte flip of valid messages decodes or throws ProtoDecodeError", () => {
  const rand = prng(7);
  const started = performance.now();
  let failures = 0;
  for (const [type, value] of SAMPLES) {
    const wire = encodeMessage(type, value as never);
    const tries: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i++) tries.push(wire.slice(0, i));
    for (let i = 0; i < 40 && wire.length > 0; i++) {
      const b = wire.slice();
      b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      tries.push(b);
    }
    for (const b of tries) {
      try {
        decodeMessage(type, b);
      } catch (e) {
        assert(e instanceof ProtoDecodeError, `${type} ${hex(b)}: ${e}`);
        failures++;
      }
    }
  }
  assert(failures > 100, `some inputs are malformed (${failures})`);
  assert(performance.now() - started < 10_000, "decoding malformed input does not stall");
});

// ---------------------------------------------------------------------------
// Encoding errors
// ---------------------------------------------------------------------------

Deno.test("encode: wrong types throw TypeError, out-of-range integers an InvariantError", () => {
  throws(() => encodeMessage("RangeRequest", { key: "a" } as never), TypeError);
  throws(
    () => encodeMessage("RangeRequest", { key: bytes("a"), sort_order: "UP" } as never),
    TypeError,
  );
  throws(() => encodeMessage("TxnRequest", { compare: {} } as never), TypeError);
  throws(() => encodeMessage("TxnRequest", { success: [null] } as never), TypeError);
  throws(() => encodeMessage("RangeRequest", { key: bytes("a"), limit: 1.5 }), InvariantError);
  throws(() => encodeMessage("RangeRequest", { key: bytes("a"), limit: 2 ** 53 }), InvariantError);
  throws(() => encodeMessage("MemberRemoveRequest", { ID: 2n ** 64n }), InvariantError);
  throws(() => encodeMessage("MemberRemoveRequest", { ID: -1n }), InvariantError);
  throws(() => encodeMessage("LeaseRevokeRequest", { ID: 2n ** 63n }), InvariantError);
  throws(() => encodeMessage("ResponseHeader", { raft_term: -1 } as never), InvariantError);
  // A failed encode leaves nothing behind: the next one is whole.
  assertEquals(hex(encodeMessage("RangeRequest", { key: bytes("a") })), "0a 01 61");
  // Like toJson, a 64-bit field takes a number or a bigint.
  assertEquals(
    hex(encodeMessage("LeaseRevokeRequest", { ID: 5 } as never)),
    hex(encodeMessage("LeaseRevokeRequest", { ID: 5n })),
  );
});
