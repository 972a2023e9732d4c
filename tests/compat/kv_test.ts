/**
 * Differential test of the KV endpoints: puts, ranges with every option,
 * delete ranges and compaction, sent to real etcd 3.4 and to cairn from the
 * same fresh start; every response must match byte for byte except
 * cluster_id, member_id and raft_term.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, withPair } from "./harness.ts";

Deno.test({
  name: compatName("compat: put, range, deleterange and compaction match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      await t.step("puts (plain, empty value, binary keys, overwrite, prev_kv)", async () => {
        for (const k of ["a", "b", "c", "foo", "foo/1", "foo/2", "foo/3", "fop", "z"]) {
          await pair.post("/v3/kv/put", { key: b64(k), value: b64(`v-${k}`) });
        }
        await pair.post("/v3/kv/put", { key: b64("empty") });
        await pair.post("/v3/kv/put", { key: b64([0]), value: b64("nul") });
        await pair.post("/v3/kv/put", { key: b64([0xff, 0xfe]), value: b64([0, 1, 2]) });
        await pair.post("/v3/kv/put", { key: b64("foo/2"), value: b64("v2b"), prev_kv: true });
        await pair.post("/v3/kv/put", { key: b64("foo/2"), value: b64("v2c"), prevKv: true });
        await pair.post("/v3/kv/put", { key: b64("new"), value: b64("n"), prev_kv: true });
        await pair.post("/v3/kv/put", { key: b64("a"), value: b64("a2"), unknown_field: 5 });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("ranges: single, prefix, from-key, all, miss", async () => {
        await pair.post("/v3/kv/range", { key: b64("a") });
        await pair.post("/v3/kv/range", { key: b64("empty") });
        await pair.post("/v3/kv/range", { key: b64("missing") });
        await pair.post("/v3/kv/range", { key: b64("foo/"), range_end: b64("foo0") });
        await pair.post("/v3/kv/range", { key: b64("foo"), range_end: b64([0]) });
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]) });
        await pair.post("/v3/kv/range", { key: b64("b"), rangeEnd: b64("fop") });
        await pair.post("/v3/kv/range", { key: b64("z"), range_end: b64("a") });
        await pair.post("/v3/kv/range", { key: b64([0xff]), range_end: b64([0]) });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("ranges: limit, count, keys_only, count_only, serializable", async () => {
        const all = { key: b64([0]), range_end: b64([0]) };
        for (const limit of [1, 2, 3, 100, "2", -1]) {
          await pair.post("/v3/kv/range", { ...all, limit });
        }
        await pair.post("/v3/kv/range", { ...all, keys_only: true });
        await pair.post("/v3/kv/range", { ...all, count_only: true });
        await pair.post("/v3/kv/range", { ...all, countOnly: true, limit: 1 });
        await pair.post("/v3/kv/range", { ...all, keysOnly: true, limit: 2 });
        await pair.post("/v3/kv/range", { ...all, serializable: true, limit: 3 });
        await pair.post("/v3/kv/range", { key: b64("missing"), count_only: true });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("ranges: every sort order and target", async () => {
        const prefix = { key: b64("foo"), range_end: b64("fop") };
        for (const sort_order of [undefined, "NONE", "ASCEND", "DESCEND", 2]) {
          for (const sort_target of [undefined, "KEY", "VERSION", "CREATE", "MOD", "VALUE", 4]) {
            await pair.post("/v3/kv/range", { ...prefix, sort_order, sort_target });
          }
        }
        await pair.post("/v3/kv/range", {
          key: b64([0]),
          range_end: b64([0]),
          sortOrder: "DESCEND",
          sortTarget: "MOD",
          limit: 3,
        });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("ranges: revision filters and historical reads", async () => {
        const all = { key: b64([0]), range_end: b64([0]) };
        for (
          const [f, v] of [
            ["min_mod_revision", 5],
            ["max_mod_revision", 5],
            ["min_create_revision", 4],
            ["max_create_revision", 4],
            ["minModRevision", "12"],
          ] as const
        ) {
          await pair.post("/v3/kv/range", { ...all, [f]: v });
          await pair.post("/v3/kv/range", { ...all, [f]: v, limit: 2 });
        }
        await pair.post("/v3/kv/range", {
          ...all,
          min_mod_revision: 3,
          max_mod_revision: 9,
          min_create_revision: 2,
          max_create_revision: 8,
        });
        for (const revision of [1, 2, 5, 13, 15, 16, 0, -3]) {
          await pair.post("/v3/kv/range", { ...all, revision });
          await pair.post("/v3/kv/range", { key: b64("foo/2"), revision });
        }
        await pair.post("/v3/kv/range", { key: b64("a"), revision: 1000 });
        await pair.post("/v3/kv/range", { ...all, revision: "17" });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("deleterange: single, prefix, from-key, miss, prev_kv", async () => {
        await pair.post("/v3/kv/deleterange", { key: b64("missing") });
        await pair.post("/v3/kv/deleterange", { key: b64("missing"), prev_kv: true });
        await pair.post("/v3/kv/deleterange", { key: b64("c") });
        await pair.post("/v3/kv/deleterange", { key: b64("b"), prev_kv: true });
        await pair.post("/v3/kv/deleterange", {
          key: b64("foo/"),
          range_end: b64("foo0"),
          prevKv: true,
        });
        await pair.post("/v3/kv/deleterange", { key: b64("new"), range_end: b64([0]) });
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]) });
        // Re-create a deleted key: create_revision and version restart.
        await pair.post("/v3/kv/put", { key: b64("b"), value: b64("again"), prev_kv: true });
        await pair.post("/v3/kv/range", { key: b64("b") });
        await pair.post("/v3/kv/range", { key: b64("b"), revision: 14 });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("compaction: reads below, at and above the compacted revision", async () => {
        await pair.post("/v3/kv/compaction", { revision: 8 });
        const all = { key: b64([0]), range_end: b64([0]) };
        for (const revision of [1, 7, 8, 9, 0]) {
          await pair.post("/v3/kv/range", { ...all, revision });
        }
        await pair.post("/v3/kv/compaction", { revision: 8 });
        await pair.post("/v3/kv/compaction", { revision: 5 });
        await pair.post("/v3/kv/compaction", { revision: 10000 });
        await pair.post("/v3/kv/compaction", { revision: "10", physical: true });
        await pair.post("/v3/kv/range", { ...all, revision: 9 });
        await pair.post("/v3/kv/range", { ...all, revision: 10, count_only: true });
        await pair.post("/v3/kv/put", { key: b64("after"), value: b64("compaction") });
        await pair.post("/v3/kv/range", { ...all });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("/v3beta aliases", async () => {
        await pair.post("/v3beta/kv/put", { key: b64("beta"), value: b64("1") });
        await pair.post("/v3beta/kv/range", { key: b64("beta") });
        await pair.post("/v3beta/kv/deleterange", { key: b64("beta") });
        await pair.post("/v3beta/kv/txn", {});
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("large ranges (streamed by cairn) and large deletes", async () => {
        for (let batch = 0; batch < 12; batch++) {
          const success = Array.from({ length: 100 }, (_, i) => ({
            request_put: {
              key: b64(`bulk/${String(batch * 100 + i).padStart(5, "0")}`),
              value: b64("v".repeat((batch * 100 + i) % 97)),
            },
          }));
          await pair.post("/v3/kv/txn", { success });
        }
        const bulk = { key: b64("bulk/"), range_end: b64("bulk0") };
        await pair.post("/v3/kv/range", bulk);
        await pair.post("/v3/kv/range", { ...bulk, limit: 1000, sort_order: "DESCEND" });
        await pair.post("/v3/kv/range", { ...bulk, keys_only: true, sort_target: "VALUE" });
        // Many ties (equal values, one create revision per 100 keys, version 1
        // everywhere): etcd's unstable Go sort decides their order.
        for (const sort_target of ["KEY", "VERSION", "CREATE", "MOD", "VALUE"]) {
          for (const sort_order of ["ASCEND", "DESCEND"]) {
            await pair.post("/v3/kv/range", { ...bulk, sort_target, sort_order, keys_only: true });
          }
        }
        await pair.post("/v3/kv/range", { ...bulk, sort_target: "VALUE", limit: 300 });
        await pair.post("/v3/kv/range", {
          key: b64("bulk/00100"),
          range_end: b64("bulk/00160"),
          sort_target: "CREATE",
          sort_order: "DESCEND",
        });
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]) });
        await pair.post("/v3/kv/txn", { success: [{ request_range: bulk }] });
        await pair.post("/v3/kv/deleterange", { ...bulk, prev_kv: true });
        assertEquals(pair.takeDiffs(), []);
      });

      assert(pair.compared >= 120, `compared only ${pair.compared} exchanges`);
    });
  },
});
