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

Deno.test("embedded: past the quota writes fail with NOSPACE; delete, compact, defragment and disarm recover", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-embedded-quota-" });
  const store = await openStore(dir, { quotaBackendBytes: 400_000 });
  try {
    const value = "v".repeat(30_000);
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      await store.put(`big/${i}`, value).catch((err) => refused = err);
    }
    assert.ok(refused instanceof EtcdError, "the quota is reached");
    assert.equal(refused.message, "etcdserver: mvcc: database space exceeded");
    const { alarms } = await store.alarm({ action: "GET" });
    assert.deepEqual(alarms.map((a) => a.alarm), ["NOSPACE"]);
    // Every write that adds data fails now, even a small one; reads and deletes work.
    await assert.rejects(store.put("small", "1"), /database space exceeded/);
    assert.equal((await store.get("big/0")).kvs.length, 1);
    const del = await store.delete("big/", { prefix: true });
    const hash = await store.hashKV();
    assert.equal((await store.hashKV({ revision: del.header.revision })).hash, hash.hash);
    await store.compact({ revision: del.header.revision, physical: true });
    const before = (await store.status()).dbSize;
    assert.deepEqual(await store.defragment(), {});
    assert.ok((await store.status()).dbSize < before, "the file shrank");
    assert.deepEqual((await store.status()).errors, [
      `memberID:${alarms[0].memberID} alarm:NOSPACE `,
    ]);
    await store.alarm({ action: "DEACTIVATE", memberID: alarms[0].memberID, alarm: "NOSPACE" });
    assert.deepEqual((await store.alarm({})).alarms, []);
    await store.put("small", "1");
    assert.equal(dec.decode((await store.get("small")).kvs[0].value), "1");
  } finally {
    await store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
