/**
 * Membership, learner and snapshot scenarios (reference/raft.md §2, items
 * 16–18, 20): removing the leader, removal shrinking the quorum, one pending
 * change at a time, learners, a slow follower behind compaction, snapshot
 * failure, restart from snapshot plus log.
 */

import assert from "node:assert/strict";
import { decodeConfChange, type Entry, msg, NONE } from "../../../core/raft/mod.ts";
import { dec, enc, Network, type TestNode } from "./harness.ts";

function confChanges(n: TestNode): string[] {
  return n.applied.filter((e: Entry) => e.type === "confChange").map((e) => {
    const cc = decodeConfChange(e.data);
    return `${cc.type} ${cc.nodeId}`;
  });
}

Deno.test("membership: removing the leader; it steps down and the rest elect and commit (confchange_v1_remove_leader)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.proposeConfChange(1, { type: "removeNode", nodeId: 1 });
  assert.deepEqual(confChanges(net.get(1)), ["removeNode 1"]);
  assert.equal(net.get(1).state, "follower");
  assert.deepEqual(net.get(1).node.confState().voters, [2, 3]);
  net.down.add(1);
  net.tickAll(40);
  const leaders = net.leaders();
  assert.equal(leaders.length, 1);
  assert.notEqual(leaders[0], 1);
  net.propose(leaders[0], "after");
  assert.deepEqual(net.get(2).appliedData(), ["after"]);
  assert.deepEqual(net.get(3).appliedData(), ["after"]);
  // The removed node cannot campaign any more.
  net.down.delete(1);
  net.get(1).node.campaign();
  assert.equal(net.get(1).state, "follower");
});

Deno.test("membership: removing a voter shrinks the quorum (TestCommitAfterRemoveNode)", () => {
  const net = new Network([1, 2, 3, 4]);
  net.campaign(1);
  net.down.add(4);
  net.proposeConfChange(1, { type: "removeNode", nodeId: 4 });
  assert.deepEqual(net.get(1).node.confState().voters, [1, 2, 3]);
  net.down.add(3);
  net.propose(1, "x"); // 2 of {1,2,3}: commits; 2 of {1,2,3,4} would not
  assert.deepEqual(net.get(1).appliedData(), ["x"]);
});

Deno.test("membership: one change at a time; a second pending change becomes a no-op", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.dropTypes.add("MsgApp"); // keep the first change uncommitted
  net.get(1).node.proposeConfChange({ type: "addLearnerNode", nodeId: 4 });
  net.get(1).node.proposeConfChange({ type: "addLearnerNode", nodeId: 5 });
  net.recover();
  net.tick(1, 1);
  assert.deepEqual(confChanges(net.get(1)), ["addLearnerNode 4"]);
  assert.deepEqual(net.get(1).node.confState().learners, [4]);
  // Changing two voters at once is refused too (single-server changes only).
  net.proposeConfChange(1, { type: "addNode", nodeId: 4 });
  assert.deepEqual(net.get(1).node.confState().voters, [1, 2, 3, 4]);
});

Deno.test("learner: receives the log, never campaigns, votes when asked, and can be promoted (campaign_learner_must_vote)", () => {
  const net = new Network([1, 2], {}, [3]);
  net.campaign(1);
  net.propose(1, "a");
  assert.deepEqual(net.get(3).appliedData(), ["a"]);
  const term = net.get(3).term;
  net.isolate(3);
  net.tick(3, 50);
  assert.equal(net.get(3).state, "follower");
  assert.equal(net.get(3).term, term);
  net.recover();
  // A learner still votes when asked: a candidate that already applied its
  // promotion counts on it (checked on a separate cluster).
  const other = new Network([1, 2], {}, [3]);
  other.get(3).node.step(msg({ type: "MsgVote", from: 2, to: 3, term: 5, index: 10, logTerm: 4 }));
  const rd = other.get(3).node.ready();
  assert.ok(rd.messages.some((m) => m.type === "MsgVoteResp" && m.to === 2 && !m.reject));
  const leader = net.leaders()[0];
  net.proposeConfChange(leader, { type: "addNode", nodeId: 3 });
  assert.deepEqual(net.get(3).node.confState().voters, [1, 2, 3]);
  net.campaign(3);
  assert.equal(net.get(3).state, "leader");
});

Deno.test("membership: a new empty node joins through a snapshot and catches up", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  const n4 = net.addNode(4); // empty storage, no membership yet
  // The application snapshots after a conf change so the snapshot lists 4.
  net.snapshotAfterConfChange = true;
  net.proposeConfChange(1, { type: "addLearnerNode", nodeId: 4 });
  const leader = net.get(1);
  net.tick(1, 2);
  assert.equal(n4.storage.snapshot().metadata.index, leader.storage.snapshot().metadata.index);
  assert.equal(dec(n4.storage.snapshot().data), "state");
  net.propose(1, "b");
  assert.deepEqual(n4.appliedData(), ["b"]);
  assert.deepEqual(n4.node.confState(), { voters: [1, 2, 3], learners: [4] });
});

Deno.test("snapshot: a slow follower behind the compacted index gets a snapshot (slow_follower_after_compaction)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
  const leader = net.get(1);
  const applied = leader.node.status().applied;
  leader.storage.createSnapshot(applied, leader.node.confState(), enc("snap-v9"));
  leader.storage.compact(applied);
  net.recover();
  net.delivered = [];
  net.tick(1, 2);
  const snaps = net.delivered.filter((m) => m.type === "MsgSnap" && m.to === 3);
  assert.equal(snaps.length, 1);
  assert.equal(net.get(3).storage.snapshot().metadata.index, applied);
  assert.equal(net.get(1).node.status().progress.get(3)?.state, "replicate");
  net.propose(1, "after");
  assert.deepEqual(net.get(3).appliedData(), ["after"]);
});

Deno.test("snapshot: a failed snapshot is retried after the follower answers again (raft_snap_test)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 3; i++) net.propose(1, `v${i}`);
  const leader = net.get(1);
  const applied = leader.node.status().applied;
  leader.storage.createSnapshot(applied, leader.node.confState(), enc("s"));
  leader.storage.compact(applied);
  net.recover();
  net.dropTypes.add("MsgSnap");
  net.tick(1, 1);
  assert.equal(leader.node.status().progress.get(3)?.state, "snapshot");
  leader.node.reportSnapshot(3, true); // the transport says: failed
  net.stabilize();
  assert.equal(leader.node.status().progress.get(3)?.state, "probe");
  net.recover();
  net.tick(1, 2);
  assert.equal(net.get(3).storage.snapshot().metadata.index, applied);
});

Deno.test("restart: a node restarts from snapshot plus log and re-applies only what follows the snapshot (TestNodeRestartFromSnapshot)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (const v of ["a", "b", "c", "d"]) net.propose(1, v);
  const n2 = net.get(2);
  const applied = n2.node.status().applied;
  n2.storage.createSnapshot(applied - 2, n2.node.confState(), enc("upto-b"));
  n2.storage.compact(applied - 2);
  n2.restart();
  net.stabilize();
  assert.equal(n2.node.status().hardState.commit, applied);
  assert.deepEqual(n2.appliedData(), ["c", "d"]);
  assert.equal(n2.node.leader(), NONE); // followers learn the leader from its next message
  net.tick(1, 1);
  assert.equal(n2.node.leader(), 1);
});

Deno.test("restart: entries not persisted before a crash are lost but the cluster keeps committed ones", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  // 3 receives "b" but crashes before handling its Ready.
  net.get(1).node.propose(enc("b"));
  for (const m of net.handleReady(net.get(1))) {
    if (m.to === 3) net.deliver(m);
  }
  assert.ok(net.get(3).node.hasReady());
  net.get(3).restart();
  assert.equal(net.get(3).storage.lastIndex(), 3); // "b" (index 4) was never persisted
  net.stabilize();
  net.tick(1, 2);
  for (const id of [1, 2, 3]) {
    assert.deepEqual(net.get(id).appliedData(), ["a", "b"]);
  }
});
