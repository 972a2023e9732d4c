/**
 * The RawNode contract: what a Ready carries, mustSync, the ready/advance
 * pairing, bounded committed entries per Ready, and status.
 */

import assert from "node:assert/strict";
import {
  MemoryStorage,
  msg,
  Mulberry32,
  RaftInvariantError,
  RawNode,
  StepLocalMsgError,
} from "../../../core/raft/mod.ts";
import { enc, Network } from "./harness.ts";

function singleNode(maxCommittedSizePerReady?: number): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.applySnapshot({
    metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  });
  storage.setHardState({ term: 1, vote: 0, commit: 1 });
  const node = new RawNode({
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    prng: new Mulberry32(1),
    applied: 1,
    maxCommittedSizePerReady,
  });
  return { node, storage };
}

Deno.test("rawnode: a single voter elects itself and commits on its own append", () => {
  const { node, storage } = singleNode();
  node.campaign();
  const rd = node.ready();
  assert.deepEqual(rd.softState, { lead: 1, raftState: "leader" });
  assert.deepEqual(rd.hardState, { term: 2, vote: 1, commit: 2 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term]), [[2, 2]]);
  // The no-op is committed in the same Ready: persist first, then apply.
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  node.advance();
  assert.equal(node.hasReady(), false);
  node.propose(enc("x"));
  const rd2 = node.ready();
  assert.deepEqual(rd2.committedEntries.map((e) => new TextDecoder().decode(e.data)), ["x"]);
  assert.equal(rd2.mustSync, true);
  node.advance();
});

Deno.test("rawnode: a commit-only change is not a sync point (MustSync)", () => {
  const net = new Network([1, 2]);
  net.campaign(1);
  const n2 = net.get(2).node;
  const committed = n2.logView().committed;
  n2.step(msg({ type: "MsgHeartbeat", from: 1, to: 2, term: net.get(2).term, commit: committed }));
  // Same commit: only a heartbeat response.
  const rd = n2.ready();
  assert.equal(rd.hardState, undefined);
  assert.equal(rd.mustSync, false);
  n2.advance();
  net.get(1).node.propose(enc("y"));
  for (const m of net.handleReady(net.get(1))) net.deliver(m); // 2 appends "y"
  const rdAppend = n2.ready();
  assert.equal(rdAppend.mustSync, true);
  for (const m of net.finishReady(net.get(2), rdAppend)) net.deliver(m);
  net.hook = (m) => m.to !== 2; // 2 learns the new commit index only from our heartbeat
  net.stabilize();
  n2.step(
    msg({ type: "MsgHeartbeat", from: 1, to: 2, term: net.get(2).term, commit: committed + 1 }),
  );
  const rd2 = n2.ready();
  assert.equal(rd2.hardState?.commit, committed + 1);
  assert.equal(rd2.mustSync, false);
  n2.advance();
});

Deno.test("rawnode: ready() must be followed by advance(); local messages are refused from the network", () => {
  const { node } = singleNode();
  node.campaign();
  node.ready();
  assert.throws(() => node.ready(), RaftInvariantError);
  node.advance();
  assert.throws(() => node.advance(), RaftInvariantError);
  assert.throws(() => node.step(msg({ type: "MsgHup", from: 2, to: 1 })), StepLocalMsgError);
});

Deno.test("rawnode: committed entries per Ready are bounded by maxCommittedSizePerReady", () => {
  const { node, storage } = singleNode(100);
  node.campaign();
  let rd = node.ready();
  storage.append(rd.entries);
  node.advance();
  for (let i = 0; i < 10; i++) node.propose(new Uint8Array(40));
  const sizes: number[] = [];
  for (let round = 0; round < 20 && node.hasReady(); round++) {
    rd = node.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    sizes.push(rd.committedEntries.length);
    node.advance();
  }
  assert.equal(sizes.reduce((a, b) => a + b, 0), 10);
  assert.ok(Math.max(...sizes) <= 2, `at most 2 x (40+16) bytes per Ready, got ${sizes}`);
});

Deno.test("rawnode: status reports progress only on the leader", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  const st = net.get(1).node.status();
  assert.equal(st.softState.raftState, "leader");
  assert.deepEqual([...st.progress.keys()].sort(), [1, 2, 3]);
  assert.equal(st.progress.get(2)?.match, net.get(1).node.logView().lastIndex());
  assert.equal(st.progress.get(2)?.state, "replicate");
  assert.equal(net.get(2).node.status().progress.size, 0);
});
