/**
 * etcd's slow-request warning: a request that took longer than
 * --experimental-warning-apply-duration (default `WARNING_APPLY_DURATION_MS`,
 * 100 ms) is logged as etcd 3.4's zap logger logs it:
 *
 * ```json
 * {"level":"warn","ts":"…","msg":"apply request took too long","took":"150.2ms",
 *  "expected-duration":"100ms","prefix":"","request":"header:<ID:7 > put:<key:\"foo\" value_size:3 >",
 *  "response":"size:4"}
 * ```
 *
 * An applied entry has the prefix `""`; a read-only range or read-only txn
 * (timed from its arrival to its answer, its ReadIndex wait included) has
 * `"read-only range "`. The request is etcd's loggable text: protobuf's
 * compact text format with values replaced by their size (`value_size:3`)
 * and lease IDs in hex. The response is its protobuf size
 * (`size:4`), or for a range `range_response_count:N size:M`; a failed
 * request also has `error`.
 *
 * @module
 */
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from "../core/api/types.ts";
import type { MessageName } from "../core/api/codec.ts";
import { encodeMessage } from "../core/api/proto.ts";
import { goDuration, log } from "./log.ts";
import type { InternalRequest } from "./raftnode/request.ts";

/** protobuf text format's quoting of bytes: C escapes, other bytes as 3-digit octal. */
function textBytes(bytes: Uint8Array): string {
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x0a) out += "\\n";
    else if (b === 0x0d) out += "\\r";
    else if (b === 0x09) out += "\\t";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\" + b.toString(8).padStart(3, "0");
  }
  return out + '"';
}

/** Compact text fields, in field-number order; zero values are left out, as protobuf does. */
function fields(pairs: [string, unknown][]): string {
  let out = "";
  for (const [name, value] of pairs) {
    if (value === undefined || value === null || value === false || value === 0) continue;
    if (value === 0n || value === "") continue;
    if (value instanceof Uint8Array) {
      if (value.length > 0) out += `${name}:${textBytes(value)} `;
    } else out += `${name}:${value} `;
  }
  return out;
}

/** etcd's `NewLoggablePutRequest`: the value replaced by `value_size`. */
function loggablePut(req: PutRequest): string {
  return fields([
    ["key", req.key],
    ["value_size", req.value?.length ?? 0],
    ["lease", req.lease],
    ["prev_kv", req.prev_kv],
    ["ignore_value", req.ignore_value],
    ["ignore_lease", req.ignore_lease],
  ]);
}

/** A RangeRequest in compact text (`key:"a" range_end:"z" limit:5 revision:1 `). */
export function loggableRange(req: RangeRequest): string {
  return fields([
    ["key", req.key],
    ["range_end", req.range_end],
    ["limit", req.limit],
    ["revision", req.revision],
    ["sort_order", req.sort_order === "NONE" ? undefined : req.sort_order],
    ["sort_target", req.sort_target === "KEY" ? undefined : req.sort_target],
    ["serializable", req.serializable],
    ["keys_only", req.keys_only],
    ["count_only", req.count_only],
    ["min_mod_revision", req.min_mod_revision],
    ["max_mod_revision", req.max_mod_revision],
    ["min_create_revision", req.min_create_revision],
    ["max_create_revision", req.max_create_revision],
  ]);
}

function loggableDelete(req: DeleteRangeRequest): string {
  return fields([["key", req.key], ["range_end", req.range_end], ["prev_kv", req.prev_kv]]);
}

/** A compare; a value compare shows `value_size` (etcd's `loggableValueCompare`). */
function loggableCompare(c: Compare): string {
  const common: [string, unknown][] = [
    ["result", c.result === "EQUAL" ? undefined : c.result],
    ["target", c.target === "VERSION" ? undefined : c.target],
    ["key", c.key],
  ];
  if (c.target === "VALUE") {
    return fields([...common, ["value_size", c.value?.length ?? 0], ["range_end", c.range_end]]);
  }
  const union: [string, unknown] = c.target === "CREATE"
    ? ["create_revision", c.create_revision]
    : c.target === "MOD"
    ? ["mod_revision", c.mod_revision]
    : c.target === "LEASE"
    ? ["lease", c.lease]
    : ["version", c.version];
  // A oneof member is written even when zero.
  const [name, value] = union;
  return fields(common) + `${name}:${value ?? 0} ` + fields([["range_end", c.range_end]]);
}

function loggableOp(op: RequestOp): string {
  if ("request_range" in op) return `request_range:<${loggableRange(op.request_range)}> `;
  if ("request_put" in op) return `request_put:<${loggablePut(op.request_put)}>`;
  if ("request_delete_range" in op) {
    return `request_delete_range:<${loggableDelete(op.request_delete_range)}> `;
  }
  return `request_txn:<${loggableTxn(op.request_txn)}>`;
}

/** etcd's `NewLoggableTxnRequest`: `compare:<…> success:<…> failure:<…>`. */
export function loggableTxn(req: TxnRequest): string {
  const compare = req.compare.map((c) => loggableCompare(c)).join(" ");
  const success = req.success.map(loggableOp).join(" ");
  const failure = req.failure.map(loggableOp).join(" ");
  return `compare:<${compare}> success:<${success}> failure:<${failure}>`;
}

/** A lease ID as etcd's stringer prints it: 16 hex digits. */
function leaseHex(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, "0");
}

/**
 * An applied request as etcd's `InternalRaftStringer` writes it:
 * `header:<ID:7 > put:<key:"foo" value_size:3 >`. `id` is the request's
 * ID in the log.
 */
export function loggableRequest(id: number, req: InternalRequest): string {
  const header = `header:<ID:${id} >`;
  switch (req.type) {
    case "put":
      return `${header} put:<${loggablePut(req.put)}>`;
    case "delete_range":
      return `${header} delete_range:<${loggableDelete(req.delete_range)}> `;
    case "txn":
      return `${header} txn:<${loggableTxn(req.txn)}>`;
    case "compaction":
      return `${header} compaction:<${
        fields([["revision", req.compaction.revision], ["physical", req.compaction.physical]])
      }> `;
    case "lease_grant":
      return `${header} lease_grant:<ttl:${req.lease_grant.TTL}-second id:${
        leaseHex(req.lease_grant.ID)
      }>`;
    case "lease_revoke":
      return `${header} lease_revoke:<id:${leaseHex(req.lease_revoke.ID)}>`;
    case "lease_checkpoint":
      return `${header} lease_checkpoint:<${
        req.lease_checkpoint.checkpoints.map((c) =>
          `checkpoints:<${fields([["ID", c.ID], ["remaining_TTL", c.remaining_TTL]])}> `
        ).join("")
      }> `;
    case "member_update": {
      const m = req.member_update;
      return `${header} member_update:<${fields([["ID", leaseHex(m.ID)], ["name", m.name]])}${
        (m.peerURLs ?? []).map((u) => `peerURLs:"${u}" `).join("")
      }${(m.clientURLs ?? []).map((u) => `clientURLs:"${u}" `).join("")}> `;
    }
    case "alarm":
      return `${header} alarm:<action:${req.alarm.action} memberID:${req.alarm.memberID} alarm:${req.alarm.alarm} > `;
    default:
      return `${header} ${(req as { type: string }).type}:<> `;
  }
}

/** `size:N`: the protobuf size of a response, as etcd logs it. */
export function responseSize(type: MessageName, resp: unknown): string {
  try {
    // deno-lint-ignore no-explicit-any
    return `size:${encodeMessage(type, resp as any).length}`;
  } catch {
    return "";
  }
}

/** A range response as etcd logs it: `range_response_count:N size:M`. */
export function rangeResponseText(resp: RangeResponse): string {
  return `range_response_count:${resp.kvs.length} ${responseSize("RangeResponse", resp)}`;
}

/** A read-only txn's responses as etcd logs them: `responses:<range_response_count:N …> size:M`. */
export function txnResponseText(resp: TxnResponse): string {
  const counts = resp.responses.map((r) =>
    "response_range" in r ? `range_response_count:${r.response_range.kvs.length}` : ""
  ).filter((s) => s.length > 0);
  return `responses:<${counts.join(" ")}> ${responseSize("TxnResponse", resp)}`;
}

/** What a slow request was and how it ended. */
export interface SlowRequest {
  /** ms it took. */
  tookMs: number;
  /** ms it was expected to take at most (--experimental-warning-apply-duration). */
  expectedMs: number;
  /** `""` for an applied entry, `"read-only range "` for a local read. */
  prefix: "" | "read-only range ";
  /** The loggable request text. */
  request: string;
  /** The response text (`size:N`…), empty when it failed. */
  response: string;
  /** The error it failed with, if it did. */
  error?: unknown;
}

/**
 * Log etcd's `apply request took too long` warning for `slow` if it took
 * longer than expected; nothing otherwise. Returns whether it logged.
 */
export function warnIfSlow(slow: SlowRequest): boolean {
  if (!(slow.tookMs > slow.expectedMs)) return false;
  log.warn("apply request took too long", {
    took: goDuration(slow.tookMs),
    "expected-duration": goDuration(slow.expectedMs),
    prefix: slow.prefix,
    request: slow.request,
    response: slow.response,
    error: slow.error,
  });
  return true;
}
