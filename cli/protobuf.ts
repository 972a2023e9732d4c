/**
 * `-w protobuf`: etcdctl prints the response's protobuf wire encoding
 * (gogoproto `Marshal`: fields in number order, zero scalars and nil
 * messages left out, a present message written even when empty). Field
 * numbers are etcd 3.4's `rpc.proto` and `kv.proto`.
 *
 * @module
 */

import type {
  AlarmResponse,
  AlarmType,
  AuthRoleGetResponse,
  DeleteRangeResponse,
  Event,
  KeyValue,
  Member,
  MemberAddResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
} from "../core/api/types.ts";

/** A protobuf message being written. */
class Writer {
  #bytes: number[] = [];

  #varint(v: bigint): void {
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.#bytes.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    this.#bytes.push(Number(u));
  }

  /** A varint field (int64, uint64, bool); zero is left out. */
  int(field: number, v: number | bigint | boolean | undefined): this {
    const n = typeof v === "boolean" ? (v ? 1n : 0n) : BigInt(v ?? 0);
    if (n !== 0n) {
      this.#varint(BigInt(field << 3));
      this.#varint(n);
    }
    return this;
  }

  /** A length-delimited field; `always` writes it even when empty (a set message). */
  bytes(field: number, b: Uint8Array | undefined, always = false): this {
    if (b === undefined || (b.length === 0 && !always)) return this;
    this.#varint(BigInt((field << 3) | 2));
    this.#varint(BigInt(b.length));
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  /** An embedded message field, written when present. */
  message(field: number, m: Uint8Array | undefined): this {
    return this.bytes(field, m, true);
  }

  done(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

function header(h: ResponseHeader | undefined): Uint8Array | undefined {
  if (!h) return undefined;
  return new Writer().int(1, h.cluster_id).int(2, h.member_id).int(3, h.revision)
    .int(4, h.raft_term).done();
}

function keyValue(kv: KeyValue | undefined): Uint8Array | undefined {
  if (!kv) return undefined;
  return new Writer().bytes(1, kv.key).int(2, kv.create_revision).int(3, kv.mod_revision)
    .int(4, kv.version).bytes(5, kv.value).int(6, kv.lease).done();
}

/**
 * A ResponseHeader alone in protobuf wire format: what etcdctl prints for
 * clientv3's lease responses, whose embedded `*pb.ResponseHeader` lends
 * them its Marshal.
 */
export function pbHeader(h: ResponseHeader | undefined): Uint8Array {
  return header(h) ?? new Uint8Array();
}

/** RangeResponse in protobuf wire format. */
export function pbRange(r: RangeResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header));
  for (const kv of r.kvs) w.message(2, keyValue(kv));
  return w.int(3, r.more).int(4, r.count).done();
}

/** PutResponse in protobuf wire format. */
export function pbPut(r: PutResponse): Uint8Array {
  return new Writer().message(1, header(r.header)).message(2, keyValue(r.prev_kv)).done();
}

/** DeleteRangeResponse in protobuf wire format. */
export function pbDel(r: DeleteRangeResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header)).int(2, r.deleted);
  for (const kv of r.prev_kvs) w.message(3, keyValue(kv));
  return w.done();
}

function responseOp(op: ResponseOp): Uint8Array {
  const w = new Writer();
  if ("response_range" in op) w.message(1, pbRange(op.response_range));
  else if ("response_put" in op) w.message(2, pbPut(op.response_put));
  else if ("response_delete_range" in op) w.message(3, pbDel(op.response_delete_range));
  else w.message(4, pbTxn(op.response_txn));
  return w.done();
}

/** TxnResponse in protobuf wire format. */
export function pbTxn(r: TxnResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header)).int(2, r.succeeded);
  for (const op of r.responses) w.message(3, responseOp(op));
  return w.done();
}

function event(ev: Event): Uint8Array {
  return new Writer().int(1, ev.type === "DELETE" ? 1 : 0).message(2, keyValue(ev.kv))
    .message(3, keyValue(ev.prev_kv)).done();
}

/**
 * A watch response in protobuf wire format, as etcdctl rebuilds it from
 * clientv3's WatchResponse: header (always), created, canceled,
 * compact_revision and events; no watch_id, cancel_reason or fragment.
 */
export function pbWatch(r: {
  header: ResponseHeader;
  events?: Event[];
  compactRevision: number;
  canceled: boolean;
  created: boolean;
}): Uint8Array {
  const w = new Writer().message(1, header(r.header)).int(3, r.created).int(4, r.canceled)
    .int(5, r.compactRevision);
  for (const ev of r.events ?? []) w.message(11, event(ev));
  return w.done();
}

const enc = new TextEncoder();

function member(m: Member): Uint8Array {
  const w = new Writer().int(1, m.ID).bytes(2, enc.encode(m.name));
  for (const u of m.peerURLs) w.bytes(3, enc.encode(u), true);
  for (const u of m.clientURLs) w.bytes(4, enc.encode(u), true);
  return w.int(5, m.isLearner).done();
}

/** MemberAddResponse in protobuf wire format. */
export function pbMemberAdd(r: MemberAddResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header));
  if (r.member) w.message(2, member(r.member));
  for (const m of r.members) w.message(3, member(m));
  return w.done();
}

/** MemberListResponse (and MemberRemove/Update/PromoteResponse) in protobuf wire format. */
export function pbMembers(r: { header: ResponseHeader; members: Member[] }): Uint8Array {
  const w = new Writer().message(1, header(r.header));
  for (const m of r.members) w.message(2, member(m));
  return w.done();
}

/** MoveLeaderResponse with a header in protobuf wire format. */
export function pbMoveLeader(h: ResponseHeader): Uint8Array {
  return new Writer().message(1, header(h)).done();
}

/** etcdserverpb.AlarmType's numbers. */
const ALARM_TYPE_NUMBER: Readonly<Record<AlarmType, number>> = { NONE: 0, NOSPACE: 1, CORRUPT: 2 };

/** An alarm kind's number in etcd's rpc.proto (NONE 0, NOSPACE 1, CORRUPT 2). */
export function alarmTypeNumber(t: AlarmType): number {
  return ALARM_TYPE_NUMBER[t];
}

/** AlarmResponse in protobuf wire format (no bytes at all for no header and no alarms). */
export function pbAlarm(r: AlarmResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header));
  for (const a of r.alarms) {
    w.message(2, new Writer().int(1, a.memberID).int(2, alarmTypeNumber(a.alarm)).done());
  }
  return w.done();
}

/** An Auth response that is a header alone (AuthUserAddResponse, …) in protobuf wire format. */
export function pbAuthHeader(h: ResponseHeader | undefined): Uint8Array {
  return new Writer().message(1, header(h)).done();
}

/**
 * A header and a list of names in protobuf wire format: AuthUserGetResponse
 * and AuthRoleListResponse (roles), AuthUserListResponse (users), field 2.
 */
export function pbAuthNames(h: ResponseHeader | undefined, names: string[]): Uint8Array {
  const w = new Writer().message(1, header(h));
  for (const n of names) w.bytes(2, enc.encode(n), true);
  return w.done();
}

/** authpb.Permission.Type's numbers. */
const PERM_TYPE_NUMBER = { READ: 0, WRITE: 1, READWRITE: 2 } as const;

/** AuthRoleGetResponse in protobuf wire format (authpb.Permission: permType 1, key 2, range_end 3). */
export function pbAuthRoleGet(r: AuthRoleGetResponse): Uint8Array {
  const w = new Writer().message(1, header(r.header));
  for (const p of r.perm) {
    w.message(
      2,
      new Writer().int(1, PERM_TYPE_NUMBER[p.permType]).bytes(2, p.key).bytes(3, p.range_end)
        .done(),
    );
  }
  return w.done();
}
