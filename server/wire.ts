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

/** Main → worker: start serving. */
export interface InitMessage {
  /** Message tag. */
  type: "init";
  /** The state machine's LMDB directory. */
  kvPath: string;
  /** Host name or address to listen on. */
  hostname: string;
  /** TCP port to listen on (shared with SO_REUSEPORT). */
  port: number;
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
  /** cairn's version, reported by `GET /version`. */
  cairnVersion: string;
  /** The member's --log-level. */
  logLevel: LogLevel;
}
