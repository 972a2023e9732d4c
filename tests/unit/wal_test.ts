import assert from "node:assert/strict";
import { openBackend } from "../../native/lmdb.ts";
import { appendEntry, compactLog, lastIndex, readEntries } from "../../wal/log.ts";

Deno.test("wal: entries append, read back in order, overwrite and compact", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-" });
  const b = openBackend(dir);
  try {
    assert.equal(lastIndex(b), 0);
    await b.write(() => {
      for (let i = 1; i <= 5; i++) {
        appendEntry(b, { index: i, term: 1, type: 0, data: new Uint8Array([i]) });
      }
    });
    assert.equal(lastIndex(b), 5);
    // A new leader's entry at index 4 replaces the old one (same key).
    await b.write(() => appendEntry(b, { index: 4, term: 2, type: 1, data: new Uint8Array([40]) }));
    const read = readEntries(b, 2, 6);
    assert.deepEqual(
      read.map((e) => [e.index, e.term, e.type, [...e.data]]),
      [[2, 1, 0, [2]], [3, 1, 0, [3]], [4, 2, 1, [40]], [5, 1, 0, [5]]],
    );
    const removed = await b.write(() => compactLog(b, 3));
    assert.equal(removed, 2);
    assert.deepEqual(readEntries(b, 0, 10).map((e) => e.index), [3, 4, 5]);
    assert.equal(lastIndex(b), 5);
  } finally {
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
