/**
 * The Raft log stored through the backend's `raft_log` table: index (8 bytes,
 * big-endian) → entry (term, type, data). Writes happen inside the caller's
 * write transaction, so an entry and the state it produces commit together.
 *
 * @module
 */
import type { Backend } from "../core/backend.ts";
import { LOG_COMPACTION_BATCH } from "../core/limits.ts";
import { copyBytes, decodeRevision, encodeRevision } from "../core/mvcc/encoding.ts";

/** A log entry. `data` is the encoded request (server/entry.ts). */
export interface LogEntry {
  /** Position of the entry in the log (the key of its `raft_log` record). */
  index: number;
  /** Raft term in which the entry was proposed. */
  term: number;
  /** 0 = normal entry, 1 = configuration change. */
  type: number;
  /** The entry's payload. */
  data: Uint8Array;
}

/** Encode an entry's value: term(8) ‖ type(1) ‖ data. */
function encodeEntry(e: LogEntry): Uint8Array {
  const out = new Uint8Array(9 + e.data.length);
  out.set(encodeRevision(e.term), 0);
  out[8] = e.type;
  out.set(e.data, 9);
  return out;
}

/** Append (or overwrite) `entry`; only inside `Backend.write`. */
export function appendEntry(backend: Backend, entry: LogEntry): void {
  backend.put("raft_log", encodeRevision(entry.index), encodeEntry(entry));
}

/** Remove entries with index < `index`; only inside `Backend.write`. */
export function compactLog(
  backend: Backend,
  index: number,
  maxRemoved = LOG_COMPACTION_BATCH,
): number {
  const doomed: Uint8Array[] = [];
  for (const e of backend.scan("raft_log", { end: encodeRevision(index), limit: maxRemoved })) {
    doomed.push(copyBytes(e.key));
  }
  for (const key of doomed) backend.del("raft_log", key);
  return doomed.length;
}

/** Entries with lo ≤ index < hi, in order. */
export function readEntries(backend: Backend, lo: number, hi: number): LogEntry[] {
  const out: LogEntry[] = [];
  const scan = { start: encodeRevision(lo), end: encodeRevision(hi) };
  for (const { key, value } of backend.scan("raft_log", scan)) {
    out.push({
      index: decodeRevision(key),
      term: decodeRevision(value),
      type: value[8],
      data: copyBytes(value.subarray(9)),
    });
  }
  return out;
}

/** Index of the last entry in the log, or 0 when it is empty. */
export function lastIndex(backend: Backend): number {
  for (const { key } of backend.scan("raft_log", { reverse: true, limit: 1 })) {
    return decodeRevision(key);
  }
  return 0;
}
