import assert from "node:assert/strict";
import { openBackend } from "../../native/lmdb.ts";

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
    assert.throws(() => b.put("current", k(2), k(2)), /outside a write transaction/);
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
