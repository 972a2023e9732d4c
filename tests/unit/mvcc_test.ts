import assert from "node:assert/strict";
import { EtcdError } from "../../core/errors.ts";
import type { KeyValue, RangeRequest, TxnRequest } from "../../core/api/types.ts";
import { compareBytes, decodeRecord, encodeRecord, escapeKey } from "../../core/mvcc/encoding.ts";
import { openMember } from "../../server/member.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const s = (u: Uint8Array) => dec.decode(u);
const ZERO = new Uint8Array([0]);

async function withStore(
  fn: (svc: Awaited<ReturnType<typeof openMember>>["service"]) => Promise<void>,
  dir = Deno.makeTempDirSync({ prefix: "cairn-mvcc-" }),
  keep = false,
) {
  const m = await openMember(dir, { memberId: 1n, clusterId: 2n }, {
    maxTxnOps: 128,
    maxRequestBytes: 1572864,
  });
  try {
    await fn(m.service);
  } finally {
    await m.close();
    if (!keep) Deno.removeSync(dir, { recursive: true });
  }
}

function brief(kvs: KeyValue[]) {
  return kvs.map((kv) => [s(kv.key), s(kv.value), kv.create_revision, kv.mod_revision, kv.version]);
}

async function rejects(p: Promise<unknown>, message: string) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof EtcdError, `expected EtcdError, got ${err}`);
    assert.equal(err.message, message);
    return true;
  });
}

Deno.test("encoding: records round-trip and escaped keys keep bytewise order", () => {
  const kv = {
    key: new Uint8Array([0, 1, 0xff]),
    value: b("v"),
    create_revision: 2 ** 40 + 3,
    mod_revision: 7,
    version: 9,
    lease: -5n,
  };
  const back = decodeRecord(kv.key, encodeRecord(kv, true));
  assert.equal(back.deleted, true);
  assert.deepEqual({ ...back.kv, key: [...back.kv.key], value: [...back.kv.value] }, {
    ...kv,
    key: [...kv.key],
    value: [...kv.value],
  });
  const keys = [[0], [0, 0], [0, 1], [1], [1, 0], [1, 0, 0], [1, 0xff], [2]].map((k) =>
    new Uint8Array(k)
  );
  for (let i = 0; i < keys.length; i++) {
    for (let j = 0; j < keys.length; j++) {
      assert.equal(
        Math.sign(compareBytes(escapeKey(keys[i]), escapeKey(keys[j]))),
        Math.sign(compareBytes(keys[i], keys[j])),
        `order of ${keys[i]} vs ${keys[j]}`,
      );
    }
  }
});

Deno.test("put: revisions, versions and prev_kv follow etcd", async () => {
  await withStore(async (kv) => {
    const first = await kv.put({ key: b("a"), value: b("1") });
    assert.equal(first.header.revision, 2);
    assert.equal(first.prev_kv, undefined);
    const second = await kv.put({ key: b("a"), value: b("2"), prev_kv: true });
    assert.equal(second.header.revision, 3);
    assert.deepEqual(brief([second.prev_kv!]), [["a", "1", 2, 2, 1]]);
    const r = await kv.range({ key: b("a") });
    assert.deepEqual(brief(r.kvs), [["a", "2", 2, 3, 2]]);
    assert.equal(r.count, 1);
    assert.equal(r.header.revision, 3);
    assert.equal(r.header.member_id, 1n);
  });
});

Deno.test("put: ignore_value and ignore_lease keep the current value, and need the key", async () => {
  await withStore(async (kv) => {
    await rejects(kv.put({ key: b("x"), ignore_value: true }), "etcdserver: key not found");
    await rejects(
      kv.put({ key: b("x"), value: b("v"), ignore_value: true }),
      "etcdserver: value is provided",
    );
    await rejects(
      kv.put({ key: b("x"), lease: 7n, ignore_lease: true }),
      "etcdserver: lease is provided",
    );
    await rejects(kv.put({ key: b("x"), lease: 7n }), "etcdserver: requested lease not found");
    await rejects(kv.put({ key: new Uint8Array(0) }), "etcdserver: key is not provided");
    await kv.put({ key: b("x"), value: b("keep") });
    const r = await kv.put({ key: b("x"), ignore_value: true, prev_kv: true });
    assert.equal(r.header.revision, 3);
    const got = await kv.range({ key: b("x") });
    assert.deepEqual(brief(got.kvs), [["x", "keep", 2, 3, 2]]);
    // Failed writes did not bump the revision.
    assert.equal(got.header.revision, 3);
  });
});

async function fill(kv: Awaited<ReturnType<typeof openMember>>["service"]) {
  // rev 2..6: a=1 b=2 c=3 d=4 then a=5
  for (const [k, v] of [["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["a", "5"]]) {
    await kv.put({ key: b(k), value: b(v) });
  }
}

Deno.test("range: prefix, from-key, all keys, limit with more and total count", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    await kv.put({ key: b("ab"), value: b("x") }); // rev 7
    const prefix = await kv.range({ key: b("a"), range_end: b("b") });
    assert.deepEqual(prefix.kvs.map((x) => s(x.key)), ["a", "ab"]);
    const from = await kv.range({ key: b("b"), range_end: ZERO });
    assert.deepEqual(from.kvs.map((x) => s(x.key)), ["b", "c", "d"]);
    const all = await kv.range({ key: ZERO, range_end: ZERO });
    assert.equal(all.count, 5);
    const limited = await kv.range({ key: ZERO, range_end: ZERO, limit: 2 });
    assert.deepEqual(limited.kvs.map((x) => s(x.key)), ["a", "ab"]);
    assert.equal(limited.more, true);
    assert.equal(limited.count, 5);
    const exact = await kv.range({ key: ZERO, range_end: ZERO, limit: 5 });
    assert.equal(exact.more, false);
    const backwards = await kv.range({ key: b("d"), range_end: b("a") });
    assert.deepEqual([backwards.kvs.length, backwards.count], [0, 0]);
    const miss = await kv.range({ key: b("zz") });
    assert.deepEqual([miss.kvs.length, miss.count, miss.more], [0, 0, false]);
  });
});

Deno.test("range: keys_only, count_only, sort and revision filters (count stays the total)", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    const all: RangeRequest = { key: ZERO, range_end: ZERO };
    const keysOnly = await kv.range({ ...all, keys_only: true });
    assert.deepEqual(keysOnly.kvs.map((x) => x.value.length), [0, 0, 0, 0]);
    const countOnly = await kv.range({ ...all, count_only: true });
    assert.deepEqual([countOnly.kvs.length, countOnly.count], [0, 4]);
    const byMod = await kv.range({ ...all, sort_target: "MOD", sort_order: "DESCEND" });
    assert.deepEqual(byMod.kvs.map((x) => s(x.key)), ["a", "d", "c", "b"]);
    const byValueDefaultOrder = await kv.range({ ...all, sort_target: "VALUE" });
    assert.deepEqual(byValueDefaultOrder.kvs.map((x) => s(x.value)), ["2", "3", "4", "5"]);
    const byKeyDesc = await kv.range({ ...all, sort_order: "DESCEND", limit: 2 });
    assert.deepEqual(byKeyDesc.kvs.map((x) => s(x.key)), ["d", "c"]);
    assert.equal(byKeyDesc.more, true);
    const filtered = await kv.range({ ...all, min_mod_revision: 4, max_mod_revision: 5 });
    assert.deepEqual(filtered.kvs.map((x) => s(x.key)), ["c", "d"]);
    assert.equal(filtered.count, 4);
    const created = await kv.range({ ...all, max_create_revision: 3 });
    assert.deepEqual(created.kvs.map((x) => s(x.key)), ["a", "b"]);
    const minCreated = await kv.range({ ...all, min_create_revision: 4 });
    assert.deepEqual(minCreated.kvs.map((x) => s(x.key)), ["c", "d"]);
  });
});

Deno.test("range: historical reads see each revision; future revisions fail", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    await kv.deleteRange({ key: b("b") }); // rev 7
    const at3 = await kv.range({ key: ZERO, range_end: ZERO, revision: 3 });
    assert.deepEqual(brief(at3.kvs), [["a", "1", 2, 2, 1], ["b", "2", 3, 3, 1]]);
    assert.equal(at3.header.revision, 7, "header carries the current revision");
    const at6 = await kv.range({ key: ZERO, range_end: ZERO, revision: 6 });
    assert.deepEqual(at6.kvs.map((x) => s(x.key)), ["a", "b", "c", "d"]);
    const single = await kv.range({ key: b("a"), revision: 5 });
    assert.deepEqual(brief(single.kvs), [["a", "1", 2, 2, 1]]);
    const gone = await kv.range({ key: b("b"), revision: 7 });
    assert.equal(gone.count, 0);
    const limited = await kv.range({ key: ZERO, range_end: ZERO, revision: 6, limit: 1 });
    assert.deepEqual([limited.kvs.length, limited.count, limited.more], [1, 4, true]);
    await rejects(
      kv.range({ key: b("a"), revision: 8 }),
      "etcdserver: mvcc: required revision is a future revision",
    );
    await rejects(kv.range({ key: new Uint8Array(0) }), "etcdserver: key is not provided");
  });
});

Deno.test("deleterange: prev_kvs, deleted count, no revision bump when nothing is deleted", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    const none = await kv.deleteRange({ key: b("zz") });
    assert.deepEqual([none.deleted, none.header.revision], [0, 6]);
    const del = await kv.deleteRange({ key: b("b"), range_end: ZERO, prev_kv: true });
    assert.equal(del.deleted, 3);
    assert.equal(del.header.revision, 7);
    assert.deepEqual(del.prev_kvs.map((x) => s(x.key)), ["b", "c", "d"]);
    await kv.put({ key: b("c"), value: b("again") }); // rev 8: a fresh life
    const r = await kv.range({ key: b("c") });
    assert.deepEqual(brief(r.kvs), [["c", "again", 8, 8, 1]]);
  });
});

const put = (k: string, v: string) => ({ request_put: { key: b(k), value: b(v) } });
const get = (k: string) => ({ request_range: { key: b(k) } });

Deno.test("txn: compares on every target and result pick the branch", async () => {
  await withStore(async (kv) => {
    await fill(kv); // a: create 2, mod 6, version 2, value 5
    const cases: [TxnRequest["compare"][number], boolean][] = [
      [{ key: b("a"), target: "VALUE", result: "EQUAL", value: b("5") }, true],
      [{ key: b("a"), target: "VALUE", result: "GREATER", value: b("4") }, true],
      [{ key: b("a"), target: "VERSION", result: "EQUAL", version: 2 }, true],
      [{ key: b("a"), target: "VERSION", result: "LESS", version: 2 }, false],
      [{ key: b("a"), target: "CREATE", result: "EQUAL", create_revision: 2 }, true],
      [{ key: b("a"), target: "MOD", result: "NOT_EQUAL", mod_revision: 6 }, false],
      [{ key: b("a"), target: "MOD", result: "GREATER", mod_revision: 5 }, true],
      [{ key: b("a"), target: "LEASE", result: "EQUAL", lease: 0n }, true],
      [{ key: b("nope"), target: "VERSION", result: "EQUAL", version: 0 }, true],
      [{ key: b("nope"), target: "VALUE", result: "NOT_EQUAL", value: b("x") }, false],
      [{ key: b("a"), range_end: b("e"), target: "VERSION", result: "GREATER", version: 0 }, true],
      [{ key: b("a"), range_end: b("e"), target: "MOD", result: "LESS", mod_revision: 6 }, false],
    ];
    for (const [compare, expected] of cases) {
      const r = await kv.txn({ compare: [compare], success: [get("a")], failure: [] });
      assert.equal(
        r.succeeded,
        expected,
        JSON.stringify(
          compare,
          (_k, v) => typeof v === "bigint" ? String(v) : v instanceof Uint8Array ? s(v) : v,
        ),
      );
      assert.equal(r.header.revision, 6, "a read-only txn does not bump the revision");
    }
  });
});

Deno.test("txn: one revision for all writes; reads see earlier writes; nested txn", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    const r = await kv.txn({
      compare: [{ key: b("a"), target: "VALUE", result: "EQUAL", value: b("5") }],
      success: [
        get("t"),
        put("t", "1"),
        get("t"),
        { request_delete_range: { key: b("c") } },
        {
          request_txn: {
            compare: [{ key: b("t"), target: "VERSION", result: "EQUAL", version: 1 }],
            success: [put("n", "nested")],
            failure: [],
          },
        },
      ],
      failure: [put("f", "never")],
    });
    assert.equal(r.succeeded, true);
    assert.equal(r.header.revision, 7);
    const [r0, r1, r2, r3, r4] = r.responses;
    assert.ok("response_range" in r0 && "response_put" in r1 && "response_range" in r2);
    assert.ok("response_delete_range" in r3 && "response_txn" in r4);
    assert.equal(r0.response_range.count, 0);
    assert.equal(
      r0.response_range.header.revision,
      6,
      "a read before any write sees the old revision",
    );
    assert.equal(r1.response_put.header.revision, 7);
    assert.deepEqual(brief(r2.response_range.kvs), [["t", "1", 7, 7, 1]]);
    assert.equal(r3.response_delete_range.deleted, 1);
    assert.equal(
      r4.response_txn.succeeded,
      false,
      "nested compares are evaluated on the state before the txn (t did not exist)",
    );
    const after = await kv.range({ key: ZERO, range_end: ZERO });
    assert.deepEqual(after.kvs.map((x) => [s(x.key), x.mod_revision]), [
      ["a", 6],
      ["b", 3],
      ["d", 5],
      ["t", 7],
    ]);
    assert.equal((await kv.range({ key: b("f") })).count, 0);
  });
});

Deno.test("txn: duplicate keys, too many ops and failing ops write nothing", async () => {
  await withStore(async (kv) => {
    await fill(kv);
    const dup = "etcdserver: duplicate key given in txn request";
    await rejects(
      kv.txn({ compare: [], success: [put("k", "1"), put("k", "2")], failure: [] }),
      dup,
    );
    await rejects(
      kv.txn({
        compare: [],
        success: [{ request_delete_range: { key: b("a"), range_end: b("c") } }, put("b", "1")],
        failure: [],
      }),
      dup,
    );
    await rejects(
      kv.txn({
        compare: [],
        success: [put("k", "1"), {
          request_txn: { compare: [], success: [put("k", "2")], failure: [] },
        }],
        failure: [],
      }),
      dup,
    );
    // The same key in both branches of one nested txn is fine: only one runs.
    await kv.txn({
      compare: [],
      success: [{
        request_txn: { compare: [], success: [put("k", "2")], failure: [put("k", "3")] },
      }],
      failure: [],
    });
    const ops = Array.from({ length: 129 }, (_, i) => get(`k${i}`));
    await rejects(
      kv.txn({ compare: [], success: ops, failure: [] }),
      "etcdserver: too many operations in txn request",
    );
    const before = (await kv.range({ key: b("a") })).header.revision;
    await rejects(
      kv.txn({
        compare: [],
        success: [put("z", "1"), { request_put: { key: b("y"), value: b("1"), lease: 99n } }],
        failure: [],
      }),
      "etcdserver: requested lease not found",
    );
    await rejects(
      kv.txn({
        compare: [],
        success: [put("z", "1"), { request_range: { key: b("a"), revision: 99 } }],
        failure: [],
      }),
      "etcdserver: mvcc: required revision is a future revision",
    );
    const after = await kv.range({ key: b("z") });
    assert.deepEqual([after.count, after.header.revision], [0, before]);
  });
});

Deno.test("compaction: the revision stays readable, below it fails, history is removed", async () => {
  await withStore(async (kv) => {
    await fill(kv); // a@2, b@3, c@4, d@5, a@6
    await kv.deleteRange({ key: b("b") }); // 7
    await rejects(
      kv.compact({ revision: 9 }),
      "etcdserver: mvcc: required revision is a future revision",
    );
    const c = await kv.compact({ revision: 5, physical: true });
    assert.equal(c.header.revision, 7);
    await rejects(
      kv.compact({ revision: 5 }),
      "etcdserver: mvcc: required revision has been compacted",
    );
    await rejects(
      kv.range({ key: b("a"), revision: 4 }),
      "etcdserver: mvcc: required revision has been compacted",
    );
    const at5 = await kv.range({ key: ZERO, range_end: ZERO, revision: 5 });
    assert.deepEqual(brief(at5.kvs), [
      ["a", "1", 2, 2, 1],
      ["b", "2", 3, 3, 1],
      ["c", "3", 4, 4, 1],
      ["d", "4", 5, 5, 1],
    ]);
    await kv.compact({ revision: 7, physical: true });
    const at7 = await kv.range({ key: ZERO, range_end: ZERO, revision: 7 });
    assert.deepEqual(at7.kvs.map((x) => s(x.key)), ["a", "c", "d"]);
    await kv.put({ key: b("a"), value: b("9") });
    assert.deepEqual(brief((await kv.range({ key: b("a") })).kvs), [["a", "9", 2, 8, 3]]);
  });
});

Deno.test("compaction: revision 0 is accepted once on a store never compacted, as in etcd", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-compact0-" });
  await withStore(
    async (kv) => {
      const c = await kv.compact({ revision: 0 });
      assert.equal(c.header.revision, 1);
      await rejects(
        kv.compact({ revision: 0 }),
        "etcdserver: mvcc: required revision has been compacted",
      );
      await rejects(
        kv.compact({ revision: -1 }),
        "etcdserver: mvcc: required revision has been compacted",
      );
    },
    dir,
    true,
  );
  // The compaction at 0 is recorded: after a restart 0 is still compacted.
  await withStore(async (kv) => {
    await rejects(
      kv.compact({ revision: 0 }),
      "etcdserver: mvcc: required revision has been compacted",
    );
    await kv.put({ key: b("a"), value: b("1") });
    await kv.compact({ revision: 2, physical: true });
  }, dir);
  // A negative revision is below etcd's initial compacted revision (-1).
  await withStore(async (kv) => {
    await rejects(
      kv.compact({ revision: -1 }),
      "etcdserver: mvcc: required revision has been compacted",
    );
  });
});

Deno.test("store: data and revisions survive closing and reopening", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-reopen-" });
  await withStore(fill, dir, true);
  await withStore(async (kv) => {
    const r = await kv.range({ key: ZERO, range_end: ZERO });
    assert.equal(r.header.revision, 6);
    assert.deepEqual(brief(r.kvs)[0], ["a", "5", 2, 6, 2]);
    const p = await kv.put({ key: b("e"), value: b("5") });
    assert.equal(p.header.revision, 7);
  }, dir);
});

Deno.test("long keys: the storable limit, and ranges whose bounds are longer than any stored key", async () => {
  await withStore(async (kv) => {
    const k1 = b("m".repeat(1968)); // the longest storable key without zero bytes
    const k2 = b("m".repeat(1967) + "n");
    await kv.put({ key: k1, value: b("1") });
    await kv.put({ key: k2, value: b("2") });
    await rejects(
      kv.put({ key: b("m".repeat(1969)), value: b("x") }),
      "etcdserver: key is too large",
    );
    const long = b("m".repeat(3000));
    assert.equal((await kv.range({ key: long })).count, 0);
    for (const revision of [0, 3]) {
      const from = await kv.range({ key: long, range_end: ZERO, revision });
      assert.deepEqual(
        from.kvs.map((x) => s(x.value)),
        ["2"],
        `from a long key at rev ${revision}`,
      );
      assert.equal(from.count, 1);
      const upTo = await kv.range({ key: b("a"), range_end: long, revision });
      assert.deepEqual(
        upTo.kvs.map((x) => s(x.value)),
        ["1"],
        `up to a long key at rev ${revision}`,
      );
      const end = b("m".repeat(1967) + "o" + "m".repeat(1000));
      const both = await kv.range({ key: long, range_end: end, revision });
      assert.deepEqual(both.kvs.map((x) => s(x.value)), ["2"]);
    }
  });
});
