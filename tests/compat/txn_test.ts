/**
 * Differential test of /v3/kv/txn: compares on every target with every
 * result (with and without range_end, on present and missing keys), success
 * and failure branches with every op kind including nested txns, and the
 * txn-specific errors, against real etcd 3.4 and cairn from the same start.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, withPair } from "./harness.ts";

const put = (k: string, v: string) => ({ request_put: { key: b64(k), value: b64(v) } });
const get = (k: string, end?: string) => ({
  request_range: { key: b64(k), ...(end ? { range_end: b64(end) } : {}) },
});
const del = (k: string, end?: string) => ({
  request_delete_range: { key: b64(k), ...(end ? { range_end: b64(end) } : {}), prev_kv: true },
});

Deno.test({
  name: compatName("compat: txn matches etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      for (const [k, v] of [["t/a", "1"], ["t/b", "2"], ["t/c", "3"], ["t/b", "2b"]]) {
        await pair.post("/v3/kv/put", { key: b64(k), value: b64(v) });
      }
      await pair.post("/v3/kv/put", { key: b64("t/a"), value: b64("1"), ignore_value: false });

      await t.step("every compare target × result, single key and range", async () => {
        const operands: Record<string, unknown[]> = {
          VERSION: [0, 1, 2, 3],
          CREATE: [0, 2, 3, 4],
          MOD: [0, 3, 5, 6],
          VALUE: [b64(""), b64("1"), b64("2b"), b64("3")],
          LEASE: [0, 1],
        };
        const field: Record<string, string> = {
          VERSION: "version",
          CREATE: "create_revision",
          MOD: "mod_revision",
          VALUE: "value",
          LEASE: "lease",
        };
        for (const target of Object.keys(operands)) {
          for (const result of ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]) {
            for (const operand of operands[target]) {
              for (
                const [key, range_end] of [
                  ["t/b", undefined],
                  ["t/a", "t/d"],
                  ["nope", undefined],
                  [
                    "t/",
                    "t0",
                  ],
                ]
              ) {
                await pair.post("/v3/kv/txn", {
                  compare: [{
                    target,
                    result,
                    key: b64(key!),
                    ...(range_end ? { range_end: b64(range_end) } : {}),
                    [field[target]]: operand,
                  }],
                  success: [get("t/a")],
                  failure: [get("t/b")],
                });
              }
            }
          }
        }
        // Default result/target (EQUAL, VERSION) and lowerCamel names.
        await pair.post("/v3/kv/txn", { compare: [{ key: b64("t/a") }], success: [get("t/a")] });
        await pair.post("/v3/kv/txn", {
          compare: [{ key: b64("t/a"), target: "MOD", modRevision: "5", rangeEnd: b64("t/z") }],
          success: [{ requestRange: { key: b64("t/a"), countOnly: true } }],
        });
        // Several compares: all must hold.
        await pair.post("/v3/kv/txn", {
          compare: [
            { key: b64("t/a"), target: "VALUE", value: b64("1") },
            { key: b64("t/b"), target: "VERSION", result: "GREATER", version: 5 },
          ],
          success: [get("t/a")],
          failure: [get("t/c")],
        });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("writes in both branches, nested txns, one revision per txn", async () => {
        await pair.post("/v3/kv/txn", {
          compare: [{ key: b64("t/a"), target: "VALUE", value: b64("1") }],
          success: [put("t/x", "x1"), get("t/x"), del("t/c"), get("t/", "t0")],
          failure: [put("t/y", "y1")],
        });
        await pair.post("/v3/kv/txn", {
          compare: [{ key: b64("t/a"), target: "VALUE", value: b64("nope") }],
          success: [put("t/x", "x2")],
          failure: [put("t/y", "y1"), { request_put: { key: b64("t/x"), prev_kv: true } }],
        });
        await pair.post("/v3/kv/txn", {
          compare: [],
          success: [
            {
              request_txn: {
                compare: [{
                  key: b64("t/y"),
                  target: "CREATE",
                  result: "GREATER",
                  create_revision: 0,
                }],
                success: [put("t/n1", "a"), { request_txn: { success: [get("t/n1")] } }],
                failure: [put("t/n1", "b")],
              },
            },
            get("t/", "t0"),
            del("t/n0"),
          ],
        });
        await pair.post("/v3/kv/txn", { success: [del("t/x", "t/z")] });
        await pair.post("/v3/kv/txn", { failure: [put("t/f", "never")] });
        await pair.post("/v3/kv/txn", {});
        await pair.post("/v3/kv/txn", { success: [get("t/", "t0")], failure: [] });
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]) });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("txn errors: duplicate keys, too many ops, missing keys", async () => {
        const cases: unknown[] = [
          { success: [put("d/a", "1"), put("d/a", "2")] },
          { success: [put("d/a", "1"), del("d/a")] },
          { success: [del("d/", "d0"), put("d/q", "1")] },
          { success: [del("d/a"), del("d/a")] },
          { success: [del("d/a", "\0"), put("d/b", "1")] },
          { success: [put("d/a", "1")], failure: [put("d/a", "2")] },
          { success: [{ request_txn: { success: [put("d/a", "1")] } }, put("d/a", "2")] },
          {
            success: [{
              request_txn: { success: [put("d/a", "1")], failure: [put("d/a", "2")] },
            }],
          },
          { success: [{ request_txn: { success: [put("d/a", "1")] } }, del("d/", "d0")] },
          { success: Array.from({ length: 129 }, (_, i) => get(`d/${i}`)) },
          { success: Array.from({ length: 128 }, (_, i) => put(`d/${i}`, "v")) },
          { compare: Array.from({ length: 129 }, () => ({ key: b64("d/a") })) },
          { failure: Array.from({ length: 129 }, (_, i) => put(`d/${i}`, "v")) },
          {
            success: Array.from({ length: 100 }, (_, i) => get(`d/${i}`)).concat([{
              request_txn: { success: Array.from({ length: 29 }, (_, i) => get(`d/${i}`)) },
            }] as never[]),
          },
          {
            success: [{
              request_txn: { success: Array.from({ length: 128 }, (_, i) => get(`d/${i}`)) },
            }],
          },
          { compare: [{ key: "" }], success: [] },
          { success: [{ request_put: { value: b64("v") } }] },
          { success: [{ request_range: {} }] },
          { failure: [{ request_delete_range: { key: "" } }] },
          { success: [{ request_put: { key: b64("k"), value: b64("v"), ignore_value: true } }] },
          { success: [{ request_put: { key: b64("k"), lease: "5", ignore_lease: true } }] },
          { success: [{ request_put: { key: b64("k"), ignore_value: true } }] },
          { success: [{ request_put: { key: b64("k"), lease: 7 } }] },
          { success: [put("d/ok", "1"), { request_put: { key: b64("k"), lease: 7 } }] },
          { compare: [{ key: b64("d/a"), target: "BOGUS" }] },
          { compare: [{ key: b64("d/a"), result: "MAYBE" }] },
          { success: [{ request_range: { key: b64("d/a"), revision: 100000 } }] },
          { success: "x" },
          { compare: {} },
          { success: [[]] },
          { success: [{}] },
          { failure: [put("e/a", "1"), {}] },
          { success: [{ request_txn: { success: [{}] } }] },
        ];
        for (const c of cases) await pair.post("/v3/kv/txn", c);
        // Nested txns: each level takes one op from the budget of the next.
        for (const depth of [127, 128, 129, 1200]) {
          let op: unknown = { request_put: { key: b64("deep") } };
          for (let i = 0; i < depth; i++) op = { request_txn: { success: [op] } };
          await pair.post("/v3/kv/txn", { success: [op] });
        }
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]), count_only: true });
        assertEquals(pair.takeDiffs(), []);
      });

      assert(pair.compared >= 330, `compared only ${pair.compared} exchanges`);
    });
  },
});
