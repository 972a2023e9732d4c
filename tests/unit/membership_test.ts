import assert from "node:assert/strict";
import {
  decodeMemberContext,
  encodeMemberContext,
  Membership,
} from "../../server/cluster/membership.ts";

Deno.test("membership: etcd's IDs for its default member and cluster", () => {
  const m = Membership.bootstrap(new Map([["default", ["http://localhost:2380"]]]), "etcd-cluster");
  // etcd 3.4 with default flags reports member 8e9e05c52164694d in cluster cdf818194e3a8c32.
  assert.deepEqual(m.members.map((x) => x.id.toString(16)), ["8e9e05c52164694d"]);
  assert.equal(m.clusterId().toString(16), "cdf818194e3a8c32");
  assert.equal(m.members[0].raftId, 1);
  assert.equal(m.members[0].name, "default");
});

Deno.test("membership: bootstrap raft IDs follow member ID order; learners, removal, next ID", () => {
  const initial = new Map([
    ["a", ["http://127.0.0.1:2380"]],
    ["b", ["http://127.0.0.1:2381"]],
    ["c", ["http://127.0.0.1:2382"]],
  ]);
  const m = Membership.bootstrap(initial, "tok");
  const byId = [...m.members].sort((x, y) => (x.id < y.id ? -1 : 1));
  assert.deepEqual(byId.map((x) => x.raftId), [1, 2, 3]);
  // Every member computes the same mapping from the same flags.
  const again = Membership.bootstrap(new Map([...initial].reverse()), "tok");
  assert.equal(again.encode(), m.encode());
  assert.deepEqual(m.confState(), { voters: [1, 2, 3], learners: [] });
  m.set({
    id: 99n,
    raftId: m.nextRaftId(),
    name: "",
    peerURLs: ["http://127.0.0.1:2383"],
    clientURLs: [],
    isLearner: true,
  });
  assert.deepEqual(m.confState(), { voters: [1, 2, 3], learners: [4] });
  const victim = byId[0];
  m.remove(victim.id);
  assert.ok(m.isRemoved(victim.id));
  assert.ok(m.isRemovedRaftId(victim.raftId));
  assert.equal(m.nextRaftId(), 5, "a raft ID is never given out twice");
  assert.throws(() => m.set({ ...victim }), /never comes back/);
  // The stored form keeps all of it.
  const back = Membership.decode(m.encode());
  assert.equal(back.encode(), m.encode());
  assert.ok(back.isRemovedRaftId(victim.raftId));
  assert.equal(back.nextRaftId(), 5);
});

Deno.test("membership: a conf change context carries the member whole", () => {
  const member = {
    id: 0xfedcba9876543210n,
    raftId: 7,
    name: "m7",
    peerURLs: ["http://10.0.0.7:2380"],
    clientURLs: ["http://10.0.0.7:2379"],
    isLearner: true,
  };
  assert.deepEqual(decodeMemberContext(encodeMemberContext(member)), member);
  assert.throws(() => decodeMemberContext(new TextEncoder().encode('{"id":1}')));
});
