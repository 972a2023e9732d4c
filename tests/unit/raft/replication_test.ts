/**
 * Log replication scenarios (reference/raft.md §2, items 4–6, 13–15, 22–23):
 * Figure 7 log repair, the Figure 8 commit rule, proposals by proxy, the
 * uncommitted-size bound, inflight flow control, fast rejection and lagging
 * commit.
 */

import assert from "node:assert/strict";
import { type Mutant, ProposalDroppedError } from "../../../core/raft/mod.ts";
import { dec, enc, logTerms, Network } from "./harness.ts";

// Figure 7 of the Raft paper, without its index-1 entry (our bootstrap snapshot).
const FIG7_LEADER = [1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIG7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 4],
  c: [1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 4, 4, 4, 4],
  f: [1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

Deno.test("replication: a new leader repairs every Figure 7 follower log (TestLeaderSyncFollowerLog)", () => {
  for (const [name, follower] of Object.entries(FIG7_FOLLOWERS)) {
    // 1 = leader, 2 = the follower, 3 = an empty voter that elects 1.
    const net = new Network([1, 2, 3], {}, [], { 1: FIG7_LEADER, 2: follower, 3: [] });
    // Make 1 campaign at term 8 (as in the figure).
    net.get(1).storage.setHardState({ term: 7, vote: 0, commit: 1 });
    net.get(1).restart();
    net.campaign(1);
    assert.equal(net.get(1).state, "leader", name);
    assert.equal(net.get(1).term, 8, name);
    assert.deepEqual(logTerms(net.get(2)), [...FIG7_LEADER, 8], `follower (${name})`);
    assert.deepEqual(logTerms(net.get(3)), [...FIG7_LEADER, 8]);
  }
});

Deno.test("replication: fast backtracking skips a whole conflicting term per probe (TestFastLogRejection)", () => {
  const leader = [1, ...Array(30).fill(2)];
  const follower = [1, ...Array(30).fill(3)];
  const net = new Network([1, 2, 3], {}, [], { 1: leader, 2: follower, 3: [] });
  net.get(1).storage.setHardState({ term: 3, vote: 0, commit: 1 });
  net.get(1).restart();
  net.cut(1, 2);
  net.campaign(1); // elected by 3
  net.recover();
  net.delivered = [];
  net.tick(1, 1); // heartbeat; then probing of 2
  const rejections = net.delivered.filter((m) =>
    m.type === "MsgAppResp" && m.from === 2 && m.reject
  );
  assert.ok(rejections.length >= 1 && rejections.length <= 2, `${rejections.length} rejections`);
  assert.deepEqual(logTerms(net.get(2)), logTerms(net.get(1)));
});

/**
 * Figure 8 with three nodes: 1 holds an entry of term 2 at index 2, 2 holds
 * one of term 3 there, 3 has neither. 1 wins term 4 and replicates its old
 * entry to 3 but not its no-op: the old entry is on a majority yet must not
 * be committed, because 2 can still win and overwrite it.
 */
function figure8(mutant: Mutant | undefined): { committedOld: boolean; net: Network } {
  const net = new Network([1, 2, 3], { maxSizePerMsg: 1, mutant }, [], { 1: [2], 2: [3], 3: [] });
  for (const id of [1, 2, 3]) {
    net.get(id).storage.setHardState({ term: 3, vote: 0, commit: 1 });
    net.get(id).restart();
  }
  // 3 never receives an entry of term 4 (they are stripped from MsgApps to it).
  net.hook = (m) => {
    if (m.type !== "MsgApp" || m.to !== 3 || !m.entries.some((e) => e.term === 4)) return true;
    net.deliver({ ...m, entries: m.entries.filter((e) => e.term !== 4) });
    return false;
  };
  net.cut(1, 2);
  net.campaign(1);
  assert.equal(net.get(1).state, "leader");
  assert.deepEqual(logTerms(net.get(3)), [2]); // the old entry is on 1 and 3
  const committedOld = net.get(1).node.logView().committed >= 2;
  return { committedOld, net };
}

Deno.test("replication: a leader commits only entries of its own term (Figure 8, TestLeaderOnlyCommitsLogFromCurrentTerm)", () => {
  const { committedOld, net } = figure8(undefined);
  assert.equal(committedOld, false);
  // 2 (last term 3) now wins with 3's vote and overwrites index 2: safe,
  // because nobody applied it.
  net.isolate(1);
  net.hook = undefined;
  net.campaign(2); // term 4: 3 already voted for 1
  net.campaign(2); // term 5: 3 votes, 2's last term 3 beats 3's last term 2
  assert.equal(net.get(2).state, "leader");
  assert.deepEqual(logTerms(net.get(3)), [3, 5]);
  assert.equal(net.get(1).applied.filter((e) => e.index === 2).length, 0);
  // Once 1 rejoins, everyone converges on 2's log.
  net.recover();
  net.propose(2, "x");
  net.tick(2, 1); // 1's probe was paused while it was cut off
  for (const id of [1, 2, 3]) assert.deepEqual(net.get(id).appliedData(), ["e2t3", "x"]);
});

Deno.test("replication: the commit-previous-term mutant commits the Figure 8 entry (the check can fail)", () => {
  const { committedOld, net } = figure8("commit-previous-term");
  assert.equal(committedOld, true);
  assert.deepEqual(net.get(1).appliedData(), ["e2t2"]);
});

Deno.test("replication: a new leader's no-op commits the previous term's entries (TestCannotCommitWithoutNewTermEntry)", () => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.campaign(1);
  net.cut(1, 3);
  net.cut(1, 4);
  net.cut(1, 5);
  net.propose(1, "a");
  net.propose(1, "b");
  assert.equal(net.get(1).node.logView().committed, 2); // only the no-op of term 2
  net.recover();
  net.dropTypes.add("MsgApp");
  net.campaign(2);
  assert.equal(net.get(2).state, "leader");
  assert.equal(net.get(2).node.logView().committed, 2); // a, b not committed yet
  net.recover();
  net.tick(2, 1);
  assert.equal(net.get(2).node.logView().committed, 5); // a, b and 2's no-op
  assert.deepEqual(net.get(5).appliedData(), ["a", "b"]);
});

Deno.test("replication: followers forward proposals; without a leader they are dropped (TestProposalByProxy, TestBlockProposal)", () => {
  const net = new Network([1, 2, 3]);
  assert.throws(() => net.get(2).node.propose(enc("early")), ProposalDroppedError);
  net.campaign(1);
  net.propose(2, "via-follower");
  for (const id of [1, 2, 3]) assert.deepEqual(net.get(id).appliedData(), ["via-follower"]);
});

Deno.test("replication: uncommitted log growth is bounded under partition (TestRawNodeBoundedLogGrowthWithPartition)", () => {
  const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 100 });
  net.campaign(1);
  net.isolate(1);
  const data = "x".repeat(30);
  let accepted = 0;
  for (let i = 0; i < 10; i++) {
    try {
      net.propose(1, data);
      accepted++;
    } catch (e) {
      assert.ok(e instanceof ProposalDroppedError);
    }
  }
  assert.equal(accepted, 3); // 3 x 30 bytes fit in 100; the 4th would exceed the bound
  // Once entries commit, the budget is released.
  net.recover();
  net.tick(1, 1);
  net.propose(1, data);
  assert.equal(net.get(2).appliedData().length, 4);
});

Deno.test("replication: the inflight window pauses a replicating follower; heartbeats resume it (replicate_pause)", () => {
  const net = new Network([1, 2, 3], { maxInflightMsgs: 2, maxSizePerMsg: 1 });
  net.campaign(1);
  net.propose(1, "warm-up"); // 2 and 3 now in replicate state
  let appsTo3 = 0;
  net.hook = (m) => {
    if (m.type === "MsgApp" && m.to === 3) {
      if (m.entries.length > 0) appsTo3++;
      return false; // lost
    }
    return true;
  };
  for (let i = 0; i < 6; i++) net.propose(1, `p${i}`);
  assert.equal(appsTo3, 2, "at most maxInflightMsgs MsgApp in flight");
  assert.equal(net.get(1).node.status().progress.get(3)?.state, "replicate");
  net.hook = undefined;
  net.tick(1, 1); // heartbeat response unpauses and lets the empty probe through
  net.tick(1, 1);
  assert.deepEqual(net.get(3).appliedData(), net.get(2).appliedData());
  assert.equal(net.get(3).appliedData().length, 7);
});

Deno.test("replication: a lagging follower learns the commit index from heartbeats (lagging_commit)", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  // 3 receives entries but never the empty MsgApp that carries the new commit index.
  net.hook = (m) => !(m.type === "MsgApp" && m.to === 3 && m.entries.length === 0);
  net.propose(1, "x");
  assert.deepEqual(net.get(2).appliedData(), ["x"]);
  assert.deepEqual(net.get(3).appliedData(), []);
  net.tick(1, 1);
  assert.deepEqual(net.get(3).appliedData(), ["x"]);
  assert.equal(dec(net.get(3).applied.at(-1)!.data), "x");
});

Deno.test("replication: reordered and duplicated MsgApp do not corrupt the log (TestLogReplicationWithReorderedMessage)", () => {
  const net = new Network([1, 2, 3], { maxSizePerMsg: 1 });
  net.campaign(1);
  net.propose(1, "a");
  // Capture the MsgApps for b and c to 2, then deliver them reversed and twice.
  const held: Parameters<Network["deliver"]>[0][] = [];
  net.hook = (m) => {
    if (m.type === "MsgApp" && m.to === 2 && m.entries.length > 0) {
      held.push(m);
      return false;
    }
    return true;
  };
  net.propose(1, "b");
  net.propose(1, "c");
  net.hook = undefined;
  for (const m of [...held].reverse()) net.deliver(m);
  for (const m of held) net.deliver(m);
  net.stabilize();
  net.tick(1, 2);
  for (const id of [1, 2, 3]) assert.deepEqual(net.get(id).appliedData(), ["a", "b", "c"]);
});
