/**
 * Building blocks: MemoryStorage, the unstable log, RaftLog conflict
 * handling, Inflights and the quorum arithmetic of ProgressTracker.
 */

import assert from "node:assert/strict";
import {
  CompactedError,
  type Entry,
  Inflights,
  MemoryStorage,
  ProgressTracker,
  RaftInvariantError,
  RaftLog,
  UnavailableError,
} from "../../../core/raft/mod.ts";

const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(4),
});

function storageWith(terms: number[]): MemoryStorage {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => ent(i + 1, t)));
  return s;
}

Deno.test("storage: append truncates conflicting suffixes; term/entries respect bounds", () => {
  const s = storageWith([1, 1, 2, 2]);
  assert.equal(s.lastIndex(), 4);
  s.append([ent(3, 3)]);
  assert.equal(s.lastIndex(), 3);
  assert.equal(s.term(3), 3);
  assert.throws(() => s.term(5), UnavailableError);
  assert.deepEqual(s.entries(1, 4, Infinity).map((e) => e.term), [1, 1, 3]);
  // maxSize limits but returns at least one entry.
  assert.equal(s.entries(1, 4, 1).length, 1);
  assert.throws(() => s.append([ent(6, 3)]), RaftInvariantError); // gap
});

Deno.test("storage: compact and snapshots move the first index", () => {
  const s = storageWith([1, 1, 2, 2, 3]);
  s.createSnapshot(4, { voters: [1], learners: [] }, new Uint8Array([9]));
  s.compact(4);
  assert.equal(s.firstIndex(), 5);
  assert.equal(s.term(4), 2); // the dummy entry keeps the snapshot term
  assert.throws(() => s.term(3), CompactedError);
  assert.throws(() => s.entries(4, 6, Infinity), CompactedError);
  s.applySnapshot({
    metadata: { index: 10, term: 5, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  });
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
});

Deno.test("log: maybeAppend truncates uncommitted conflicts and refuses to touch committed ones", () => {
  const log = new RaftLog(storageWith([1, 1, 2]), Infinity);
  log.commitTo(1);
  // Consistency check fails on a wrong previous term.
  assert.equal(log.maybeAppend(3, 1, 3, [ent(4, 3)]), undefined);
  // Conflict at index 3 (term 2 -> 3): replaced.
  assert.equal(log.maybeAppend(2, 1, 3, [ent(3, 3), ent(4, 3)]), 4);
  assert.equal(log.term(3), 3);
  assert.equal(log.committed, 3);
  // A conflict at a committed index is an invariant violation.
  assert.throws(() => log.maybeAppend(1, 1, 3, [ent(2, 9)]), RaftInvariantError);
});

Deno.test("log: findConflictByTerm skips a whole term (fast backtracking)", () => {
  const log = new RaftLog(storageWith([1, 1, 4, 4, 4, 4, 5]), Infinity);
  assert.deepEqual(log.findConflictByTerm(6, 3), [2, 1]);
  assert.deepEqual(log.findConflictByTerm(7, 4), [6, 4]);
  assert.deepEqual(log.findConflictByTerm(7, 9), [7, 5]);
});

Deno.test("log: maybeCommit only commits entries of the given term (Figure 8)", () => {
  const log = new RaftLog(storageWith([1, 2, 2, 3]), Infinity);
  assert.equal(log.maybeCommit(3, 3), false);
  assert.equal(log.committed, 0);
  assert.equal(log.maybeCommit(4, 3), true);
  assert.equal(log.committed, 4);
  const mutant = new RaftLog(storageWith([1, 2, 2, 3]), Infinity);
  assert.equal(mutant.maybeCommit(3, 3, true), true);
});

Deno.test("inflights: a bounded window freed by acknowledgements", () => {
  const inf = new Inflights(3, 0);
  inf.add(5, 10);
  inf.add(7, 10);
  inf.add(9, 10);
  assert.equal(inf.full(), true);
  assert.throws(() => inf.add(11, 1), RaftInvariantError);
  inf.freeLE(7);
  assert.equal(inf.count, 1);
  assert.equal(inf.bytes, 10);
  const byBytes = new Inflights(100, 25);
  byBytes.add(1, 20);
  assert.equal(byBytes.full(), false);
  byBytes.add(2, 20);
  assert.equal(byBytes.full(), true);
});

Deno.test("tracker: the quorum commit index and vote results are majority-based", () => {
  const trk = new ProgressTracker(10, 0);
  for (const [id, match] of [[1, 10], [2, 7], [3, 3], [4, 9], [5, 1]]) {
    trk.voters.add(id);
    trk.initProgress(id, match + 1, false).match = match;
  }
  assert.equal(trk.committed(), 7); // 10, 9, 7 are on a majority of 5
  trk.learners.add(6);
  trk.initProgress(6, 101, true).match = 100; // learners never count
  assert.equal(trk.committed(), 7);
  trk.recordVote(1, true);
  trk.recordVote(2, true);
  assert.equal(trk.tallyVotes().result, "pending");
  trk.recordVote(3, false);
  trk.recordVote(4, false);
  assert.equal(trk.tallyVotes().result, "pending");
  trk.recordVote(5, true);
  assert.equal(trk.tallyVotes().result, "won");
});
