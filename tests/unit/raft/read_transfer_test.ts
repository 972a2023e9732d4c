/**
 * ReadIndex and leader transfer scenarios (reference/raft.md §2, items 12
 * and 21).
 */

import assert from "node:assert/strict";
import { NONE, ProposalDroppedError } from "../../../core/raft/mod.ts";
import { dec, enc, Network } from "./harness.ts";

Deno.test("readindex: the leader confirms leadership by a heartbeat round before answering", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  const committed = net.get(1).node.logView().committed;
  net.delivered = [];
  net.get(1).node.readIndex(enc("req-1"));
  net.stabilize();
  const rs = net.get(1).readStates;
  assert.equal(rs.length, 1);
  assert.equal(rs[0].index, committed);
  assert.equal(dec(rs[0].requestCtx), "req-1");
  // The confirmation came from heartbeats carrying the request context.
  assert.ok(
    net.delivered.some((m) => m.type === "MsgHeartbeatResp" && dec(m.context!) === "req-1"),
  );
});

Deno.test("readindex: followers forward to the leader and get its commit index (TestNodeReadIndexToOldLeader)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(2, "a");
  net.get(2).node.readIndex(enc("f"));
  net.stabilize();
  assert.equal(net.get(2).readStates.length, 1);
  assert.equal(net.get(2).readStates[0].index, net.get(1).node.logView().committed);
});

Deno.test("readindex: a partitioned leader cannot confirm a read", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.get(1).node.readIndex(enc("stale?"));
  net.stabilize();
  net.tick(1, 3);
  assert.equal(net.get(1).readStates.length, 0);
  // Meanwhile a new leader takes writes; the old one never answered the read.
  net.campaign(2);
  net.propose(2, "newer");
  assert.equal(net.get(1).readStates.length, 0);
});

Deno.test("readindex: a new leader answers only after committing an entry of its term (TestReadOnlyForNewLeader)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  // 2 is elected but its no-op cannot commit yet.
  net.dropTypes.add("MsgApp");
  net.campaign(2);
  assert.equal(net.get(2).state, "leader");
  net.get(2).node.readIndex(enc("r"));
  net.stabilize();
  net.tick(2, 2);
  assert.equal(net.get(2).readStates.length, 0);
  net.recover();
  net.tick(2, 2);
  const rs = net.get(2).readStates;
  assert.equal(rs.length, 1);
  // The read index covers the new term's no-op, hence everything before it.
  assert.equal(rs[0].index, net.get(2).node.logView().committed);
  assert.ok(rs[0].index >= 4);
});

Deno.test("transfer: leadership moves to an up-to-date follower (TestLeaderTransferToUpToDateNode)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, "a");
  const term = net.get(1).term;
  net.get(1).node.transferLeader(2);
  net.stabilize();
  assert.equal(net.get(2).state, "leader");
  assert.equal(net.get(1).state, "follower");
  assert.equal(net.get(2).term, term + 1);
  net.propose(1, "b");
  assert.deepEqual(net.get(3).appliedData(), ["a", "b"]);
});

Deno.test("transfer: a slow target is caught up first; proposals are dropped meanwhile (TestLeaderTransferToSlowFollower)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.propose(1, "a");
  net.propose(1, "b");
  net.recover();
  net.dropTypes.add("MsgApp"); // hold 3 back while the transfer starts
  net.get(1).node.transferLeader(3);
  net.stabilize();
  assert.equal(net.get(1).node.status().leadTransferee, 3);
  assert.throws(() => net.get(1).node.propose(enc("during")), ProposalDroppedError);
  net.recover();
  net.tick(1, 1); // heartbeat -> catch-up -> MsgTimeoutNow
  assert.equal(net.get(3).state, "leader");
  assert.deepEqual(net.get(3).appliedData(), ["a", "b"]);
});

Deno.test("transfer: aborts after an election timeout if the target never catches up (TestLeaderTransferTimeout)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.get(1).node.transferLeader(3);
  net.stabilize();
  assert.equal(net.get(1).node.status().leadTransferee, 3);
  net.tick(1, 10);
  assert.equal(net.get(1).node.status().leadTransferee, NONE);
  assert.equal(net.get(1).state, "leader");
  net.propose(1, "after"); // accepted again
  assert.deepEqual(net.get(2).appliedData(), ["after"]);
});

Deno.test("transfer: with PreVote and CheckQuorum, MsgTimeoutNow bypasses the lease (campaignTransfer)", () => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  net.tickAll(2);
  net.get(1).node.transferLeader(2);
  net.stabilize();
  assert.equal(net.get(2).state, "leader");
});
