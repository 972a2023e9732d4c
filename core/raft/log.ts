/**
 * The Raft log as the core sees it (etcd-raft `raftLog` + `unstable`):
 * persisted entries read through `Storage`, followed by entries (and maybe a
 * snapshot) not yet handed to stable storage.
 *
 * @module
 */

import { CompactedError, type Storage, UnavailableError } from "./storage.ts";
import { type Entry, invariant, limitSize, type Snapshot } from "./types.ts";

/**
 * Entries and snapshot not yet written to stable storage. `entries[i]` has
 * log index `offset + i`.
 *
 * Invariant: if `snapshot` is set, `offset === snapshot.metadata.index + 1`
 * at the time it was set.
 */
export class Unstable {
  /** Snapshot received from the leader, not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted; `entries[0]` has index `offset`. */
  entries: Entry[] = [];
  /** Log index of `entries[0]`. */
  offset: number;

  /** Starts empty, with the next entry at index `offset`. */
  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index if only an unstable snapshot determines it. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** Last index if unstable entries or snapshot determine it. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  /** Term of entry `i` if known here. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** Drops entries up to `i` once they are durable, if entry `i` still has term `t`. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  /** Drops the snapshot once it is durable. */
  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  /** Replaces everything with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends `ents`, first truncating any unstable entries at or after `ents[0].index`. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // The log is being truncated to before our current offset: replace.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries in `[lo, hi)`; the caller checks bounds. */
  slice(lo: number, hi: number): Entry[] {
    invariant(
      lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi,
      `unstable slice [${lo},${hi}) within [${this.offset},${this.offset + this.entries.length})`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/**
 * The log: `storage` (durable) plus `unstable`, with the commit index and
 * the applied/applying cursors.
 *
 * Invariants: `applied <= applying <= committed <= lastIndex()`;
 * `firstIndex() - 1 <= committed`.
 */
export class RaftLog {
  /** The durable part of the log. */
  readonly storage: Storage;
  /** The not-yet-durable tail of the log. */
  unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index applied by the application (acknowledged via `advance`). */
  applied: number;
  /** Highest index handed to the application in a Ready, not yet acknowledged. */
  applying: number;
  /** Bound in bytes on committed entries returned per Ready. */
  readonly maxApplyingSize: number;

  /** Starts with everything in `storage` considered committed and applied up to its snapshot; `loadState` then restores the persisted commit index. */
  constructor(storage: Storage, maxApplyingSize: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
    this.maxApplyingSize = maxApplyingSize;
  }

  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Index of the last entry, durable or not. */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== undefined, "the last entry has a known term");
    return t;
  }

  /**
   * Term of entry `i`, or undefined if `i` is compacted (below
   * `firstIndex()-1`) or beyond `lastIndex()`.
   */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  /** Whether entry `i` exists with term `t` (Raft's consistency check). */
  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /**
   * Whether a candidate's log (last index `lasti`, last term `term`) is at
   * least as up to date as ours (Raft §5.4.1).
   */
  isUpToDate(lasti: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lasti >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries: if entry `index` has term `logTerm`,
   * appends `ents` (truncating conflicting uncommitted entries) and advances
   * the commit index to `min(committed, last new index)`. Returns the last
   * new index, or undefined when the consistency check fails.
   * @throws {RaftInvariantError} if a conflict is found at or below the commit index.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(
        ci > this.committed,
        `no conflict at committed entry ${ci} (committed ${this.committed})`,
      );
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after `ents[0].index - 1`; returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    invariant(
      after >= this.committed,
      `append after ${after} does not truncate committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of `ents` whose term differs from ours (or that
   * we lack), or 0 if all match.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (etcd `findConflictByTerm`): the largest index `<=
   * index` whose term is `<= term`, with its term (0 if unknown). Used to skip
   * a whole term of mismatching entries in one probe.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const ourTerm = this.term(index);
      if (ourTerm === undefined) return [index, 0];
      if (ourTerm <= term) return [index, ourTerm];
    }
    return [0, 0];
  }

  /**
   * Advances the commit index.
   * @throws {RaftInvariantError} if `toCommit` is beyond the last index (a corrupt or lost log).
   */
  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      invariant(
        this.lastIndex() >= toCommit,
        `commit ${toCommit} within last index ${this.lastIndex()} (log lost or corrupted?)`,
      );
      this.committed = toCommit;
    }
  }

  /**
   * Leader commit rule: commits `maxIndex` only if its entry has the
   * leader's current `term` (Raft §5.4.2, Figure 8). With
   * `ignoreTerm` (the `commit-previous-term` mutant) the check is skipped.
   */
  maybeCommit(maxIndex: number, term: number, ignoreTerm = false): boolean {
    if (maxIndex > this.committed && (ignoreTerm || this.term(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Records that the application applied up to `i`. */
  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(
      this.committed >= i && i >= this.applied,
      `applied ${i} within [${this.applied}, ${this.committed}]`,
    );
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  /** Entries in `[lo, hi)` limited to `maxSize` bytes (at least one); throws CompactedError below firstIndex. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    invariant(
      hi <= this.lastIndex() + 1,
      `slice end ${hi} within last index ${this.lastIndex()} + 1`,
    );
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxSize);
      if (stored.length < Math.min(hi, off) - lo) return stored; // size limit hit
      ents = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  /** Entries from `i` to the end, limited to `maxSize` bytes. Throws CompactedError below firstIndex. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Whether there are committed entries not yet handed to the application. */
  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot) return false; // apply the snapshot first
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.committed + 1 > lo;
  }

  /** Committed entries not yet handed to the application, bounded by `maxApplyingSize`. */
  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxApplyingSize);
  }

  /** Marks entries up to `i` as handed to the application. */
  acceptApplying(i: number): void {
    invariant(i <= this.committed, `applying ${i} within committed ${this.committed}`);
    if (i > this.applying) this.applying = i;
  }

  /** The latest snapshot: the unstable one if any, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Installs a snapshot received from the leader; everything before it is replaced. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
