/**
 * etcdctl's output formats (`-w simple|json|fields|table|protobuf`) for the commands
 * ctl implements, written to match etcdctl 3.4 byte for byte:
 * - simple: keys and values as raw bytes, one per line (`printer_simple.go`);
 * - json: Go's `encoding/json` of the protobuf structs, so int64 and uint64
 *   are numbers, bytes base64, zero values omitted, oneofs wrapped as
 *   `{"Response":{"ResponsePut":…}}` (`printer_json.go`);
 * - fields: `"Key" : value` lines (`printer_fields.go`);
 * - table: tablewriter boxes, for endpoint health, status and hashkv and
 *   member list only;
 * - protobuf: the wire encoding (see protobuf.ts), for put/get/del/txn/watch,
 *   member and alarm commands; for lease grant, keep-alive, timetolive and
 *   list only the header (etcdctl marshals clientv3's response structs
 *   through their embedded header);
 * - user, role and auth: simple prints etcdctl's sentences (`User foo
 *   created`, `Role r updated`, `Permission of range [a, b) is revoked
 *   from role r`), json, fields and protobuf the Auth responses (fields
 *   has no `user get` and `user list`, table none of them: exit 4 after
 *   the request, as etcdctl).
 *
 * One deliberate difference: `alarm list|disarm -w fields`. etcdctl 3.4
 * dereferences the AlarmResponse's header, which etcd 3.4 (and cairn) never
 * send, and panics (exit 2, a Go stack trace); ctl prints the header's lines
 * only when there is one, then each alarm's `"MemberID"` and `"AlarmType"`.
 *
 * The lease printers take the responses as clientv3 hands them to etcdctl:
 * the header flattened into the struct (json), IDs as signed decimal (json,
 * fields) or `%016x` hex (simple).
 *
 * @module
 */

import { encodeBase64 } from "../core/api/base64.ts";
import { alarmText } from "../core/alarm.ts";
import { CtlError, ExitCode } from "./exit.ts";
import { goJsonString, goQuote, goQuoteString, hexU64, humanizeBytes } from "./go_format.ts";
import {
  alarmTypeNumber,
  pbAlarm,
  pbAuthHeader,
  pbAuthNames,
  pbAuthRoleGet,
  pbDel,
  pbHeader,
  pbMemberAdd,
  pbMembers,
  pbMoveLeader,
  pbPut,
  pbRange,
  pbTxn,
  pbWatch,
} from "./protobuf.ts";
import type {
  AlarmResponse,
  AuthHeaderResponse,
  AuthRoleGetResponse,
  AuthRolesResponse,
  AuthUserListResponse,
  DeleteRangeResponse,
  Event,
  HashKVResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  Member,
  MemberAddResponse,
  MemberListResponse,
  MoveLeaderResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnResponse,
} from "../core/api/types.ts";

/** Where a printer writes: raw bytes or text (UTF-8). */
export interface Out {
  /** Writes bytes as they are, or a string as UTF-8. */
  write(data: Uint8Array | string): void;
}

/** One `endpoint health` result (etcdctl's `epHealth`). */
export interface EpHealth {
  endpoint: string;
  health: boolean;
  /** Go duration string, e.g. `1.674697ms`. */
  took: string;
  error?: string;
}

/** One `endpoint status` result (etcdctl's `epStatus`). */
export interface EpStatus {
  endpoint: string;
  status: StatusResponse;
}

/** One `endpoint hashkv` result (etcdctl's `epHashKV`). */
export interface EpHashKV {
  endpoint: string;
  hashKV: HashKVResponse;
}

/**
 * A watch response as etcdctl's printers get it: clientv3's WatchResponse
 * (`Header`, `Events`, `CompactRevision`, `Canceled`, `Created`). `events`
 * undefined is Go's nil slice (a response made up by the client when its
 * stream failed), printed `null` in JSON.
 */
export interface WatchView {
  header: ResponseHeader;
  events?: Event[];
  compactRevision: number;
  canceled: boolean;
  created: boolean;
}

/** The output operations of the implemented commands. */
export interface Printer {
  put(r: PutResponse): void;
  get(r: RangeResponse): void;
  del(r: DeleteRangeResponse): void;
  txn(r: TxnResponse): void;
  /** One watch response (`watch`); table: `table not supported as output format`. */
  watch(r: WatchView): void;
  endpointHealth(list: EpHealth[]): void;
  endpointStatus(list: EpStatus[]): void;
  /** `endpoint hashkv`; protobuf: `protobuf not supported as output format`. */
  endpointHashKV(list: EpHashKV[]): void;
  /** `alarm list` and `alarm disarm`; table: `table not supported as output format`. */
  alarm(r: AlarmResponse): void;
  /** `lease grant`. */
  leaseGrant(r: LeaseGrantResponse): void;
  /** `lease revoke <id>`. */
  leaseRevoke(id: bigint, r: LeaseRevokeResponse): void;
  /** One `lease keep-alive` answer. */
  leaseKeepAlive(r: LeaseKeepAliveResponse): void;
  /** `lease timetolive [--keys]`. */
  leaseTimeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void;
  /** `lease list`. */
  leaseLeases(r: LeaseLeasesResponse): void;
  /** `member add`: the response (simple: one line; the env lines are the command's). */
  memberAdd(r: MemberAddResponse): void;
  /** `member remove <id>`, `member update <id>`, `member promote <id>`. */
  memberChanged(verb: MemberVerb, id: bigint, r: MembersResponse): void;
  /** `member list`. */
  memberList(r: MemberListResponse): void;
  /** `move-leader`: leadership went from `leader` to `target`. */
  moveLeader(leader: bigint, target: bigint, r: MoveLeaderResponse): void;
  /** `snapshot status`. */
  dbStatus(s: DBStatus): void;
  /**
   * A user or role change that answers a header alone (`user add`, `role
   * grant-permission`, …); `text` is etcdctl's simple line, e.g. `User foo
   * created`.
   */
  authChange(text: string | Uint8Array, r: AuthHeaderResponse): void;
  /** `role get <role>` (and each role of `user get --detail`). */
  roleGet(role: string, r: AuthRoleGetResponse): void;
  /** `role list`. */
  roleList(r: AuthRolesResponse): void;
  /** `user get <user>`. */
  userGet(user: string, r: AuthRolesResponse): void;
  /** `user list`. */
  userList(r: AuthUserListResponse): void;
}

/** authpb.Permission.Type's numbers (READ 0, WRITE 1, READWRITE 2). */
const PERM_TYPE_NUMBER = { READ: 0, WRITE: 1, READWRITE: 2 } as const;

/** What `snapshot status` prints (etcdctl's snapshot.Status). */
export interface DBStatus {
  /** The snapshot's hash (32 bits). */
  hash: number;
  /** Its current revision. */
  revision: number;
  /** Records it holds. */
  totalKey: number;
  /** Bytes of its database. */
  totalSize: number;
}

/** etcdctl's row of a DBStatus: hash in hex (no padding), revision, keys, humanized size. */
function dbStatusRow(s: DBStatus): string[] {
  return [
    s.hash.toString(16),
    String(s.revision),
    String(s.totalKey),
    humanizeBytes(s.totalSize),
  ];
}

/** What `member remove|update|promote` did, as the simple printer words it. */
export type MemberVerb = "removed from" | "updated in" | "promoted in";

/** The answer of member remove, update and promote: a header and the member list. */
export interface MembersResponse {
  header: ResponseHeader;
  members: Member[];
}

/** A uint64 as Go's `%16x`: lower-case hex, space-padded to 16 columns. */
function hex16(v: bigint): string {
  return hexU64(v).padStart(16, " ");
}

/** etcdctl's member table rows: ID, status, name, peer addrs, client addrs, is learner. */
function memberRows(r: MemberListResponse): string[][] {
  return r.members.map((m) => [
    hexU64(m.ID),
    m.name.length === 0 ? "unstarted" : "started",
    m.name,
    m.peerURLs.join(","),
    m.clientURLs.join(","),
    String(m.isLearner ?? false),
  ]);
}

const MEMBER_HEADER = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"];

/** A lease ID as Go's `%016x` of an int64 (etcdctl's simple output). */
export function leaseHex(id: bigint): string {
  return id < 0n ? "-" + (-id).toString(16).padStart(15, "0") : id.toString(16).padStart(16, "0");
}

/** The `-w` names etcdctl knows. */
export type OutputFormat = "simple" | "json" | "fields" | "table" | "protobuf";

/**
 * The printer for `-w <format>`.
 *
 * @throws {CtlError} exit 4 `unsupported output format` for other names.
 */
export function newPrinter(
  format: string,
  stdout: Out,
  stderr: Out,
  opts: { hex?: boolean; valueOnly?: boolean } = {},
): Printer {
  switch (format) {
    case "simple":
      return new SimplePrinter(stdout, stderr, opts.hex ?? false, opts.valueOnly ?? false);
    case "json":
      return new JsonPrinter(stdout);
    case "fields":
      return new FieldsPrinter(stdout);
    case "table":
      return new TablePrinter(stdout);
    case "protobuf":
      return new ProtobufPrinter(stdout);
  }
  throw new CtlError(ExitCode.BadFeature, "unsupported output format");
}

function unsupported(name: string): never {
  throw new CtlError(ExitCode.BadFeature, `${name} not supported as output format`);
}

function hexBytes(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += `\\x${x.toString(16).padStart(2, "0")}`;
  return s;
}

/** `-w simple`. */
export class SimplePrinter implements Printer {
  constructor(
    private out: Out,
    private err: Out,
    private hex: boolean,
    /** `get --print-value-only`: print values without keys. */
    public valueOnly: boolean,
  ) {}

  #kv(kv: KeyValue): void {
    if (!this.valueOnly) {
      this.out.write(this.hex ? hexBytes(kv.key) : kv.key);
      this.out.write("\n");
    }
    this.out.write(this.hex ? hexBytes(kv.value) : kv.value);
    this.out.write("\n");
  }

  put(r: PutResponse): void {
    this.out.write("OK\n");
    if (r.prev_kv) this.#kv(r.prev_kv);
  }

  get(r: RangeResponse): void {
    for (const kv of r.kvs) this.#kv(kv);
  }

  del(r: DeleteRangeResponse): void {
    this.out.write(`${r.deleted}\n`);
    for (const kv of r.prev_kvs) this.#kv(kv);
  }

  txn(r: TxnResponse): void {
    this.out.write(r.succeeded ? "SUCCESS\n" : "FAILURE\n");
    for (const op of r.responses) {
      this.out.write("\n");
      if ("response_delete_range" in op) this.del(op.response_delete_range);
      else if ("response_put" in op) this.put(op.response_put);
      else if ("response_range" in op) this.get(op.response_range);
      else this.out.write(`unexpected response ${JSON.stringify(op)}\n`);
    }
  }

  watch(r: WatchView): void {
    for (const ev of r.events ?? []) {
      this.out.write(`${ev.type}\n`);
      if (ev.prev_kv) this.#kv(ev.prev_kv);
      this.#kv(ev.kv);
    }
  }

  endpointHealth(list: EpHealth[]): void {
    for (const h of list) {
      this.err.write(
        h.error === undefined
          ? `${h.endpoint} is healthy: successfully committed proposal: took = ${h.took}\n`
          : `${h.endpoint} is unhealthy: failed to commit proposal: ${h.error}\n`,
      );
    }
  }

  endpointStatus(list: EpStatus[]): void {
    for (const row of statusRows(list)) this.out.write(row.join(", ") + "\n");
  }

  endpointHashKV(list: EpHashKV[]): void {
    for (const row of hashKVRows(list)) this.out.write(row.join(", ") + "\n");
  }

  /** Each alarm as Go's `%+v` prints an AlarmMember: its compact text form. */
  alarm(r: AlarmResponse): void {
    for (const a of r.alarms) this.out.write(alarmText(a) + "\n");
  }

  leaseGrant(r: LeaseGrantResponse): void {
    this.out.write(`lease ${leaseHex(r.ID)} granted with TTL(${r.TTL}s)\n`);
  }

  leaseRevoke(id: bigint): void {
    this.out.write(`lease ${leaseHex(id)} revoked\n`);
  }

  leaseKeepAlive(r: LeaseKeepAliveResponse): void {
    this.out.write(`lease ${leaseHex(r.ID)} keepalived with TTL(${r.TTL})\n`);
  }

  leaseTimeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void {
    if (r.grantedTTL === 0 && r.TTL === -1) {
      this.out.write(`lease ${leaseHex(r.ID)} already expired\n`);
      return;
    }
    let txt = `lease ${leaseHex(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
    if (keys) {
      const names = r.keys.map((k) => new TextDecoder().decode(k));
      txt += `, attached keys([${names.join(" ")}])`;
    }
    this.out.write(txt + "\n");
  }

  leaseLeases(r: LeaseLeasesResponse): void {
    this.out.write(`found ${r.leases.length} leases\n`);
    for (const l of r.leases) this.out.write(`${leaseHex(l.ID)}\n`);
  }

  memberAdd(r: MemberAddResponse): void {
    this.out.write(
      `Member ${hex16(r.member?.ID ?? 0n)} added to cluster ${hex16(r.header.cluster_id)}\n`,
    );
  }

  memberChanged(verb: MemberVerb, id: bigint, r: MembersResponse): void {
    this.out.write(`Member ${hex16(id)} ${verb} cluster ${hex16(r.header.cluster_id)}\n`);
  }

  memberList(r: MemberListResponse): void {
    for (const row of memberRows(r)) this.out.write(row.join(", ") + "\n");
  }

  dbStatus(s: DBStatus): void {
    this.out.write(dbStatusRow(s).join(", ") + "\n");
  }

  moveLeader(leader: bigint, target: bigint): void {
    this.out.write(`Leadership transferred from ${hexU64(leader)} to ${hexU64(target)}\n`);
  }
  authChange(text: string | Uint8Array): void {
    this.out.write(text);
    this.out.write("\n");
  }

  /** etcdctl's `KV Read:` and `KV Write:` blocks: keys, ranges, open ends and prefixes. */
  roleGet(role: string, r: AuthRoleGetResponse): void {
    this.out.write(`Role ${role}\nKV Read:\n`);
    const line = (p: AuthRoleGetResponse["perm"][number]) => {
      if (p.range_end.length === 0) {
        this.out.write(concatBytes(["\t", p.key, "\n"]));
        return;
      }
      const open = p.range_end.length === 1 && p.range_end[0] === 0;
      const parts: (string | Uint8Array)[] = open
        ? ["\t[", p.key, ", <open ended>"]
        : ["\t[", p.key, ", ", p.range_end, ")"];
      if (sameBytes(prefixEnd(p.key), p.range_end)) parts.push(" (prefix ", p.key, ")");
      parts.push("\n");
      this.out.write(concatBytes(parts));
    };
    for (const p of r.perm) if (p.permType !== "WRITE") line(p);
    this.out.write("KV Write:\n");
    for (const p of r.perm) if (p.permType !== "READ") line(p);
  }

  roleList(r: AuthRolesResponse): void {
    for (const role of r.roles) this.out.write(role + "\n");
  }

  userGet(user: string, r: AuthRolesResponse): void {
    this.out.write(`User: ${user}\nRoles:${r.roles.map((role) => " " + role).join("")}\n`);
  }

  userList(r: AuthUserListResponse): void {
    for (const user of r.users) this.out.write(user + "\n");
  }
}

/** clientv3's GetPrefixRangeEnd: the key after every key starting with `key` (`\0` for none). */
function prefixEnd(key: Uint8Array): Uint8Array {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i] < 0xff) {
      const end = key.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Strings (UTF-8) and raw bytes as one byte string. */
export function concatBytes(parts: (string | Uint8Array)[]): Uint8Array {
  const enc = new TextEncoder();
  const bytes = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of bytes) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** Go json object builder: fields in struct order, `omitempty` zero values dropped. */
function obj(fields: [string, string | undefined][]): string {
  return "{" + fields.filter(([, v]) => v !== undefined).map(([k, v]) => `"${k}":${v}`).join(",") +
    "}";
}
const num = (v: number | bigint): string | undefined => (v ? String(v) : undefined);
const bytes = (v: Uint8Array | undefined): string | undefined =>
  v && v.length > 0 ? `"${encodeBase64(v)}"` : undefined;
const bool = (v: boolean | undefined): string | undefined => (v ? "true" : undefined);
const u64 = (v: bigint | undefined): string | undefined =>
  v ? BigInt.asUintN(64, v).toString() : undefined;

function jsonHeader(h: ResponseHeader | undefined): string | undefined {
  if (!h) return undefined;
  return obj([
    ["cluster_id", u64(h.cluster_id)],
    ["member_id", u64(h.member_id)],
    ["revision", num(h.revision ?? 0)],
    ["raft_term", num(h.raft_term ?? 0)],
  ]);
}

function jsonKv(kv: KeyValue | undefined): string | undefined {
  if (!kv) return undefined;
  return obj([
    ["key", bytes(kv.key)],
    ["create_revision", num(kv.create_revision)],
    ["mod_revision", num(kv.mod_revision)],
    ["version", num(kv.version)],
    ["value", bytes(kv.value)],
    ["lease", num(kv.lease ?? 0n)],
  ]);
}

function jsonKvs(kvs: KeyValue[] | undefined): string | undefined {
  return kvs && kvs.length > 0 ? `[${kvs.map((kv) => jsonKv(kv)).join(",")}]` : undefined;
}

/** Go json of a RangeResponse. */
export function jsonRange(r: RangeResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["kvs", jsonKvs(r.kvs)],
    ["more", bool(r.more)],
    ["count", num(r.count)],
  ]);
}

/** Go json of a PutResponse. */
export function jsonPut(r: PutResponse): string {
  return obj([["header", jsonHeader(r.header)], ["prev_kv", jsonKv(r.prev_kv)]]);
}

/** Go json of a DeleteRangeResponse. */
export function jsonDel(r: DeleteRangeResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["deleted", num(r.deleted)],
    ["prev_kvs", jsonKvs(r.prev_kvs)],
  ]);
}

function jsonResponseOp(op: ResponseOp): string {
  let inner: string;
  if ("response_range" in op) inner = `{"ResponseRange":${jsonRange(op.response_range)}}`;
  else if ("response_put" in op) inner = `{"ResponsePut":${jsonPut(op.response_put)}}`;
  else if ("response_delete_range" in op) {
    inner = `{"ResponseDeleteRange":${jsonDel(op.response_delete_range)}}`;
  } else inner = `{"ResponseTxn":${jsonTxn(op.response_txn)}}`;
  return `{"Response":${inner}}`;
}

/** Go json of a TxnResponse. */
export function jsonTxn(r: TxnResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["succeeded", bool(r.succeeded)],
    [
      "responses",
      r.responses && r.responses.length > 0
        ? `[${r.responses.map(jsonResponseOp).join(",")}]`
        : undefined,
    ],
  ]);
}

function jsonEvent(ev: Event): string {
  return obj([
    ["type", ev.type === "DELETE" ? "1" : undefined],
    ["kv", jsonKv(ev.kv)],
    ["prev_kv", jsonKv(ev.prev_kv)],
  ]);
}

/**
 * Go json of clientv3's WatchResponse: exported field names, no
 * `omitempty` except inside the header and events; event types as numbers.
 */
export function jsonWatch(r: WatchView): string {
  const events = r.events === undefined ? "null" : `[${r.events.map(jsonEvent).join(",")}]`;
  return `{"Header":${jsonHeader(r.header) ?? "{}"},"Events":${events},"CompactRevision":${
    r.compactRevision ?? 0
  },"Canceled":${r.canceled},"Created":${r.created}}`;
}

/** Go json of a StatusResponse. */
export function jsonStatus(r: StatusResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["version", r.version ? goJsonString(r.version) : undefined],
    ["dbSize", num(r.dbSize)],
    ["leader", u64(r.leader)],
    ["raftIndex", num(r.raftIndex)],
    ["raftTerm", num(r.raftTerm)],
    ["raftAppliedIndex", num(r.raftAppliedIndex)],
    [
      "errors",
      r.errors && r.errors.length > 0 ? `[${r.errors.map(goJsonString).join(",")}]` : undefined,
    ],
    ["dbSizeInUse", num(r.dbSizeInUse)],
    ["isLearner", bool(r.isLearner)],
  ]);
}

/** Go json of a HashKVResponse. */
export function jsonHashKV(r: HashKVResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["hash", num(r.hash)],
    ["compact_revision", num(r.compact_revision)],
  ]);
}

/** Go json of an AlarmResponse: alarm kinds as their numbers (NOSPACE 1, CORRUPT 2). */
export function jsonAlarm(r: AlarmResponse): string {
  const alarms = r.alarms.map((a) =>
    obj([["memberID", u64(a.memberID)], ["alarm", num(alarmTypeNumber(a.alarm))]])
  );
  return obj([
    ["header", jsonHeader(r.header)],
    ["alarms", alarms.length > 0 ? `[${alarms.join(",")}]` : undefined],
  ]);
}

/** The header's fields alone, as Go's json flattens an embedded `*pb.ResponseHeader`. */
function flatHeader(h: ResponseHeader | undefined): [string, string | undefined][] {
  return [
    ["cluster_id", u64(h?.cluster_id)],
    ["member_id", u64(h?.member_id)],
    ["revision", num(h?.revision ?? 0)],
    ["raft_term", num(h?.raft_term ?? 0)],
  ];
}

/** Go json of clientv3's LeaseGrantResponse. */
export function jsonLeaseGrant(r: LeaseGrantResponse): string {
  return obj([
    ...flatHeader(r.header),
    ["ID", String(r.ID)],
    ["TTL", String(r.TTL)],
    ["Error", goJsonString(r.error ?? "")],
  ]);
}

/** Go json of clientv3's LeaseKeepAliveResponse. */
export function jsonLeaseKeepAlive(r: LeaseKeepAliveResponse): string {
  return obj([...flatHeader(r.header), ["ID", String(r.ID)], ["TTL", String(r.TTL)]]);
}

/** Go json of clientv3's LeaseTimeToLiveResponse (its json tags: id, ttl, granted-ttl, keys). */
export function jsonLeaseTimeToLive(r: LeaseTimeToLiveResponse): string {
  const keys = r.keys.length === 0
    ? "null"
    : `[${r.keys.map((k) => `"${encodeBase64(k)}"`).join(",")}]`;
  return obj([
    ...flatHeader(r.header),
    ["id", String(r.ID)],
    ["ttl", String(r.TTL)],
    ["granted-ttl", String(r.grantedTTL)],
    ["keys", keys],
  ]);
}

/** Go json of clientv3's LeaseLeasesResponse. */
export function jsonLeaseLeases(r: LeaseLeasesResponse): string {
  return obj([
    ...flatHeader(r.header),
    ["leases", `[${r.leases.map((l) => `{"id":${l.ID}}`).join(",")}]`],
  ]);
}

const strings = (v: string[] | undefined): string | undefined =>
  v && v.length > 0 ? `[${v.map(goJsonString).join(",")}]` : undefined;

function jsonMember(m: Member | undefined): string | undefined {
  if (!m) return undefined;
  return obj([
    ["ID", u64(m.ID)],
    ["name", m.name ? goJsonString(m.name) : undefined],
    ["peerURLs", strings(m.peerURLs)],
    ["clientURLs", strings(m.clientURLs)],
    ["isLearner", bool(m.isLearner)],
  ]);
}

function jsonMembers(ms: Member[] | undefined): string | undefined {
  return ms && ms.length > 0 ? `[${ms.map((m) => jsonMember(m)).join(",")}]` : undefined;
}

/** Go json of a MemberAddResponse. */
export function jsonMemberAdd(r: MemberAddResponse): string {
  return obj([
    ["header", jsonHeader(r.header)],
    ["member", jsonMember(r.member)],
    ["members", jsonMembers(r.members)],
  ]);
}

/** Go json of a MemberListResponse (and of the remove, update and promote responses). */
export function jsonMembersResponse(r: MembersResponse): string {
  return obj([["header", jsonHeader(r.header)], ["members", jsonMembers(r.members)]]);
}

/** Go json of an Auth response that is a header alone. */
export function jsonAuthHeader(r: AuthHeaderResponse): string {
  return obj([["header", jsonHeader(r.header)]]);
}

/** Go json of an AuthRoleGetResponse: permission types as numbers, empty fields left out. */
export function jsonAuthRoleGet(r: AuthRoleGetResponse): string {
  const perms = r.perm.map((p) =>
    obj([
      ["permType", num(PERM_TYPE_NUMBER[p.permType])],
      ["key", bytes(p.key)],
      ["range_end", bytes(p.range_end)],
    ])
  );
  return obj([
    ["header", jsonHeader(r.header)],
    ["perm", perms.length > 0 ? `[${perms.join(",")}]` : undefined],
  ]);
}

/** `-w json`. */
export class JsonPrinter implements Printer {
  constructor(private out: Out) {}
  put(r: PutResponse): void {
    this.out.write(jsonPut(r) + "\n");
  }
  get(r: RangeResponse): void {
    this.out.write(jsonRange(r) + "\n");
  }
  del(r: DeleteRangeResponse): void {
    this.out.write(jsonDel(r) + "\n");
  }
  txn(r: TxnResponse): void {
    this.out.write(jsonTxn(r) + "\n");
  }
  watch(r: WatchView): void {
    this.out.write(jsonWatch(r) + "\n");
  }
  endpointHealth(list: EpHealth[]): void {
    const items = list.map((h) =>
      obj([
        ["endpoint", goJsonString(h.endpoint)],
        ["health", String(h.health)],
        ["took", goJsonString(h.took)],
        ["error", h.error ? goJsonString(h.error) : undefined],
      ])
    );
    this.out.write(`[${items.join(",")}]\n`);
  }
  endpointStatus(list: EpStatus[]): void {
    const items = list.map((s) =>
      `{"Endpoint":${goJsonString(s.endpoint)},"Status":${jsonStatus(s.status)}}`
    );
    this.out.write(`[${items.join(",")}]\n`);
  }
  endpointHashKV(list: EpHashKV[]): void {
    const items = list.map((h) =>
      `{"Endpoint":${goJsonString(h.endpoint)},"HashKV":${jsonHashKV(h.hashKV)}}`
    );
    this.out.write(`[${items.join(",")}]\n`);
  }
  alarm(r: AlarmResponse): void {
    this.out.write(jsonAlarm(r) + "\n");
  }
  leaseGrant(r: LeaseGrantResponse): void {
    this.out.write(jsonLeaseGrant(r) + "\n");
  }
  leaseRevoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.out.write(obj([["header", jsonHeader(r.header)]]) + "\n");
  }
  leaseKeepAlive(r: LeaseKeepAliveResponse): void {
    this.out.write(jsonLeaseKeepAlive(r) + "\n");
  }
  leaseTimeToLive(r: LeaseTimeToLiveResponse): void {
    this.out.write(jsonLeaseTimeToLive(r) + "\n");
  }
  leaseLeases(r: LeaseLeasesResponse): void {
    this.out.write(jsonLeaseLeases(r) + "\n");
  }
  memberAdd(r: MemberAddResponse): void {
    this.out.write(jsonMemberAdd(r) + "\n");
  }
  memberChanged(_verb: MemberVerb, _id: bigint, r: MembersResponse): void {
    this.out.write(jsonMembersResponse(r) + "\n");
  }
  memberList(r: MemberListResponse): void {
    this.out.write(jsonMembersResponse(r) + "\n");
  }
  moveLeader(_leader: bigint, _target: bigint, r: MoveLeaderResponse): void {
    this.out.write(obj([["header", jsonHeader(r.header)]]) + "\n");
  }
  dbStatus(s: DBStatus): void {
    this.out.write(
      `{"hash":${s.hash},"revision":${s.revision},"totalKey":${s.totalKey},"totalSize":${s.totalSize}}\n`,
    );
  }
  authChange(_text: string | Uint8Array, r: AuthHeaderResponse): void {
    this.out.write(jsonAuthHeader(r) + "\n");
  }
  roleGet(_role: string, r: AuthRoleGetResponse): void {
    this.out.write(jsonAuthRoleGet(r) + "\n");
  }
  roleList(r: AuthRolesResponse): void {
    this.out.write(obj([["header", jsonHeader(r.header)], ["roles", strings(r.roles)]]) + "\n");
  }
  userGet(_user: string, r: AuthRolesResponse): void {
    this.out.write(obj([["header", jsonHeader(r.header)], ["roles", strings(r.roles)]]) + "\n");
  }
  userList(r: AuthUserListResponse): void {
    this.out.write(obj([["header", jsonHeader(r.header)], ["users", strings(r.users)]]) + "\n");
  }
}

/** `-w fields`. */
export class FieldsPrinter implements Printer {
  constructor(private out: Out) {}

  #line(s: string): void {
    this.out.write(s + "\n");
  }

  #hdr(h: ResponseHeader): void {
    this.#line(`"ClusterID" : ${BigInt.asUintN(64, h.cluster_id ?? 0n)}`);
    this.#line(`"MemberID" : ${BigInt.asUintN(64, h.member_id ?? 0n)}`);
    this.#line(`"Revision" : ${h.revision ?? 0}`);
    this.#line(`"RaftTerm" : ${h.raft_term ?? 0}`);
  }

  #kv(pfx: string, kv: KeyValue): void {
    this.#line(`"${pfx}Key" : ${goQuote(kv.key)}`);
    this.#line(`"${pfx}CreateRevision" : ${kv.create_revision}`);
    this.#line(`"${pfx}ModRevision" : ${kv.mod_revision}`);
    this.#line(`"${pfx}Version" : ${kv.version}`);
    this.#line(`"${pfx}Value" : ${goQuote(kv.value)}`);
    this.#line(`"${pfx}Lease" : ${kv.lease ?? 0n}`);
  }

  put(r: PutResponse): void {
    this.#hdr(r.header);
    if (r.prev_kv) this.#kv("Prev", r.prev_kv);
  }
  get(r: RangeResponse): void {
    this.#hdr(r.header);
    for (const kv of r.kvs) this.#kv("", kv);
    this.#line(`"More" : ${r.more}`);
    this.#line(`"Count" : ${r.count}`);
  }
  del(r: DeleteRangeResponse): void {
    this.#hdr(r.header);
    this.#line(`"Deleted" : ${r.deleted}`);
    for (const kv of r.prev_kvs) this.#kv("Prev", kv);
  }
  txn(r: TxnResponse): void {
    this.#hdr(r.header);
    this.#line(`"Succeeded" : ${r.succeeded}`);
    for (const op of r.responses) {
      if ("response_delete_range" in op) this.del(op.response_delete_range);
      else if ("response_put" in op) this.put(op.response_put);
      else if ("response_range" in op) this.get(op.response_range);
      else this.#line(`"Unknown" : ${goQuote(new TextEncoder().encode(JSON.stringify(op)))}`);
    }
  }
  watch(r: WatchView): void {
    this.#hdr(r.header);
    for (const ev of r.events ?? []) {
      this.#line(`"Type" : ${ev.type}`);
      if (ev.prev_kv) this.#kv("Prev", ev.prev_kv);
      this.#kv("", ev.kv);
    }
  }
  endpointHealth(list: EpHealth[]): void {
    for (const h of list) {
      this.#line(`"Endpoint" : ${goQuote(new TextEncoder().encode(h.endpoint))}`);
      this.#line(`"Health" : ${h.health}`);
      this.#line(`"Took" : ${h.took}`);
      this.#line(`"Error" : ${h.error ?? ""}`);
      this.#line("");
    }
  }
  endpointStatus(list: EpStatus[]): void {
    for (const { endpoint, status: s } of list) {
      this.#hdr(s.header);
      this.#line(`"Version" : ${goQuote(new TextEncoder().encode(s.version))}`);
      this.#line(`"DBSize" : ${s.dbSize}`);
      this.#line(`"Leader" : ${BigInt.asUintN(64, s.leader)}`);
      this.#line(`"IsLearner" : ${s.isLearner}`);
      this.#line(`"RaftIndex" : ${s.raftIndex}`);
      this.#line(`"RaftTerm" : ${s.raftTerm}`);
      this.#line(`"RaftAppliedIndex" : ${s.raftAppliedIndex}`);
      this.#line(`"Errors" : [${(s.errors ?? []).join(" ")}]`);
      this.#line(`"Endpoint" : ${goQuote(new TextEncoder().encode(endpoint))}`);
      this.#line("");
    }
  }
  endpointHashKV(list: EpHashKV[]): void {
    for (const { endpoint, hashKV } of list) {
      this.#hdr(hashKV.header);
      this.#line(`"Endpoint" : ${goQuote(new TextEncoder().encode(endpoint))}`);
      this.#line(`"Hash" : ${hashKV.hash}`);
      this.#line("");
    }
  }
  /** The header's lines only when the response has one (etcdctl 3.4 panics without). */
  alarm(r: AlarmResponse): void {
    if (r.header) this.#hdr(r.header);
    for (const a of r.alarms) {
      this.#line(`"MemberID" : ${BigInt.asUintN(64, a.memberID)}`);
      this.#line(`"AlarmType" : ${a.alarm}`);
      this.#line("");
    }
  }
  leaseGrant(r: LeaseGrantResponse): void {
    this.#hdr(r.header);
    this.#line(`"ID" : ${r.ID}`);
    this.#line(`"TTL" : ${r.TTL}`);
  }
  leaseRevoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.#hdr(r.header);
  }
  leaseKeepAlive(r: LeaseKeepAliveResponse): void {
    this.#hdr(r.header);
    this.#line(`"ID" : ${r.ID}`);
    this.#line(`"TTL" : ${r.TTL}`);
  }
  leaseTimeToLive(r: LeaseTimeToLiveResponse): void {
    this.#hdr(r.header);
    this.#line(`"ID" : ${r.ID}`);
    this.#line(`"TTL" : ${r.TTL}`);
    this.#line(`"GrantedTTL" : ${r.grantedTTL}`);
    for (const k of r.keys) this.#line(`"Key" : ${goQuote(k)}`);
  }
  leaseLeases(r: LeaseLeasesResponse): void {
    this.#hdr(r.header);
    for (const l of r.leases) this.#line(`"ID" : ${l.ID}`);
  }
  memberAdd(): void {
    unsupported("fields");
  }
  memberChanged(): void {
    unsupported("fields");
  }
  memberList(r: MemberListResponse): void {
    this.#hdr(r.header);
    for (const m of r.members) {
      this.#line(`"ID" : ${BigInt.asUintN(64, m.ID)}`);
      this.#line(`"Name" : ${goQuoteString(m.name)}`);
      for (const u of m.peerURLs) this.#line(`"PeerURL" : ${goQuoteString(u)}`);
      for (const u of m.clientURLs) this.#line(`"ClientURL" : ${goQuoteString(u)}`);
      this.#line(`"IsLearner" : ${m.isLearner ?? false}`);
      this.#line("");
    }
  }
  moveLeader(): void {
    unsupported("fields");
  }
  dbStatus(s: DBStatus): void {
    this.#line(`"Hash" : ${s.hash}`);
    this.#line(`"Revision" : ${s.revision}`);
    this.#line(`"Keys" : ${s.totalKey}`);
    this.#line(`"Size" : ${s.totalSize}`);
  }
  authChange(_text: string | Uint8Array, r: AuthHeaderResponse): void {
    this.#hdr(r.header);
  }
  /** etcdctl's `"PermType" :  READ` has two spaces (Println after a trailing one). */
  roleGet(_role: string, r: AuthRoleGetResponse): void {
    this.#hdr(r.header);
    for (const p of r.perm) {
      this.#line(`"PermType" :  ${p.permType}`);
      this.#line(`"Key" : ${goQuote(p.key)}`);
      this.#line(`"RangeEnd" : ${goQuote(p.range_end)}`);
    }
  }
  roleList(r: AuthRolesResponse): void {
    this.#hdr(r.header);
    this.#line(`"Roles" :${r.roles.map((role) => " " + goQuoteString(role)).join("")}`);
  }
  /** etcdctl 3.4's fields printer has no `user get`: exit 4. */
  userGet(): void {
    unsupported("fields");
  }
  /** etcdctl 3.4's fields printer has no `user list`: exit 4. */
  userList(): void {
    unsupported("fields");
  }
}

function hashKVRows(list: EpHashKV[]): string[][] {
  return list.map(({ endpoint, hashKV }) => [endpoint, String(hashKV.hash)]);
}

function statusRows(list: EpStatus[]): string[][] {
  return list.map(({ endpoint, status: s }) => [
    endpoint,
    hexU64(s.header.member_id),
    s.version,
    humanizeBytes(s.dbSize),
    String(s.leader === s.header.member_id),
    String(s.isLearner ?? false),
    String(s.raftTerm),
    String(s.raftIndex),
    String(s.raftAppliedIndex),
    (s.errors ?? []).join(", "),
  ]);
}

/**
 * Renders a table as olekukonko/tablewriter does with etcdctl's settings:
 * upper-case centred headers, right-aligned cells, `+---+` borders.
 */
export function renderTable(header: string[], rows: string[][]): string {
  const width = (s: string) => [...s].length;
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i]))));
  const border = "+" + widths.map((w) => "-".repeat(w + 2)).join("+") + "+\n";
  const center = (s: string, w: number) => {
    const gap = w - width(s);
    const left = Math.floor(gap / 2);
    return " ".repeat(left) + s + " ".repeat(gap - left);
  };
  const line = (cells: string[]) => "| " + cells.join(" | ") + " |\n";
  let out = border;
  out += line(header.map((h, i) => center(h.toUpperCase(), widths[i])));
  out += border;
  for (const r of rows) out += line(r.map((c, i) => " ".repeat(widths[i] - width(c)) + c));
  out += border;
  return out;
}

/** `-w table`: endpoint health, status and hashkv and member list only, as in etcdctl. */
export class TablePrinter implements Printer {
  constructor(private out: Out) {}
  put(): void {
    unsupported("table");
  }
  get(): void {
    unsupported("table");
  }
  del(): void {
    unsupported("table");
  }
  txn(): void {
    unsupported("table");
  }
  watch(): void {
    unsupported("table");
  }
  leaseGrant(): void {
    unsupported("table");
  }
  leaseRevoke(): void {
    unsupported("table");
  }
  leaseKeepAlive(): void {
    unsupported("table");
  }
  leaseTimeToLive(): void {
    unsupported("table");
  }
  leaseLeases(): void {
    unsupported("table");
  }
  memberAdd(): void {
    unsupported("table");
  }
  memberChanged(): void {
    unsupported("table");
  }
  memberList(r: MemberListResponse): void {
    this.out.write(renderTable(MEMBER_HEADER, memberRows(r)));
  }
  moveLeader(): void {
    unsupported("table");
  }
  dbStatus(s: DBStatus): void {
    this.out.write(
      renderTable(["hash", "revision", "total keys", "total size"], [dbStatusRow(s)]),
    );
  }
  alarm(): void {
    unsupported("table");
  }
  authChange(): void {
    unsupported("table");
  }
  roleGet(): void {
    unsupported("table");
  }
  roleList(): void {
    unsupported("table");
  }
  userGet(): void {
    unsupported("table");
  }
  userList(): void {
    unsupported("table");
  }
  endpointHashKV(list: EpHashKV[]): void {
    this.out.write(renderTable(["endpoint", "hash"], hashKVRows(list)));
  }
  endpointHealth(list: EpHealth[]): void {
    this.out.write(renderTable(
      ["endpoint", "health", "took", "error"],
      list.map((h) => [h.endpoint, String(h.health), h.took, h.error ?? ""]),
    ));
  }
  endpointStatus(list: EpStatus[]): void {
    this.out.write(renderTable(
      [
        "endpoint",
        "ID",
        "version",
        "db size",
        "is leader",
        "is learner",
        "raft term",
        "raft index",
        "raft applied index",
        "errors",
      ],
      statusRows(list),
    ));
  }
}

/** `-w protobuf`: the response's protobuf encoding, raw; endpoint commands unsupported. */
export class ProtobufPrinter implements Printer {
  constructor(private out: Out) {}
  put(r: PutResponse): void {
    this.out.write(pbPut(r));
  }
  get(r: RangeResponse): void {
    this.out.write(pbRange(r));
  }
  del(r: DeleteRangeResponse): void {
    this.out.write(pbDel(r));
  }
  txn(r: TxnResponse): void {
    this.out.write(pbTxn(r));
  }
  watch(r: WatchView): void {
    this.out.write(pbWatch(r));
  }
  endpointHealth(): void {
    unsupported("protobuf");
  }
  endpointStatus(): void {
    unsupported("protobuf");
  }
  endpointHashKV(): void {
    unsupported("protobuf");
  }
  alarm(r: AlarmResponse): void {
    this.out.write(pbAlarm(r));
  }
  leaseGrant(r: LeaseGrantResponse): void {
    this.out.write(pbHeader(r.header));
  }
  /** clientv3's LeaseRevokeResponse is no protobuf message to etcdctl: exit 4. */
  leaseRevoke(_id: bigint, r: LeaseRevokeResponse): void {
    throw new CtlError(
      ExitCode.BadFeature,
      `marshal unsupported for type clientv3.LeaseRevokeResponse ({${textHeader(r.header)}})`,
    );
  }
  leaseKeepAlive(r: LeaseKeepAliveResponse): void {
    this.out.write(pbHeader(r.header));
  }
  leaseTimeToLive(r: LeaseTimeToLiveResponse): void {
    this.out.write(pbHeader(r.header));
  }
  leaseLeases(r: LeaseLeasesResponse): void {
    this.out.write(pbHeader(r.header));
  }
  memberAdd(r: MemberAddResponse): void {
    this.out.write(pbMemberAdd(r));
  }
  memberChanged(_verb: MemberVerb, _id: bigint, r: MembersResponse): void {
    this.out.write(pbMembers(r));
  }
  memberList(r: MemberListResponse): void {
    this.out.write(pbMembers(r));
  }
  /** A MoveLeaderResponse is its header alone (none from etcd 3.4: no bytes). */
  moveLeader(_leader: bigint, _target: bigint, r: MoveLeaderResponse): void {
    this.out.write(r.header ? pbMoveLeader(r.header) : new Uint8Array());
  }
  dbStatus(): void {
    unsupported("protobuf");
  }
  authChange(_text: string | Uint8Array, r: AuthHeaderResponse): void {
    this.out.write(pbAuthHeader(r.header));
  }
  roleGet(_role: string, r: AuthRoleGetResponse): void {
    this.out.write(pbAuthRoleGet(r));
  }
  roleList(r: AuthRolesResponse): void {
    this.out.write(pbAuthNames(r.header, r.roles));
  }
  userGet(_user: string, r: AuthRolesResponse): void {
    this.out.write(pbAuthNames(r.header, r.roles));
  }
  userList(r: AuthUserListResponse): void {
    this.out.write(pbAuthNames(r.header, r.users));
  }
}

/** A header in protobuf's compact text format, as Go's `%v` prints it (`cluster_id:1 … `). */
function textHeader(h: ResponseHeader | undefined): string {
  if (!h) return "<nil>";
  const parts: [string, bigint | number | undefined][] = [
    ["cluster_id", h.cluster_id === undefined ? undefined : BigInt.asUintN(64, h.cluster_id)],
    ["member_id", h.member_id === undefined ? undefined : BigInt.asUintN(64, h.member_id)],
    ["revision", h.revision],
    ["raft_term", h.raft_term],
  ];
  return parts.filter(([, v]) => v !== undefined && v !== 0 && v !== 0n)
    .map(([k, v]) => `${k}:${v} `).join("");
}
