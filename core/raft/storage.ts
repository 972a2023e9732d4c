/**
 * The stable-storage interface the Raft core reads its log from (etcd-raft
 * `Storage`), and an in-memory implementation (etcd-raft `MemoryStorage`)
 * used by tests and the simulator. The server's `wal/` implements the same
 * interface on LMDB.
 *
 * @module
 */

import {
  type ConfState,
  type Entry,
  type HardState,
  invariant,
  limitSize,
  NONE,
  type Snapshot,
} from "./types.ts";

/** The requested index is older than the last snapshot (etcd `ErrCompacted`). */
export class CompactedError extends Error {
  /**
   * Builds the error.
   * @param index the requested index
   * @param firstIndex the first available one.
   */
  constructor(index: number, firstIndex: number) {
    super(`Raft log compacted: index ${index} is below first index ${firstIndex}`);
    this.name = "CompactedError";
  }
}

/** The requested index is beyond the last index (etcd `ErrUnavailable`). */
export class UnavailableError extends Error {
  /**
   * Builds the error.
   * @param index the requested index
   * @param lastIndex the last available one.
   */
  constructor(index: number, lastIndex: number) {
    super(`Raft log unavailable: index ${index} is above last index ${lastIndex}`);
    this.name = "UnavailableError";
  }
}

/** The snapshot to apply is older than the current one (etcd `ErrSnapOutOfDate`). */
export class SnapshotOutOfDateError extends Error {
  /**
   * Builds the error.
   * @param index the snapshot's index
   * @param current the current snapshot index.
   */
  constructor(index: number, current: number) {
    super(`Raft snapshot out of date: index ${index} is not above ${current}`);
    this.name = "SnapshotOutOfDateError";
  }
}

/** The snapshot is not ready yet; the leader retries later (etcd `ErrSnapshotTemporarilyUnavailable`). */
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super("Raft snapshot temporarily unavailable");
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

/** Initial persisted state returned by `Storage.initialState`. */
export interface InitialState {
  /** Persisted term, vote and commit index. */
  hardState: HardState;
  /** Membership from the last snapshot. */
  confState: ConfState;
}

/**
 * Read access to the persisted Raft log (etcd-raft `Storage`). Entries at
 * indexes `firstIndex()..lastIndex()` are available; `term(firstIndex()-1)`
 * is the term of the last snapshot. Methods throw `CompactedError` /
 * `UnavailableError` for indexes outside that range.
 */
export interface Storage {
  /** Persisted hard state and membership at start-up. */
  initialState(): InitialState;
  /**
   * Entries in `[lo, hi)`, limited to about `maxSize` bytes but at least one.
   * @throws {CompactedError} if `lo < firstIndex()`.
   * @throws {UnavailableError} if `hi > lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * Term of entry `i`, for `firstIndex()-1 <= i <= lastIndex()`.
   * @throws {CompactedError} / {UnavailableError} outside that range.
   */
  term(i: number): number;
  /** Index of the last entry (snapshot index if the log is empty). */
  lastIndex(): number;
  /** Index of the first available entry (snapshot index + 1). */
  firstIndex(): number;
  /**
   * The most recent snapshot.
   * @throws {SnapshotTemporarilyUnavailableError} if it is being built.
   */
  snapshot(): Snapshot;
}

/** Returns an empty snapshot (index 0, no members). */
export function emptySnapshot(): Snapshot {
  return {
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: new Uint8Array(),
  };
}

/**
 * In-memory `Storage` (etcd-raft `MemoryStorage`) with the write side a
 * server needs: `append`, `setHardState`, `applySnapshot`, `createSnapshot`,
 * `compact`. `#ents[0]` is a dummy entry holding the snapshot index/term.
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  #snapshot: Snapshot = emptySnapshot();
  #ents: Entry[] = [{ term: 0, index: 0, type: "normal", data: new Uint8Array() }];

  /** Returns the persisted hard state and the membership of the last snapshot. */
  initialState(): InitialState {
    return {
      hardState: { ...this.#hardState },
      confState: structuredCloneConf(this.#snapshot.metadata.confState),
    };
  }

  /** Persists the hard state. */
  setHardState(hs: HardState): void {
    this.#hardState = { ...hs };
  }

  /** The persisted hard state (a copy). */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  /** See `Storage.entries`. */
  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.#ents[0].index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (this.#ents.length === 1) return [];
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxSize);
  }

  /** See `Storage.term`. */
  term(i: number): number {
    const offset = this.#ents[0].index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.#ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.#ents[i - offset].term;
  }

  /** See `Storage.lastIndex`. */
  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1;
  }

  /** See `Storage.firstIndex`. */
  firstIndex(): number {
    return this.#ents[0].index + 1;
  }

  /** See `Storage.snapshot`. */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Replaces the log with a snapshot received from the leader.
   * @throws {SnapshotOutOfDateError} if `snap` is not newer than the current one.
   */
  applySnapshot(snap: Snapshot): void {
    const cur = this.#ents[0].index;
    if (snap.metadata.index <= cur) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.#snapshot = snap;
    this.#ents = [{
      term: snap.metadata.term,
      index: snap.metadata.index,
      type: "normal",
      data: new Uint8Array(),
    }];
  }

  /**
   * Records a snapshot of the state machine at applied index `i` (the
   * application calls this, then usually `compact`).
   * @throws {SnapshotOutOfDateError} if `i` is not above the current snapshot.
   * @throws {UnavailableError} if `i > lastIndex()`.
   */
  createSnapshot(i: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.#snapshot.metadata.index) {
      throw new SnapshotOutOfDateError(i, this.#snapshot.metadata.index);
    }
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    const offset = this.#ents[0].index;
    this.#snapshot = {
      metadata: { index: i, term: this.#ents[i - offset].term, confState: structuredCloneConf(cs) },
      data,
    };
    return this.#snapshot;
  }

  /**
   * Discards entries before `compactIndex`; entry `compactIndex` becomes the
   * dummy. The application must not compact past its applied index.
   * @throws {CompactedError} if already compacted past `compactIndex`.
   * @throws {UnavailableError} if `compactIndex > lastIndex()`.
   */
  compact(compactIndex: number): void {
    const offset = this.#ents[0].index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    const i = compactIndex - offset;
    const dummy: Entry = {
      term: this.#ents[i].term,
      index: this.#ents[i].index,
      type: "normal",
      data: new Uint8Array(),
    };
    this.#ents = [dummy, ...this.#ents.slice(i + 1)];
  }

  /**
   * Appends entries, truncating any existing entries at or after
   * `ents[0].index` (the new leader's entries win). Entries already covered
   * by the snapshot are skipped.
   * @throws {RaftInvariantError} if `ents` would leave a gap in the log.
   */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = this.firstIndex();
    const last = ents[0].index + ents.length - 1;
    if (last < first) return;
    if (first > ents[0].index) ents = ents.slice(first - ents[0].index);
    const offset = ents[0].index - this.#ents[0].index;
    invariant(
      offset <= this.#ents.length,
      `append leaves no gap (first new ${ents[0].index}, last ${this.lastIndex()})`,
    );
    if (offset < this.#ents.length) this.#ents.length = offset;
    for (const e of ents) this.#ents.push(e);
  }
}

function structuredCloneConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
