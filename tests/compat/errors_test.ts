/**
 * Differential test of bad input and HTTP-level behaviour: malformed JSON,
 * wrong types, bad base64, unknown enum values, missing keys, oversized
 * bodies, too many txn ops, ignore_value/ignore_lease misuse, unknown
 * leases, wrong methods and unknown paths. etcd 3.4 and cairn must give the
 * same status and body, and both must keep serving afterwards.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, withPair } from "./harness.ts";

Deno.test({
  name: compatName("compat: bad input and HTTP errors match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      await pair.post("/v3/kv/put", { key: b64("k"), value: b64("v") });

      await t.step("malformed JSON bodies", async () => {
        const bodies = [
          "",
          "   \n",
          "{",
          "[]",
          "null",
          "5",
          '"x"',
          "true",
          "{]",
          '{"key":"aw==",}',
          '{"key" "aw=="}',
          '{"key":"aw=="',
          '{"key":"aw==" "limit":1}',
          '{"key":"aw=="} trailing',
          '{"key":"aw=="}{"key":"eA=="}',
          '{"key":tru}',
          '{"key":nul}',
          '{"key":"aw==","limit":01}',
          '{"key":"aw==","limit":-}',
          '{"key":"aw==","limit":1.}',
          '{"key":"aw==","limit":1e}',
          '{"key":"\\x"}',
          '{"key":"\\u12G4"}',
          '{"key":"a\tb"}',
          "{'key':1}",
          '{"key":"aw==","limit":[1,2}',
          "\u00e9",
        ];
        for (const body of bodies) {
          await pair.post("/v3/kv/range", body);
          await pair.post("/v3/kv/put", body);
        }
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("wrong types, bad base64, unknown enums", async () => {
        const ranges: unknown[] = [
          { key: 1 },
          { key: true },
          { key: {} },
          { key: [107] },
          { key: [300] },
          { key: "k" },
          { key: "aw" },
          { key: "aw=" },
          { key: "aw===" },
          { key: "a-_w" },
          { key: "aw==\n" },
          { key: "a\nw==" },
          { key: "aw==", range_end: "!" },
          { key: "aw==", limit: "x" },
          { key: "aw==", limit: "" },
          { key: "aw==", limit: " 7 " },
          { key: "aw==", limit: "1 2" },
          { key: "aw==", limit: "null" },
          { key: "aw==", limit: "true" },
          { key: "aw==", limit: true },
          { key: "aw==", limit: 1.5 },
          { key: "aw==", limit: 1e2 },
          { key: "aw==", limit: "1e2" },
          { key: "aw==", limit: "99999999999999999999" },
          { key: "aw==", limit: {} },
          { key: "aw==", revision: [] },
          { key: "aw==", keys_only: "true" },
          { key: "aw==", keys_only: 1 },
          { key: "aw==", sort_order: "FOO" },
          { key: "aw==", sort_order: "descend" },
          { key: "aw==", sort_order: "1" },
          { key: "aw==", sort_order: 1.5 },
          { key: "aw==", sort_order: true },
          { key: "aw==", sort_order: 5000000000 },
          { key: "aw==", sort_target: "<bad&>" },
          { key: "aw==", sortTarget: "MODIFY" },
          { key: "aw==", sort_order: null, limit: null, range_end: null },
          { key: "aw==", keysOnly: true, keys_only: "bad" },
          { key: "aw==", limit: "x", sort_order: "FOO" },
          { sort_order: "FOO", key: "!" },
        ];
        for (const r of ranges) await pair.post("/v3/kv/range", r);
        const puts: unknown[] = [
          { key: "aw==", lease: "abc" },
          { key: "aw==", lease: "18446744073709551615" },
          { key: "aw==", lease: -1 },
          { key: "aw==", value: 5 },
          { key: "aw==", prev_kv: "yes" },
        ];
        for (const p of puts) await pair.post("/v3/kv/put", p);
        await pair.post("/v3/kv/txn", { compare: [{ key: "aw==", target: "NOPE" }] });
        await pair.post("/v3/kv/txn", { success: [{ request_put: { key: "%%" } }] });
        await pair.post("/v3/kv/txn", { success: [{ request_range: "x" }] });
        await pair.post("/v3/kv/compaction", { revision: "abc" });
        await pair.post("/v3/kv/deleterange", { key: "aw==", prev_kv: 0 });
        await pair.post("/v3/maintenance/status", "{");
        await pair.post("/v3/maintenance/status", "[]");
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("escapes, raw enum text, BOM, nesting depth, byte arrays", async () => {
        const bodies = [
          '\ufeff{"key":"aw=="}',
          '{"key":"YQ==","key":"aw=="}',
          '{"key":"\\u0061w=="}',
          '{"key":"aw==","sort_order":"\\u0041SCEND"}',
          '{"key":"aw==","sort_order":"A\\"B"}',
          '{"key":"aw==","sort_order":"\u00e9"}',
          '{"key":"aw==","sort_order":"\\u00e9"}',
          '{"key":"aw==","sort_order":"\\t"}',
          // %q of non-printable runes: C1 control, line separator, soft hyphen,
          // private use, a tag character (\U); an emoji stays.
          '{"key":"aw==","sort_order":"\u0085X\u2028\u00ad\ue000\u{1F600}\u{E0001}"}',
          '{"key":"aw==","limit":-0}',
          '{"key":"aw==","limit":"-0"}',
          '{"key":"aw==","limit":"\\u0031"}',
          '{"key":"aw==","limit":"[1]"}',
          '{"key":"aw==","limit":"{}"}',
          '{"key":"aw==","limit":"\\"5\\""}',
          '{"key":"aw==","limit":"1 "}',
          '{"key":"aw==","limit":" "}',
          '{"key":"aw==","limit":9223372036854775807}',
          '{"key":"aw==","limit":-9223372036854775808}',
          '{"key":"aw==","limit":1E2}',
          '{"key":"aw==","limit":1.0}',
          '{"key":"aw==","sort_order":2147483648}',
          '{"key":"aw==","sort_order":-1}',
          "[".repeat(10001) + "]".repeat(10001),
          "[".repeat(10000) + "]".repeat(10000),
          '{"a":' + "[".repeat(10000) + "]".repeat(10000) + "}",
          '{"key":["aw=="]}',
          '{"key":[107]}',
          '{"key":[256]}',
          '{"key":[-1]}',
          '{"key":[1.5]}',
          '{"key":[null]}',
          '{"key":"aw==","keys_only":null}',
          '{"key":"aw==","keys_only":"null"}',
          '{"KEY":"aw=="}',
          '{"key":"aw==","RangeEnd":"aw=="}',
          '{"key":"a w=="}',
          '{"key":"aw==\\r\\n"}',
          '{"key":"aw=\\n="}',
        ];
        for (const body of bodies) await pair.post("/v3/kv/range", body);
        await pair.post("/v3/kv/txn", '{"success":[{"request_put":null}]}');
        await pair.post("/v3/kv/txn", '{"compare":[{"key":"aw==","version":null}]}');
        await pair.post("/v3/kv/txn", '{"compare":[{"key":"aw==","target":"VALUE","value":null}]}');
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("missing keys, ignore_value/ignore_lease, unknown leases", async () => {
        for (const path of ["/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange"]) {
          await pair.post(path, {});
          await pair.post(path, { key: "" });
          await pair.post(path, { range_end: b64("z") });
        }
        await pair.post("/v3/kv/put", { key: b64("k"), value: b64("v"), ignore_value: true });
        await pair.post("/v3/kv/put", { key: b64("k"), lease: 5, ignore_lease: true });
        await pair.post("/v3/kv/put", { key: b64("k"), lease: "0", ignore_lease: true });
        await pair.post("/v3/kv/put", { key: b64("nope"), ignore_value: true });
        await pair.post("/v3/kv/put", { key: b64("nope"), ignore_lease: true });
        await pair.post("/v3/kv/put", { key: b64("k"), ignore_value: true, prev_kv: true });
        await pair.post("/v3/kv/put", { key: b64("k"), ignoreLease: true, value: b64("w") });
        await pair.post("/v3/kv/put", { key: b64("k"), lease: "12345" });
        await pair.post("/v3/kv/put", { key: b64("k"), lease: -7 });
        await pair.post("/v3/kv/range", { key: b64("k") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("future and compacted revisions", async () => {
        // Never compacted yet: revision 0 is accepted once (etcd's compacted
        // revision starts at -1), then it is compacted like any other.
        await pair.post("/v3/kv/compaction", { revision: "0" });
        await pair.post("/v3/kv/compaction", { revision: "0" });
        await pair.post("/v3/kv/compaction", {});
        await pair.post("/v3/kv/range", { key: b64("k"), revision: 99 });
        await pair.post("/v3/kv/compaction", { revision: 99 });
        await pair.post("/v3/kv/compaction", { revision: 2 });
        await pair.post("/v3/kv/range", { key: b64("k"), revision: 1 });
        await pair.post("/v3/kv/compaction", { revision: 1 });
        await pair.post("/v3/kv/compaction", {});
        await pair.post("/v3/kv/compaction", { revision: -5 });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("oversized requests", async () => {
        const value = (n: number) => btoa("x".repeat(n));
        // 1.6 MiB: over --max-request-bytes (1.5 MiB) → request is too large.
        await pair.post("/v3/kv/put", { key: b64("big"), value: value(1_677_722) });
        // 2.6 MiB: over max + 512 KiB → 429 from the gRPC layer, with the size.
        await pair.post("/v3/kv/put", { key: b64("big"), value: value(2_726_298) });
        await pair.post("/v3/kv/range", { key: value(2_200_000) });
        await pair.post("/v3/kv/txn", {
          success: [{ request_put: { key: b64("big"), value: value(1_600_000) } }],
        });
        await pair.post("/v3/kv/deleterange", { key: value(1_600_000) });
        // A read-only txn is not proposed (no size limit); a nested txn is.
        const bigRange = { request_range: { key: b64("a"), range_end: value(1_600_000) } };
        await pair.post("/v3/kv/txn", { success: [bigRange] });
        await pair.post("/v3/kv/txn", { success: [{ request_txn: { success: [bigRange] } }] });
        await pair.post("/v3/kv/put", { value: value(1_600_000) });
        await pair.post("/v3/kv/put", { key: b64("ok"), value: value(1_000_000) });
        await pair.post("/v3/kv/range", { key: b64("ok"), keys_only: true });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("methods and paths", async () => {
        for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
          await pair.send(method, "/v3/kv/range", method === "GET" ? undefined : "{}");
          await pair.send(method, "/v3beta/kv/txn", method === "GET" ? undefined : "{}");
        }
        await pair.send("GET", "/v3/maintenance/status");
        for (const path of ["/v3/kv/nope", "/v3/nope", "/v3beta/kv/nope", "/v3/kv/range/"]) {
          await pair.send("POST", path, "{}");
          await pair.send("GET", path);
        }
        for (const path of ["/nope", "/v3alpha/kv/range", "/v2/keys"]) {
          await pair.send("POST", path, "{}");
        }
        await pair.send("POST", "/health", "{}");
        await pair.send("POST", "/version", "{}");
        await pair.send("GET", "/health");
        await pair.send("OPTIONS", "/v3/kv/range");
        for (const path of ["/health", "/version", "/v3/kv/range", "/v3/nope", "/nope"]) {
          await pair.send("HEAD", path);
        }
        await pair.send("POST", "/v3/kv/range", "key=aw==");
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("maintenance/status has etcd's fields", async () => {
        const fields = async (url: string) => {
          const res = await fetch(`${url}/v3/maintenance/status`, { method: "POST", body: "{}" });
          return Object.keys(await res.json());
        };
        const [e, c] = await Promise.all([fields(pair.etcd.url), fields(pair.cairn.url)]);
        assertEquals(c, e);
      });

      await t.step("both still serve after the bad input", async () => {
        await pair.post("/v3/kv/put", { key: b64("after"), value: b64("ok"), prev_kv: true });
        await pair.post("/v3/kv/range", { key: b64([0]), range_end: b64([0]), keys_only: true });
        assertEquals(pair.takeDiffs(), []);
      });

      assert(pair.compared >= 200, `compared only ${pair.compared} exchanges`);
    });
  },
});
