/**
 * Views of the MVCC keyspace at a revision: {@linkcode ReadView} over the
 * committed state and {@linkcode WriteView} inside one write transaction
 * (etcd's `mvcc.TxnRead` / `mvcc.TxnWrite`).
 *
 * Tables (see native/README.md): `current` maps a live key to its newest
 * record, so a range at the current revision is one cursor walk; `history`
 * holds every other version (superseded ones and tombstones) keyed by (key,
 * revision), so each version is stored once and a range at an older revision
 * walks the versions of the keys in range in both tables; `revlog` maps
 * (revision, sub) to the key changed, in revision order, for watch replay.
 *
 * The version of a key visible at revision `rev` is therefore its `current`
 * record if that record's mod_revision ≤ `rev` (it wins a tie with a
 * tombstone of the same revision: a delete then a put in one txn), else its
 * newest `history` record at or below `rev`, unless that is a tombstone.
 *
 * @module
 */
import type { Backend, Entry, Table } from "../backend.ts";
import { Errors } from "../errors.ts";
import { invariant } from "../invariant.ts";
import {
  compareBytes,
  copyBytes,
  decodeRecord,
  encodeRecord,
  encodeRevlogKey,
  escapeKey,
  historyKey,
  historyKeyRevision,
  historyKeyUserKey,
  isStorableKey,
  isTombstone,
  MAX_STORED_KEY_BYTES,
  recordModRevision,
  revlogKeyRevision,
} from "./encoding.ts";
import type { Event, KeyValue } from "../api/types.ts";

/** Metadata names in the `meta` table. */
export const Meta = {
  /** Current (newest committed) revision. */
  revision: "revision",
  /** Revision of the last compaction request; reads below it fail. */
  compactRevision: "compact_revision",
  /** Revision up to which history has been physically removed. */
  compactDone: "compact_done",
  /** Raft log index of the last applied entry (written with the KV change). */
  appliedIndex: "applied_index",
  /** Raft term of a store written before the WAL existed (its log's base term). */
  term: "term",
  /** This member's 64-bit ID, as a decimal string, fixed when the member is created. */
  memberId: "member_id",
  /** The cluster's 64-bit ID, as a decimal string, fixed when the member is created. */
  clusterId: "cluster_id",
  /** The record format of `current` and `history` ({@linkcode RECORD_FORMAT}), set at creation. */
  recordFormat: "record_format",
  /** This member's core/raft node ID, fixed when the member is created. */
  raftId: "raft_id",
  /** Raft term of the last applied entry (a snapshot of the store carries it). */
  appliedTerm: "applied_term",
  /**
   * The cluster's membership as of the applied index (JSON of
   * server/cluster/membership.ts), written with each conf change entry.
   */
  membership: "membership",
  /**
   * The raised alarms (etcd's alarm bucket), as a JSON array of
   * `[memberID as decimal string, AlarmType]`, written when an alarm
   * request applies; absent when none was ever raised.
   */
  alarms: "alarms",
  /**
   * The auth store (etcd's auth, authUsers and authRoles buckets: users,
   * roles, the enabled flag and the auth revision) as core/auth's
   * `AuthStore.encode` writes it; absent until the first auth change.
   */
  auth: "auth",
} as const;

/**
 * The record format this version writes and reads (core/mvcc/encoding.ts).
 * 2: records without the key, varint revisions. A store written in format 1
 * (key in every record, fixed-width fields; no `record_format` in `meta`) is
 * not readable.
 */
export const RECORD_FORMAT = 2;

/**
 * The compacted revision of a store that has never been compacted (etcd's
 * initial `compactMainRev`): every revision ≥ 0 may still be compacted.
 */
export const NEVER_COMPACTED = -1;

/** A change made by a write transaction, in order (a watch event: mvccpb.Event). */
export type { Event };

/** Options of {@linkcode ReadView.rangeKeys}. */
export interface RangeKeysOptions {
  /** Revision to read at; ≤ 0 means the view's revision. */
  rev?: number;
  /** Maximum kvs returned; ≤ 0 means all. */
  limit?: number;
  /** Count only; no kvs returned. */
  countOnly?: boolean;
  /** Leave values empty. */
  keysOnly?: boolean;
}

/** Result of {@linkcode ReadView.rangeKeys}. */
export interface RangeKeysResult {
  /** The key-values read, in key order; empty with `countOnly`. */
  kvs: KeyValue[];
  /** Live keys in the range at the revision read (before the limit). */
  count: number;
  /** The view's revision (not the revision read at), as etcd reports it. */
  rev: number;
}

/**
 * Convert a request's range_end to a scan bound: undefined for a single key,
 * an empty array for "to the end of the keyspace" (range_end `\0`), else the
 * exclusive end (etcd's `mkGteRange`).
 */
export function rangeBound(rangeEnd: Uint8Array | undefined): Uint8Array | undefined {
  if (rangeEnd === undefined || rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return new Uint8Array(0);
  return rangeEnd;
}

/**
 * Records with start ≤ key < end (end undefined: no upper bound), for bounds
 * of any length. Stored keys are at most MAX_STORED_KEY_BYTES long, and
 * storage cannot take a longer bound, so a longer bound is cut to that
 * length: a stored key k is ≥ a long start s exactly when k > s's prefix,
 * and < a long end e exactly when k ≤ e's prefix.
 */
function* scanBounded(
  backend: Backend,
  table: Table,
  start: Uint8Array,
  end: Uint8Array | undefined,
): Iterable<Entry> {
  const cutStart = start.length > MAX_STORED_KEY_BYTES;
  const from = cutStart ? start.subarray(0, MAX_STORED_KEY_BYTES) : start;
  const cutEnd = end !== undefined && end.length > MAX_STORED_KEY_BYTES;
  const to = cutEnd ? end.subarray(0, MAX_STORED_KEY_BYTES) : end;
  for (const entry of backend.scan(table, { start: from, end: cutEnd ? undefined : to })) {
    if (cutStart && compareBytes(entry.key, from) === 0) continue;
    if (cutEnd && compareBytes(entry.key, to!) > 0) return;
    yield entry;
  }
}

/** The revision state a view starts from. */
export interface ViewState {
  /** The current revision. */
  revision: number;
  /** Reads below this revision fail. */
  compactRevision: number;
}

/**
 * The key-value operations a view ran, counted as etcd's `metricsTxnWrite`
 * counts them (the source of etcd_mvcc_range_total, etcd_mvcc_put_total,
 * etcd_mvcc_delete_total and etcd_mvcc_txn_total): every `rangeKeys` call
 * (explicit ranges, txn compares, the previous value read by a put or delete
 * with prev_kv or ignore_value/ignore_lease), every `put`, every
 * `deleteRange` call; and, per etcd transaction ended with
 * {@linkcode ReadView.endTxn}, one txn when it ran more than one operation.
 */
export interface MvccOps {
  /** rangeKeys calls. */
  ranges: number;
  /** Keys put. */
  puts: number;
  /** deleteRange calls (not keys deleted). */
  deletes: number;
  /** etcd transactions that ran more than one operation. */
  txns: number;
}

/** A consistent view of the keyspace at one revision. */
export class ReadView {
  /** The storage the view reads from. */
  protected readonly backend: Backend;
  /** The revision committed when the view began. */
  readonly beginRev: number;
  /** Reads below this revision fail with "required revision has been compacted". */
  readonly compactRev: number;

  /**
   * A view of `backend` at its current revision.
   *
   * @param state the revision and compacted revision, when the caller
   *   already knows them (the apply loop does); read from `meta` otherwise.
   */
  /** The operations run on this view so far (see {@linkcode MvccOps}). */
  readonly ops: MvccOps = { ranges: 0, puts: 0, deletes: 0, txns: 0 };
  /** ranges + puts + deletes when the last etcd transaction ended. */
  #opsEnded = 0;

  constructor(backend: Backend, state?: ViewState) {
    this.backend = backend;
    this.beginRev = state?.revision ?? Number(backend.getMeta(Meta.revision) ?? 1);
    this.compactRev = state?.compactRevision ??
      Number(backend.getMeta(Meta.compactRevision) ?? 0);
  }

  /** The revision this view reads at by default. */
  rev(): number {
    return this.beginRev;
  }

  /**
   * Keys in [key, end) at a revision, in key order (etcd's `rangeKeys`).
   * `end` undefined: the single key; empty: every key ≥ key.
   *
   * @throws {EtcdError} FutureRev when `rev` > the view's revision,
   *   Compacted when `rev` < the compacted revision.
   */
  rangeKeys(
    key: Uint8Array,
    end: Uint8Array | undefined,
    options: RangeKeysOptions = {},
  ): RangeKeysResult {
    this.ops.ranges++;
    return this.rangeUncounted(key, end, options);
  }

  /**
   * End one etcd transaction on this view (etcd's `metricsTxnWrite.End`):
   * it counts in `ops.txns` when it ran more than one operation since the
   * previous end.
   */
  endTxn(): void {
    const n = this.ops.ranges + this.ops.puts + this.ops.deletes;
    if (n - this.#opsEnded > 1) this.ops.txns++;
    this.#opsEnded = n;
  }

  /** {@linkcode ReadView.rangeKeys} without counting it in `ops` (a read inside another operation). */
  protected rangeUncounted(
    key: Uint8Array,
    end: Uint8Array | undefined,
    options: RangeKeysOptions = {},
  ): RangeKeysResult {
    const curRev = this.rev();
    let rev = options.rev ?? 0;
    if (rev > curRev) throw Errors.FutureRev();
    if (rev <= 0) rev = curRev;
    if (rev < this.compactRev) throw Errors.Compacted();
    const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
    const found = rev === curRev
      ? this.#rangeCurrent(key, end, limit, options)
      : this.#rangeHistory(key, end, rev, limit, options);
    return { kvs: found.kvs, count: found.count, rev: curRev };
  }

  #rangeCurrent(
    key: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
    options: RangeKeysOptions,
  ) {
    const kvs: KeyValue[] = [];
    if (end === undefined) {
      const bytes = isStorableKey(key) ? this.backend.get("current", key) : undefined;
      if (bytes === undefined) return { kvs, count: 0 };
      if (!options.countOnly) kvs.push(decodeRecord(key, bytes, options.keysOnly).kv);
      return { kvs, count: 1 };
    }
    if (end.length > 0 && compareBytes(end, key) <= 0) return { kvs, count: 0 };
    const upper = end.length > 0 ? end : undefined;
    const simple = key.length <= MAX_STORED_KEY_BYTES &&
      (upper === undefined || upper.length <= MAX_STORED_KEY_BYTES);
    let count = 0;
    if (simple) count = this.backend.count("current", { start: key, end: upper });
    if (!options.countOnly || !simple) {
      for (const entry of scanBounded(this.backend, "current", key, upper)) {
        if (!simple) count++;
        if (!options.countOnly && kvs.length < limit) {
          kvs.push(decodeRecord(entry.key, entry.value, options.keysOnly).kv);
        } else if (simple) break;
      }
    }
    return { kvs, count };
  }

  #rangeHistory(
    key: Uint8Array,
    end: Uint8Array | undefined,
    rev: number,
    limit: number,
    options: RangeKeysOptions,
  ) {
    const kvs: KeyValue[] = [];
    let count = 0;
    const take = (key: Uint8Array, bytes: Uint8Array | undefined) => {
      if (bytes === undefined || isTombstone(bytes)) return;
      count++;
      if (!options.countOnly && kvs.length < limit) {
        kvs.push(decodeRecord(key, bytes, options.keysOnly).kv);
      }
    };
    if (end === undefined) {
      take(key, this.#versionAt(key, rev));
      return { kvs, count };
    }
    if (end.length > 0 && compareBytes(end, key) <= 0) return { kvs, count };
    // Two walks in key order, merged: the live records in range (`current`)
    // and, per key, the newest older version at or below rev (`history`).
    const live = scanBounded(this.backend, "current", key, end.length > 0 ? end : undefined)[
      Symbol.iterator
    ]();
    let next = live.next();
    for (const older of historyAt(this.backend, key, end, rev)) {
      let cmp = -1;
      while (!next.done && (cmp = compareBytes(next.value.key, older.key)) < 0) {
        take(next.value.key, visibleAt(next.value.value, rev));
        next = live.next();
      }
      if (!next.done && cmp === 0) {
        take(older.key, visibleAt(next.value.value, rev) ?? older.value);
        next = live.next();
      } else {
        take(older.key, older.value);
      }
    }
    for (; !next.done; next = live.next()) {
      take(next.value.key, visibleAt(next.value.value, rev));
    }
    return { kvs, count };
  }

  /**
   * The changes of revisions `from`..`to` (inclusive) in revision order, as
   * watch events without prev_kv, read from `revlog` (etcd's watchable store
   * reading its key bucket for watchers that are behind). Reading stops at
   * the end of the first revision that brings the count to `maxEvents`, so a
   * revision's events are never split. A DELETE whose tombstone a
   * compaction removed (a deletion at the compacted revision) is left out,
   * as etcd leaves it out.
   *
   * @returns the events and `next`, the first revision not read (`to + 1`
   *   when every change up to `to` was read).
   * @throws {InvariantError} when `from` is below the compacted revision.
   */
  changes(from: number, to: number, maxEvents: number): { events: Event[]; next: number } {
    invariant(from >= this.compactRev, `changes are readable from ${this.compactRev}, not ${from}`);
    invariant(maxEvents > 0, "changes reads at least one event");
    const events: Event[] = [];
    if (from > to) return { events, next: from };
    const scan = { start: encodeRevlogKey(from, 0), end: encodeRevlogKey(to + 1, 0) };
    let last = from - 1;
    for (const entry of this.backend.scan("revlog", scan)) {
      const rev = revlogKeyRevision(entry.key);
      if (rev !== last && events.length >= maxEvents) return { events, next: rev };
      last = rev;
      const key = copyBytes(entry.value);
      const live = this.backend.get("current", key);
      if (live !== undefined && recordModRevision(live) === rev) {
        events.push({ type: "PUT", kv: decodeRecord(key, live).kv });
        continue;
      }
      const older = isStorableKey(key)
        ? this.backend.get("history", historyKey(key, rev))
        : undefined;
      if (older === undefined) continue;
      const record = decodeRecord(key, older);
      events.push({ type: record.deleted ? "DELETE" : "PUT", kv: record.kv });
    }
    return { events, next: to + 1 };
  }

  /**
   * `key`'s version just before revision `rev` (an event's prev_kv), or
   * undefined when it did not exist then or that revision is compacted.
   */
  previous(key: Uint8Array, rev: number): KeyValue | undefined {
    if (rev - 1 < this.compactRev || rev - 1 < 1) return undefined;
    const bytes = this.#versionAt(key, rev - 1);
    if (bytes === undefined || isTombstone(bytes)) return undefined;
    return decodeRecord(key, bytes).kv;
  }

  /**
   * Encoded record of `key`'s version visible at `rev` (a tombstone when the
   * key was deleted then), or undefined when it did not exist then.
   */
  #versionAt(key: Uint8Array, rev: number): Uint8Array | undefined {
    if (!isStorableKey(key)) return undefined;
    const live = visibleAt(this.backend.get("current", key), rev);
    if (live !== undefined) return live;
    const lowest = escapeKey(key);
    const scan = { start: lowest, end: historyKey(key, rev + 1), reverse: true, limit: 1 };
    for (const { value } of this.backend.scan("history", scan)) return value;
    return undefined;
  }
}

/** A live record if it was written at or below `rev`. */
function visibleAt(record: Uint8Array | undefined, rev: number): Uint8Array | undefined {
  return record !== undefined && recordModRevision(record) <= rev ? record : undefined;
}

/**
 * Per key in [key, end) (`end` empty: no upper bound) that has `history`
 * records, in key order: the user key and its newest history record at or
 * below `rev` (a tombstone included), if any.
 */
function* historyAt(
  backend: Backend,
  key: Uint8Array,
  end: Uint8Array,
  rev: number,
): Iterable<Entry> {
  const upper = end.length > 0 ? escapeKey(end) : undefined;
  let group: Uint8Array | undefined;
  let chosen: Entry | undefined;
  for (const entry of scanBounded(backend, "history", escapeKey(key), upper)) {
    const prefix = entry.key.subarray(0, entry.key.length - 8);
    if (group === undefined || compareBytes(prefix, group) !== 0) {
      if (chosen !== undefined) yield { key: historyKeyUserKey(chosen.key), value: chosen.value };
      chosen = undefined;
      group = copyBytes(prefix);
    }
    if (historyKeyRevision(entry.key) <= rev) chosen = entry;
  }
  if (chosen !== undefined) yield { key: historyKeyUserKey(chosen.key), value: chosen.value };
}

/**
 * A view inside one write transaction: reads see the transaction's own
 * writes; every write of the transaction shares one revision, beginRev + 1
 * (etcd's `storeTxnWrite`). Must be used only inside `Backend.write`.
 */
export class WriteView extends ReadView {
  /** Changes made so far, in order. */
  readonly events: Event[] = [];
  #ended = false;

  /**
   * A view for the write transaction running on `backend`.
   *
   * @throws {InvariantError} outside a `Backend.write` callback.
   */
  constructor(backend: Backend, state?: ViewState) {
    invariant(backend.inWrite(), "a WriteView is used only inside Backend.write");
    super(backend, state);
  }

  /** beginRev, or beginRev + 1 once anything changed. */
  override rev(): number {
    return this.events.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  /**
   * Write `key` = `value` with `lease`; returns the revision of the write.
   * create_revision and version continue from the live version, if any.
   */
  put(key: Uint8Array, value: Uint8Array, lease: bigint): number {
    this.ops.puts++;
    const rev = this.beginRev + 1;
    const prevBytes = this.backend.get("current", key);
    const prev = prevBytes === undefined ? undefined : decodeRecord(key, prevBytes).kv;
    const kv: KeyValue = {
      key,
      create_revision: prev ? prev.create_revision : rev,
      mod_revision: rev,
      version: prev ? prev.version + 1 : 1,
      value,
      lease,
    };
    if (prev !== undefined) this.#supersede(key, prevBytes!, prev.mod_revision);
    this.backend.put("current", key, encodeRecord(kv, false));
    this.#log(key, rev);
    this.events.push({ type: "PUT", kv, prev_kv: prev });
    return rev;
  }

  /**
   * Delete the live keys in [key, end) (`end` as in rangeKeys); returns how
   * many were deleted.
   */
  deleteRange(key: Uint8Array, end: Uint8Array | undefined): number {
    this.ops.deletes++;
    const live = this.rangeUncounted(key, end).kvs;
    const rev = this.beginRev + 1;
    for (const prev of live) {
      const kv: KeyValue = {
        key: prev.key,
        create_revision: 0,
        mod_revision: rev,
        version: 0,
        value: new Uint8Array(0),
        lease: 0n,
      };
      this.#supersede(prev.key, encodeRecord(prev, false), prev.mod_revision);
      this.backend.del("current", prev.key);
      this.backend.put("history", historyKey(prev.key, rev), encodeRecord(kv, true));
      this.#log(prev.key, rev);
      this.events.push({ type: "DELETE", kv, prev_kv: prev });
    }
    return live.length;
  }

  /**
   * Move a live record that this transaction replaces into `history`. One
   * written earlier in this same transaction (same revision) was never
   * visible at any revision, so it is dropped instead.
   */
  #supersede(key: Uint8Array, record: Uint8Array, modRevision: number): void {
    if (modRevision === this.beginRev + 1) return;
    this.backend.put("history", historyKey(key, modRevision), record);
  }

  #log(key: Uint8Array, rev: number): void {
    this.backend.put("revlog", encodeRevlogKey(rev, this.events.length), key);
  }

  /** Record a compaction request at `rev` (reads below it fail from now on). */
  setCompactRevision(rev: number): void {
    this.backend.putMeta(Meta.compactRevision, rev);
    this.compactRequested = rev;
  }

  /** The compaction this transaction recorded, if any. */
  compactRequested?: number;

  /**
   * The revision of the last compaction recorded, or
   * {@linkcode NEVER_COMPACTED} when the store has none: then a compaction
   * at revision 0 is legal once, as in etcd (whose `compactMainRev` starts at
   * -1). `compactRev` cannot tell the two apart (it is 0 for both), so the
   * presence of the `meta` record decides.
   */
  lastCompaction(): number {
    if (this.compactRequested !== undefined) return this.compactRequested;
    if (this.backend.getMeta(Meta.compactRevision) === undefined) return NEVER_COMPACTED;
    return this.compactRev;
  }

  /**
   * The state after this transaction. The caller records the revision in
   * `meta` (once per batch: see server/raftnode/applier.ts). Call once, last.
   */
  end(): ViewState {
    invariant(!this.#ended, "WriteView.end is called once");
    this.#ended = true;
    return { revision: this.rev(), compactRevision: this.compactRequested ?? this.compactRev };
  }
}
