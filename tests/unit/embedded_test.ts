import assert from "node:assert/strict";
import { EtcdError, openStore } from "../../mod.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

Deno.test("embedded: openStore puts, gets by prefix and revision, deletes, txns, compacts", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-embedded-" });
  const store = await openStore(dir);
  try {
    const first = await store.put("config/a", "1");
    await store.put("config/b", "2");
    await store.put(enc.encode("config/a"), enc.encode("3"));
    await store.put("other", "x");
    const prefix = await store.get("config/", { prefix: true });
    assert.deepEqual(prefix.kvs.map((kv) => [dec.decode(kv.key), dec.decode(kv.value)]), [
      ["config/a", "3"],
      ["config/b", "2"],
    ]);
    const old = await store.get("config/a", { revision: first.header.revision });
    assert.equal(dec.decode(old.kvs[0].value), "1");
    const from = await store.get("config/b", { fromKey: true, keys_only: true });
    assert.deepEqual(from.kvs.map((kv) => dec.decode(kv.key)), ["config/b", "other"]);
    const t = await store.txn({
      compare: [{
        key: enc.encode("config/a"),
        target: "VALUE",
        result: "EQUAL",
        value: enc.encode("3"),
      }],
      success: [{ request_put: { key: enc.encode("config/c"), value: enc.encode("4") } }],
      failure: [],
    });
    assert.equal(t.succeeded, true);
    const del = await store.delete("config/", { prefix: true, prev_kv: true });
    assert.equal(del.deleted, 3);
    assert.equal(del.prev_kvs.length, 3);
    await store.compact(del.header.revision);
    await assert.rejects(
      store.get("config/a", { revision: first.header.revision }),
      (err: unknown) => err instanceof EtcdError && err.code === 11,
    );
    const status = await store.status();
    assert.equal(status.header.revision, del.header.revision);
  } finally {
    await store.close();
  }
  // Reopen: the same data directory keeps the data.
  const again = await openStore(dir);
  try {
    const r = await again.get("other");
    assert.equal(dec.decode(r.kvs[0].value), "x");
  } finally {
    await again.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
