import assert from "node:assert/strict";
import { Wal, WalCorruptError } from "../../wal/wal.ts";
import type { Entry } from "../../core/raft/types.ts";

const base = { index: 1, term: 1, confState: { voters: [1], learners: [] } };

function ent(index: number, term: number, byte = index): Entry {
  return { index, term, type: "normal", data: new Uint8Array(100).fill(byte & 0xff) };
}

function summary(entries: Entry[]): [number, number, number][] {
  return entries.map((e) => [e.index, e.term, e.data[0]]);
}

Deno.test("wal: entries and hard state survive a reopen; a rewritten index drops the tail", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  try {
    const { wal, state } = await Wal.open(dir, base, { segmentBytes: 64 * 1024 });
    assert.deepEqual(state.entries, []);
    await wal.save({ term: 2, vote: 1, commit: 3 }, [2, 3, 4, 5].map((i) => ent(i, 2)), true);
    await wal.save({ term: 3, vote: 1, commit: 3 }, [ent(4, 3, 40)], true);
    await wal.close();
    const again = await Wal.open(dir, base, { segmentBytes: 64 * 1024 });
    assert.deepEqual(again.state.base, base);
    assert.deepEqual(again.state.hardState, { term: 3, vote: 1, commit: 3 });
    assert.deepEqual(summary(again.state.entries), [[2, 2, 2], [3, 2, 3], [4, 3, 40]]);
    assert.equal(again.wal.lastIndex, 4);
    await again.wal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("wal: a torn last record is dropped and zeroed, never resurrected", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  try {
    const { wal } = await Wal.open(dir, base, { segmentBytes: 64 * 1024 });
    await wal.save({ term: 2, vote: 1, commit: 2 }, [ent(2, 2)], true);
    await wal.save(undefined, [ent(3, 2), ent(4, 2)], true);
    await wal.close();
    const [name] = [...Deno.readDirSync(dir)].map((e) => e.name);
    const bytes = Deno.readFileSync(`${dir}/${name}`);
    // Damage entry 3 (the first record of the second write) but keep entry 4 intact,
    // as a crash that wrote sectors out of order would.
    let off = 0;
    const view = new DataView(bytes.buffer);
    const starts: number[] = [];
    while (view.getUint32(off, true) !== 0) {
      starts.push(off);
      off += 8 + view.getUint32(off, true);
    }
    const entry3 = starts[starts.length - 2];
    bytes[entry3 + 8 + 20] ^= 0xff;
    Deno.writeFileSync(`${dir}/${name}`, bytes);
    const reopened = await Wal.open(dir, base, { segmentBytes: 64 * 1024 });
    assert.deepEqual(summary(reopened.state.entries), [[2, 2, 2]]);
    // A record of the same length written at the same place must not bring entry 4 back.
    await reopened.wal.save(undefined, [ent(3, 3, 33)], true);
    await reopened.wal.close();
    const last = await Wal.open(dir, base, { segmentBytes: 64 * 1024 });
    assert.deepEqual(summary(last.state.entries), [[2, 2, 2], [3, 3, 33]]);
    await last.wal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("wal: segments are cut when full, replayed in order and released", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  try {
    const { wal } = await Wal.open(dir, base, { segmentBytes: 8 * 1024 });
    for (let i = 2; i <= 201; i += 4) {
      await wal.save(
        { term: 2, vote: 1, commit: i + 3 },
        [0, 1, 2, 3].map((k) => ent(i + k, 2)),
        true,
      );
    }
    assert.ok(wal.segmentCount > 2, `several segments (${wal.segmentCount})`);
    await wal.close();
    const all = await Wal.open(dir, base, { segmentBytes: 8 * 1024 });
    assert.equal(all.state.entries.length, 200);
    assert.equal(all.state.entries[0].index, 2);
    assert.equal(all.state.hardState.commit, 201);
    const before = all.wal.segmentCount;
    const removed = all.wal.release(100);
    assert.ok(removed > 0 && all.wal.segmentCount === before - removed);
    await all.wal.close();
    const after = await Wal.open(dir, base, { segmentBytes: 8 * 1024 });
    assert.ok(after.state.base.index <= 100 && after.state.base.index > 1);
    assert.equal(after.state.entries[0].index, after.state.base.index + 1);
    assert.equal(after.state.entries.at(-1)!.index, 201);
    assert.equal(after.state.hardState.commit, 201);
    await after.wal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("wal: damage before the last segment is an error, not a silent truncation", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  try {
    const { wal } = await Wal.open(dir, base, { segmentBytes: 4 * 1024 });
    for (let i = 2; i <= 120; i++) await wal.save(undefined, [ent(i, 2)], true);
    await wal.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(names.length > 2);
    const bytes = Deno.readFileSync(`${dir}/${names[0]}`);
    bytes[200] ^= 0xff;
    Deno.writeFileSync(`${dir}/${names[0]}`, bytes);
    await assert.rejects(() => Wal.open(dir, base, { segmentBytes: 4 * 1024 }), WalCorruptError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("wal: an installed snapshot restarts the log after its index, across segments", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  try {
    const { wal } = await Wal.open(dir, base, { segmentBytes: 4 * 1024 });
    for (let i = 2; i <= 60; i++) await wal.save(undefined, [ent(i, 2)], true);
    const snap = { index: 100, term: 5, confState: { voters: [1, 2, 3], learners: [4] } };
    await wal.saveSnapshot(snap);
    await wal.save({ term: 5, vote: 2, commit: 101 }, [ent(101, 5), ent(102, 5)], true);
    // Later segments carry the snapshot's membership in their base records.
    for (let i = 103; i <= 160; i++) await wal.save(undefined, [ent(i, 5)], true);
    await wal.close();
    const again = await Wal.open(dir, base, { segmentBytes: 4 * 1024 });
    assert.deepEqual(again.state.base, snap);
    assert.deepEqual(again.state.entries.map((e) => e.index)[0], 101);
    assert.equal(again.state.entries.length, 60);
    assert.deepEqual(again.state.hardState, { term: 5, vote: 2, commit: 101 });
    assert.ok(again.wal.release(130) > 0);
    await again.wal.close();
    const released = await Wal.open(dir, base, { segmentBytes: 4 * 1024 });
    assert.deepEqual(released.state.base.confState, snap.confState);
    assert.ok(released.state.base.index > 100);
    await released.wal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
