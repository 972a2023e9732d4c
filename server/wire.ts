/**
 * Messages between the member's main thread (which runs the log and apply
 * loop) and its HTTP worker threads. Payloads are msgpack (bytes stay bytes,
 * bigint stays bigint, and only the bytes of a view are copied — structured
 * clone would copy the whole buffer a view points into).
 *
 * @module
 */
import { Packr } from "msgpackr";
import { EtcdError, type GrpcCode } from "../core/errors.ts";
import type { LogLevel } from "./log.ts";
import type { ApplyResult } from "./raftnode/applier.ts";
import type { ClusterCall } from "./cluster/manager.ts";
import type { Event } from "../core/api/types.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import type { ClientTls } from "./tls.ts";
import type { TokenInfo } from "../core/auth/simple_token.ts";

const packr = new Packr({ useRecords: false, int64AsType: "bigint", mapsAsObjects: true });

/** Encode a message payload into a buffer of its own (transferable). */
export function pack(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

/** Decode a payload made by {@linkcode pack}. */
export function unpack<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/** An ApplyResult as it crosses threads (errors as plain fields). */
export type WireResult =
  | { ok: unknown }
  | { error: { message: string; code: number; httpStatus: number } };

/** To the wire: an EtcdError becomes its fields. */
export function resultToWire(result: ApplyResult): WireResult {
  if ("error" in result) return { error: errorToWire(result.error) };
  return result;
}

/** The fields of an error; a non-etcd error becomes code Unknown. */
export function errorToWire(err: unknown): { message: string; code: number; httpStatus: number } {
  if (err instanceof EtcdError) {
    return { message: err.message, code: err.code, httpStatus: err.httpStatus };
  }
  return { message: String((err as Error)?.message ?? err), code: 2, httpStatus: 500 };
}

/** Back from the wire. */
export function resultFromWire(result: WireResult): ApplyResult {
  if ("error" in result) return { error: errorFromWire(result.error) };
  return result as ApplyResult;
}

/** An EtcdError from its fields. */
export function errorFromWire(e: { message: string; code: number; httpStatus: number }): EtcdError {
  return new EtcdError(e.message, e.code as GrpcCode, e.httpStatus);
}

/**
 * A worker's call to the main thread: a proposal (`payload` is
 * `encodeRequest(request)`, which becomes the log entry), a wait for the
 * physical compaction in progress, or a lease keep-alive, time-to-live or
 * list (the leases live on the main thread), an auth token's assignment or
 * lookup (the member's token table lives there too), or the metrics of the main
 * thread and the other workers (a scrape). Calls of one event-loop turn travel
 * together, msgpack-encoded, in one {@linkcode FromWorker} `calls` message.
 */
export type WorkerCall =
  | { type: "propose"; id: number; payload: Uint8Array }
  | { type: "compacted"; id: number }
  | { type: "lease_renew"; id: number; lease: bigint }
  | { type: "lease_ttl"; id: number; lease: bigint; keys: boolean }
  | { type: "lease_ids"; id: number }
  | { type: "read_index"; id: number }
  | { type: "cluster"; id: number; call: ClusterCall }
  | { type: "token_assign"; id: number; info: TokenInfo }
  | { type: "token_info"; id: number; token: string }
  | { type: "metrics"; id: number };

/** The main thread's answer to a {@linkcode WorkerCall}, by call ID. */
export interface WorkerReply {
  /** The call's ID. */
  id: number;
  /** Its result. */
  result: WireResult;
}

/**
 * Every message from the main thread to an HTTP worker:
 * - `init`: start serving (`payload` is the msgpack {@linkcode InitMessage};
 *   `fence` the read fence's shared memory; `logLock` the log's
 *   cross-thread write lock, see server/log.ts),
 * - `replies`: answers to calls, msgpack {@linkcode WorkerReply}[],
 * - `applied`: more entries became visible (wake waiting reads); `feed`
 *   is the applied-change feed, a msgpack {@linkcode FeedBatch} (one copy
 *   per worker of the changes of every batch made visible in one turn);
 *   `revision` alone means the worker's watchers must catch up from history,
 * - `metrics`: send this worker's metric values (answer `metrics` with the same `id`),
 * - `stop`: stop listening, finish open requests, answer `stopped`.
 */
export type ToWorker =
  | { type: "init"; payload: Uint8Array; fence: SharedArrayBuffer; logLock?: SharedArrayBuffer }
  | { type: "replies"; bytes: Uint8Array }
  | { type: "applied"; feed?: Uint8Array; revision?: number }
  /**
   * Close the store (its file is being replaced), answer `suspended`, then
   * hold the thread until `gate[0]` turns non-zero, and open it again.
   */
  | { type: "suspend"; gate: SharedArrayBuffer }
  | { type: "metrics"; id: number }
  | { type: "stop" };

/**
 * The changes carried by an `applied` message (msgpack): the events of the
 * revisions after the previous message's up to `revision`, in order. A
 * message without them but with a `revision` means the worker fell too far
 * behind: its watchers read those revisions from the stored history.
 */
export interface FeedBatch {
  /** The events, in revision order, each with its prev_kv. */
  events: Event[];
  /** The revision after them. */
  revision: number;
}

/**
 * Every message from an HTTP worker to the main thread:
 * - `calls`: msgpack {@linkcode WorkerCall}[] of one event-loop turn,
 * - `read-waiting`: a read waits for answered writes (commit them now),
 * - `fed`: the worker took an `applied` feed of `bytes` bytes (flow control),
 * - `watching`: the worker got its first watcher, or lost its last (it gets
 *   the changes only while it has watchers; otherwise only the revision),
 * - `listening` / `failed`: the outcome of `init`,
 * - `metrics`: the answer to `metrics`: the worker's metric values,
 * - `stopped`: the answer to `stop`.
 */
export type FromWorker =
  | { type: "calls"; bytes: Uint8Array }
  | { type: "read-waiting" }
  | { type: "fed"; bytes: number }
  | { type: "watching"; watching: boolean }
  | { type: "listening"; port: number }
  | { type: "suspended"; error?: string }
  | { type: "failed"; message: string; addrInUse: boolean }
  | { type: "metrics"; id: number; snapshot: MetricsSnapshot }
  | { type: "stopped" };

/**
 * The end of an exhaustive switch over a message union: a new kind that
 * one side forgot fails type-checking there, and throws if it ever runs.
 *
 * @throws {Error} always.
 */
export function unknownMessage(msg: never): never {
  throw new Error(`Unknown thread message: ${JSON.stringify((msg as { type?: unknown }).type)}`);
}

/** Main → worker: start serving (the msgpack payload of a `init` message). */
export interface InitMessage {
  /** Message tag. */
  type: "init";
  /** The state machine's LMDB directory. */
  kvPath: string;
  /** Host name or address to listen on. */
  hostname: string;
  /** TCP port to listen on (shared with SO_REUSEPORT). */
  port: number;
  /** Serve gRPC on the port. */
  grpc: boolean;
  /** Serve the JSON gateway on the port. */
  http: boolean;
  /** Serve TLS with these settings (an https URL); none: plain TCP. */
  tls?: ClientTls;
  /** Where Maintenance.Snapshot writes its temporary copy. */
  snapshotDir: string;
  /** The cluster's ID, for response headers. */
  clusterId: bigint;
  /** This member's ID, for response headers. */
  memberId: bigint;
  /** The member's current Raft term. */
  term: number;
  /** Ops or compares per txn level, at most (--max-txn-ops). */
  maxTxnOps: number;
  /** Largest request accepted, in bytes (--max-request-bytes). */
  maxRequestBytes: number;
  /** --quota-backend-bytes (0: the default quota; negative: none). */
  quotaBackendBytes: number;
  /** --bcrypt-cost (undefined: 10). */
  bcryptCost?: number;
  /** cairn's version, reported by `GET /version`. */
  cairnVersion: string;
  /** The member's --log-level. */
  logLevel: LogLevel;
  /** The member's resolved --log-outputs (absent: stderr). */
  logOutputs?: string[];
  /** ms a read may take before it is logged as slow (--experimental-warning-apply-duration). */
  warningApplyDurationMs?: number;
  /** Milliseconds between progress notifications to idle watchers that ask for them. */
  progressNotifyIntervalMs?: number;
}
