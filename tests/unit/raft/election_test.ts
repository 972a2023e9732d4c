/**
 * Election scenarios (reference/raft.md §2, items 1–3, 7–11): one-round
 * elections, dueling candidates, one vote per term, the up-to-date check,
 * stale messages, PreVote against a disruptive node, CheckQuorum.
 */

import assert from "node:assert/strict";
import { type Message, msg, type Mutant } from "../../../core/raft/mod.ts";
import { enc, logTerms, Network } from "./harness.ts";

Deno.test("election: a candidate with a quorum wins in one round (§5.2)", () => {
  const cases: { size: number; down: number[]; wins: boolean }[] = [
    { size: 3, down: [], wins: true },
    { size: 3, down: [3], wins: true },
    { size: 3, down: [2, 3], wins: false },
    { size: 5, down: [4, 5], wins: true },
    { size: 5, down: [3, 4, 5], wins: false },
  ];
  for (const c of cases) {
    const ids = Array.from({ length: c.size }, (_, i) => i + 1);
    const net = new Network(ids);
    for (const d of c.down) net.down.add(d);
    net.campaign(1);
    const n1 = net.get(1);
    assert.equal(n1.state, c.wins ? "leader" : "candidate", JSON.stringify(c));
    assert.equal(n1.term, 2);
  }
});

Deno.test("election: randomized timeouts elect exactly one leader without a campaign call", () => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.tickAll(40);
  assert.equal(net.leaders().length, 1);
  const leader = net.get(net.leaders()[0]);
  for (const n of net.nodes.values()) {
    assert.equal(n.term, leader.term);
    assert.equal(n.node.leader(), leader.id);
  }
});

Deno.test("election: dueling candidates; the one with the shorter log loses (TestDuelingCandidates)", () => {
  const net = new Network([1, 2, 3]);
  net.cut(1, 3);
  net.campaign(1);
  net.campaign(3);
  assert.equal(net.get(1).state, "leader");
  assert.equal(net.get(3).state, "candidate"); // 2 already voted for 1 in term 2
  net.recover();
  // 3 campaigns again at term 3, but its log lacks 1's term-2 entry: both
  // refuse, and having lost, 3 becomes a follower.
  net.campaign(3);
  assert.equal(net.get(1).state, "follower");
  assert.equal(net.get(2).state, "follower");
  assert.equal(net.get(3).state, "follower");
  for (const id of [1, 2, 3]) assert.equal(net.get(id).term, 3);
  assert.deepEqual(logTerms(net.get(1)), [2]);
  assert.deepEqual(logTerms(net.get(3)), []);
});

Deno.test("election: one vote per term, persisted in the same Ready as the response (TestFollowerVote)", () => {
  const net = new Network([1, 2, 3]);
  const n2 = net.get(2);
  n2.node.step(msg({ type: "MsgVote", from: 1, to: 2, term: 2, index: 1, logTerm: 1 }));
  const rd = n2.node.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: 1, commit: 1 });
  assert.equal(rd.mustSync, true);
  assert.equal(rd.messages.length, 1);
  assert.equal(rd.messages[0].type, "MsgVoteResp");
  assert.equal(rd.messages[0].reject, false);
  n2.node.advance();
  // Another candidate in the same term is refused; a repeat from 1 is granted.
  n2.node.step(msg({ type: "MsgVote", from: 3, to: 2, term: 2, index: 1, logTerm: 1 }));
  n2.node.step(msg({ type: "MsgVote", from: 1, to: 2, term: 2, index: 1, logTerm: 1 }));
  const rd2 = n2.node.ready();
  assert.deepEqual(rd2.messages.map((m) => [m.to, m.reject]), [[3, true], [1, false]]);
  assert.equal(rd2.hardState, undefined);
  n2.node.advance();
});

function voterCase(mutant: Mutant | undefined, index: number, logTerm: number): boolean {
  // The voter's log: index 1 (term 1, snapshot), index 2 term 1, index 3 term 2.
  const net = new Network([1, 2], { mutant }, [], { 1: [1, 2] });
  const n = net.get(1);
  n.node.step(msg({ type: "MsgVote", from: 2, to: 1, term: 3, index, logTerm }));
  const rd = n.node.ready();
  const resp = rd.messages.find((m: Message) => m.type === "MsgVoteResp");
  assert.ok(resp);
  return !resp.reject;
}

Deno.test("election: votes only for candidates at least as up to date (§5.4.1, TestVoter)", () => {
  const cases: [number, number, boolean][] = [
    [3, 2, true], // same last entry
    [4, 2, true], // longer, same last term
    [2, 2, false], // same last term but shorter
    [2, 3, true], // shorter but higher last term
    [2, 1, false], // lower last term
    [5, 1, false], // longer but lower last term
    [1, 1, false],
  ];
  for (const [index, logTerm, grant] of cases) {
    assert.equal(voterCase(undefined, index, logTerm), grant, `candidate last ${index}:${logTerm}`);
  }
  // The check can fail: the no-up-to-date-check mutant grants a stale candidate.
  assert.equal(voterCase("no-up-to-date-check", 2, 1), true);
});

Deno.test("election: messages from stale terms are ignored (TestOldMessages)", () => {
  for (const mutant of [undefined, "no-term-check" as const]) {
    const net = new Network([1, 2, 3], { mutant });
    net.campaign(1);
    net.campaign(2);
    net.campaign(1); // 1 leads term 4
    const n3 = net.get(3);
    assert.equal(n3.term, 4);
    const before = logTerms(n3);
    // A delayed MsgApp from 2's reign (term 3) carrying a term-3 entry.
    const stale = msg({
      type: "MsgApp",
      from: 2,
      to: 3,
      term: 3,
      index: 3,
      logTerm: 3,
      entries: [{ term: 3, index: 4, type: "normal", data: enc("stale") }],
    });
    n3.node.step(stale);
    net.stabilize();
    if (mutant === undefined) {
      assert.deepEqual(logTerms(n3), before);
      assert.equal(n3.node.leader(), 1);
    } else {
      // Proof the assertion can fail: the mutant follows the stale leader.
      assert.equal(n3.node.leader(), 2);
    }
  }
});

Deno.test("prevote: a rejoining partitioned node does not disrupt the leader (TestDisruptiveFollower)", () => {
  for (const preVote of [false, true]) {
    const net = new Network([1, 2, 3], { preVote });
    net.campaign(1);
    const term = net.get(1).term;
    net.isolate(3);
    net.tick(3, 50); // several election timeouts alone
    if (preVote) assert.equal(net.get(3).term, term, "pre-votes do not raise the term");
    else assert.ok(net.get(3).term > term);
    net.recover();
    net.tickAll(3);
    if (preVote) {
      assert.equal(net.get(1).state, "leader");
      assert.equal(net.get(1).term, term);
    } else {
      // Without PreVote the rejoining node's higher term deposes the leader.
      assert.ok(net.get(1).term > term);
    }
  }
});

Deno.test("prevote: no pre-votes are granted while a leader is live (prevote_checkquorum)", () => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  net.tickAll(2);
  const term = net.get(1).term;
  net.campaign(3); // 3 asks for pre-votes while 1 is heard from
  assert.notEqual(net.get(3).state, "leader");
  assert.equal(net.get(3).term, term);
  assert.equal(net.get(1).state, "leader");
  assert.equal(net.get(1).term, term);
});

Deno.test("prevote: a node with a smaller term can still complete an election (TestNodeWithSmallerTermCanCompleteElection)", () => {
  const net = new Network([1, 2, 3], { preVote: true });
  net.campaign(1);
  net.isolate(3);
  net.campaign(2); // 2 leads a higher term without 3
  assert.equal(net.get(2).state, "leader");
  net.recover();
  net.isolate(2); // the leader goes away
  net.tick(1, 30);
  net.tick(3, 30);
  const leaders = net.leaders().filter((id) => id !== 2);
  assert.equal(leaders.length, 1);
});

Deno.test("checkquorum: a leader without a live quorum steps down (TestLeaderStepdownWhenQuorumLost)", () => {
  for (const checkQuorum of [false, true]) {
    const net = new Network([1, 2, 3], { checkQuorum });
    net.campaign(1);
    net.isolate(1);
    net.tick(1, 21);
    assert.equal(net.get(1).state, checkQuorum ? "follower" : "leader");
  }
});

Deno.test("checkquorum: a stuck candidate is freed by the leader's next heartbeat (TestFreeStuckCandidateWithCheckQuorum)", () => {
  const net = new Network([1, 2, 3], { checkQuorum: true });
  net.campaign(1);
  net.isolate(1);
  net.campaign(3);
  net.campaign(3);
  assert.equal(net.get(3).state, "candidate");
  assert.equal(net.get(2).state, "follower"); // 2 ignores votes while in lease
  net.recover();
  net.tick(1, 1); // heartbeat to 3; 3 answers with its higher term
  assert.equal(net.get(1).state, "follower");
  assert.equal(net.get(1).term, net.get(3).term);
});
