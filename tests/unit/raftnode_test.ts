import assert from "node:assert/strict";
import { openStore } from "../../mod.ts";
import { openBackend } from "../../native/lmdb.ts";
import { Meta } from "../../core/mvcc/view.ts";
import { openMember } from "../../server/member.ts";

const dec = new TextDecoder();

async function values(dir: string): Promise<string[]> {
  const store = await openStore(dir);
  try {
    const r = await store.get("k", { prefix: true });
    return r.kvs.map((kv) => `${dec.decode(kv.key)}=${dec.decode(kv.value)}@${kv.mod_revision}`);
  } finally {
    await store.close();
  }
}

Deno.test("raft node: a state machine that lost its last commits is rebuilt from the WAL", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-raftnode-" });
  try {
    const store = await openStore(dir);
    await store.put("k1", "a");
    await store.close();
    // What an OS crash can leave: LMDB rolled back to an older durable
    // transaction while the WAL holds every acknowledged write after it.
    const older = Deno.readFileSync(`${dir}/member/data.mdb`);
    const again = await openStore(dir);
    await again.put("k2", "b");
    await again.put("k1", "c");
    await again.delete("k2");
    await again.put("k3", "d");
    await again.close();
    const expected = await values(dir);
    assert.deepEqual(expected, ["k1=c@4", "k3=d@6"]);
    Deno.writeFileSync(`${dir}/member/data.mdb`, older);
    const b = openBackend(`${dir}/member`);
    const stale = Number(b.getMeta(Meta.appliedIndex));
    await b.close();
    const replayed = await values(dir);
    assert.deepEqual(replayed, expected);
    const b2 = openBackend(`${dir}/member`);
    assert.ok(
      Number(b2.getMeta(Meta.appliedIndex)) > stale,
      "the replay advanced the applied index",
    );
    assert.equal(Number(b2.getMeta(Meta.revision)), 6);
    await b2.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("raft node: terms come from Raft's persisted hard state and only grow", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-raftnode-" });
  try {
    const terms: number[] = [];
    for (let i = 0; i < 3; i++) {
      const store = await openStore(dir);
      terms.push(Number((await store.put("k", String(i))).header.raft_term));
      await store.close();
    }
    assert.ok(terms[0] >= 2, `a new member elects itself in a term after its base (${terms})`);
    assert.ok(
      terms[1] > terms[0] && terms[2] > terms[1],
      `each election raises the term (${terms})`,
    );
    assert.deepEqual(await values(dir), ["k=2@4"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("raft node: --snapshot-count compacts the Raft log and releases WAL segments", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-raftnode-" });
  try {
    const ids = { memberId: 1n, clusterId: 1n };
    const raft = { snapshotCount: 100, walSegmentBytes: 16 * 1024 };
    const limits = { maxTxnOps: 128, maxRequestBytes: 1572864 };
    let m = await openMember(dir, ids, limits, raft);
    const value = new Uint8Array(1024).fill(118);
    for (let i = 0; i < 600; i++) {
      await m.service.put({ key: new TextEncoder().encode(`k${i % 50}`), value });
      // Let LMDB's background sync finish now and then, so entries become releasable.
      if (i % 100 === 99) await m.backend.flushed();
    }
    assert.ok(m.node.logStart > 100, `the log was compacted (starts at ${m.node.logStart})`);
    const segments = [...Deno.readDirSync(`${dir}/member/wal`)].filter((e) =>
      e.name.endsWith(".wal")
    );
    assert.ok(segments.length < 20, `old WAL segments were released (${segments.length} left)`);
    await m.close();
    // The compacted WAL still opens, and nothing was lost.
    m = await openMember(dir, ids, limits, raft);
    const r = await m.service.range({
      key: new TextEncoder().encode("k"),
      range_end: new TextEncoder().encode("l"),
      count_only: true,
    });
    assert.equal(r.count, 50);
    assert.equal(r.header.revision, 601);
    await m.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
