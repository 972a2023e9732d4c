/**
 * Physical compaction: removes the history a compaction made unreadable, in
 * bounded batches (one write transaction each) so writes interleave.
 *
 * @module
 */
import type { Backend } from "../backend.ts";
import {
  compareBytes,
  copyBytes,
  encodeRevlogKey,
  historyKeyRevision,
  historyKeyUserKey,
  isTombstone,
  recordModRevision,
} from "./encoding.ts";
import { Meta } from "./view.ts";
import { HISTORY_COMPACTION_BATCH } from "../limits.ts";

/** Options of {@linkcode compactHistory}. */
export interface CompactOptions {
  /** History records visited per write transaction. Default 10,000. */
  batchSize?: number;
}

/**
 * Remove, for every key, the versions below `rev` except the one visible at
 * `rev`, and the revision log up to `rev`. A key's visible version is its
 * live record in `current` when that was written at or below `rev` (then
 * every `history` record of the key goes), else its newest `history` record
 * at or below `rev`, which stays unless it is a tombstone. Idempotent and
 * resumable: a crash part-way leaves a store that a second run finishes.
 * Records `compact_done` = rev at the end.
 */
export async function compactHistory(
  backend: Backend,
  rev: number,
  options: CompactOptions = {},
): Promise<void> {
  // Revisions start at 1: a compaction at 0 (legal on a store never
  // compacted) has nothing to remove.
  if (rev < 1) return;
  const batchSize = options.batchSize ?? HISTORY_COMPACTION_BATCH;
  let start: Uint8Array | undefined = undefined;
  do {
    start = await backend.write(() => compactBatch(backend, rev, start, batchSize));
  } while (start !== undefined);
  // The compacted revision's own changes stay: a watch may start there.
  const revlogEnd = encodeRevlogKey(rev, 0);
  let more = true;
  while (more) {
    more = await backend.write(() => {
      const doomed: Uint8Array[] = [];
      for (const e of backend.scan("revlog", { end: revlogEnd, limit: batchSize })) {
        doomed.push(copyBytes(e.key));
      }
      for (const key of doomed) backend.del("revlog", key);
      return doomed.length === batchSize;
    });
  }
  await backend.write(() => {
    const done = Number(backend.getMeta(Meta.compactDone) ?? 0);
    if (rev > done) backend.putMeta(Meta.compactDone, rev);
  });
}

function compactBatch(
  backend: Backend,
  rev: number,
  start: Uint8Array | undefined,
  batchSize: number,
): Uint8Array | undefined {
  const doomed: Uint8Array[] = [];
  let visited = 0;
  let group: Uint8Array | undefined;
  let userKey: Uint8Array | undefined; // the group's user key
  let pending: Uint8Array | undefined; // key of the newest version ≤ rev seen in the group
  let pendingDead = false; // whether that version is a tombstone
  let next: Uint8Array | undefined;
  const closeGroup = () => {
    if (pending !== undefined) {
      const live = backend.get("current", userKey!);
      if (pendingDead || (live !== undefined && recordModRevision(live) <= rev)) {
        doomed.push(pending);
      }
    }
    pending = undefined;
  };
  for (const entry of backend.scan("history", { start })) {
    const prefix = entry.key.subarray(0, entry.key.length - 8);
    if (group === undefined || compareBytes(prefix, group) !== 0) {
      closeGroup();
      if (visited >= batchSize) {
        next = copyBytes(entry.key);
        break;
      }
      group = copyBytes(prefix);
      userKey = historyKeyUserKey(entry.key);
    }
    visited++;
    if (historyKeyRevision(entry.key) <= rev) {
      if (pending !== undefined) doomed.push(pending);
      pending = copyBytes(entry.key);
      pendingDead = isTombstone(entry.value);
    }
  }
  if (next === undefined) closeGroup();
  for (const key of doomed) backend.del("history", key);
  return next;
}
