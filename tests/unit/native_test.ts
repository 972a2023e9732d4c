import assert from "node:assert/strict";
import { InvariantError } from "../../core/invariant.ts";
import { environmentStats, openBackend } from "../../native/lmdb.ts";

const k = (...bytes: number[]) => new Uint8Array(bytes);
const keysOf = (it: Iterable<{ key: Uint8Array }>) => [...it].map((e) => [...e.key].join("."));

Deno.test("native: a write sees its own puts and deletes merged into scans; others see them after commit", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-native-" });
  const b = openBackend(dir);
  try {
    await b.write(() => {
      for (const x of [1, 3, 5, 7]) b.put("current", k(x), k(x));
    });
    let outsideDuringWrite: string[] = [];
    const done = b.write(() => {
      b.put("current", k(4), k(4));
      b.del("current", k(5));
      b.put("current", k(7), k(70));
      b.put("current", k(9), k(9));
      assert.deepEqual(keysOf(b.scan("current", {})), ["1", "3", "4", "7", "9"]);
      assert.deepEqual(keysOf(b.scan("current", { start: k(2), end: k(8) })), ["3", "4", "7"]);
      assert.deepEqual(keysOf(b.scan("current", { reverse: true })), ["9", "7", "4", "3", "1"]);
      assert.deepEqual(keysOf(b.scan("current", { reverse: true, end: k(7), limit: 2 })), [
        "4",
        "3",
      ]);
      assert.deepEqual(keysOf(b.scan("current", { start: k(3), limit: 3 })), ["3", "4", "7"]);
      assert.equal(b.count("current", { start: k(2) }), 4);
      assert.deepEqual([...b.get("current", k(7))!], [70]);
      assert.equal(b.get("current", k(5)), undefined);
      b.putMeta("m", 5);
      assert.equal(b.getMeta("m"), 5);
      return "result";
    });
    outsideDuringWrite = keysOf(b.scan("current", {}));
    assert.deepEqual(outsideDuringWrite, ["1", "3", "5", "7"], "not visible before commit");
    assert.equal(await done, "result");
    assert.deepEqual(keysOf(b.scan("current", {})), ["1", "3", "4", "7", "9"]);
    assert.equal(b.getMeta("m"), 5);
    // A failing write leaves nothing behind.
    await assert.rejects(b.write(() => {
      b.put("current", k(2), k(2));
      throw new Error("boom");
    }));
    assert.equal(b.get("current", k(2)), undefined);
    assert.throws(() => b.put("current", k(2), k(2)), InvariantError);
  } finally {
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("native: a write sees earlier writes that are not durable yet; commits keep call order", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-native-" });
  const b = openBackend(dir);
  try {
    const first = b.write(() => {
      b.put("current", k(1), k(1));
      b.putMeta("rev", 1);
    });
    const second = b.write(() => {
      assert.deepEqual([...b.get("current", k(1))!], [1], "sees the pending write");
      assert.equal(b.getMeta("rev"), 1);
      assert.deepEqual(keysOf(b.scan("current", {})), ["1"]);
      b.del("current", k(1));
      b.put("current", k(2), k(2));
      b.putMeta("rev", 2);
    });
    const third = b.write(() => {
      assert.deepEqual(keysOf(b.scan("current", {})), ["2"], "sees both pending writes");
      assert.equal(b.count("current", {}), 1);
      assert.equal(b.getMeta("rev"), 2);
    });
    await Promise.all([first, second, third]);
    assert.deepEqual(keysOf(b.scan("current", {})), ["2"]);
    assert.equal(b.getMeta("rev"), 2);
  } finally {
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("native: keys in any order within and across writes all land", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-native-order-" });
  const value = new Uint8Array(1000).fill(7);
  const key = (n: number) => new TextEncoder().encode(`k${String(n).padStart(6, "0")}`);
  let b = openBackend(dir);
  try {
    // Blocks out of order inside one write and across writes.
    await b.write(() => {
      for (const block of [3, 0, 2]) {
        for (let i = 0; i < 50; i++) b.put("current", key(block * 50 + i), value);
      }
    });
    await b.write(() => {
      for (let i = 49; i >= 0; i--) b.put("current", key(50 + i), value);
      b.del("current", key(199));
    });
    await b.close();
    // Reopened, the highest stored key is read back: writes below it are plain puts.
    b = openBackend(dir);
    await b.write(() => {
      b.put("current", key(10), k(1));
      b.put("current", key(199), k(2));
      b.put("current", key(200), k(3));
    });
    const keys = [...b.scan("current", {})].map((e) => new TextDecoder().decode(e.key));
    assert.deepEqual(keys, Array.from({ length: 201 }, (_, i) => `k${String(i).padStart(6, "0")}`));
    assert.deepEqual([...b.get("current", key(10))!], [1]);
    assert.deepEqual([...b.get("current", key(199))!], [2]);
    assert.equal(b.get("current", key(11))!.length, 1000);
  } finally {
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("native: a put that LMDB refuses to append fails the write instead of vanishing", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-native-append-" });
  const a = openBackend(dir);
  const other = openBackend(dir); // a second writer, which cairn never opens
  try {
    await other.write(() => other.put("current", k(9), k(9)));
    // `a` saw an empty table at open, so it appends k(5) — below k(9).
    await assert.rejects(a.write(() => a.put("current", k(5), k(5))), /refused an append/);
  } finally {
    await a.close();
    await other.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("native: keys written in order fill whole pages", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-native-fill-" });
  const value = new Uint8Array(1000).fill(7);
  const key = (n: number) => new TextEncoder().encode(`k${String(n).padStart(6, "0")}`);
  const b = openBackend(dir);
  try {
    for (let w = 0; w < 10; w++) {
      await b.write(() => {
        for (let i = 0; i < 70; i++) b.put("current", key(w * 70 + i), value);
      });
    }
  } finally {
    await b.close();
  }
  try {
    const s = await environmentStats(dir);
    assert.equal(s.pageSize, 8192);
    const perPage = Math.floor((s.pageSize - 16) / (8 + 7 + 1000 + 2));
    assert.equal(s.tables.current.entries, 700);
    // Appended: full leaves. (A plain put at a leaf's end leaves it one record short.)
    assert.ok(
      s.tables.current.leaf <= Math.ceil(700 / perPage),
      `${s.tables.current.leaf} leaves for 700 records of ${perPage} a page`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
