/**
 * Differential test of /v3/watch: the same watch streams opened on real
 * etcd 3.4 and on cairn, the same writes made on both, and every streamed
 * line compared byte for byte (cluster_id, member_id and raft_term masked).
 * Each step waits for the frames it expects on both servers before the next
 * write, so the frames cannot legitimately differ in timing.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, type Pair, StreamLines, withPair } from "./harness.ts";

/** A watch stream opened on both servers. */
class Both {
  readonly etcd: StreamLines;
  readonly cairn: StreamLines;
  constructor(pair: Pair, body: unknown[] | string) {
    const text = typeof body === "string" ? body : body.map((m) => JSON.stringify(m)).join("");
    this.etcd = new StreamLines(pair.etcd.url + "/v3/watch", text);
    this.cairn = new StreamLines(pair.cairn.url + "/v3/watch", text);
  }
  /**
   * The next `n` frames of both, compared; returns etcd's. Frames of one
   * revision for different watchers come in no set order (etcd walks a Go
   * map), so `unordered` compares them as sets.
   */
  async expect(n: number, unordered = false): Promise<string[]> {
    let [e, c] = await Promise.all([this.etcd.take(n), this.cairn.take(n)]);
    if (unordered) [e, c] = [e.toSorted(), c.toSorted()];
    assertEquals(c, e);
    assertEquals(e.length, n, `etcd sent ${e.length} of ${n} frames`);
    return e;
  }
  /** Nothing more arrived on either. */
  async quiet(): Promise<void> {
    const [e, c] = await Promise.all([this.etcd.extra(), this.cairn.extra()]);
    assertEquals(c, e);
    assertEquals(e, []);
  }
  close(): void {
    this.etcd.close();
    this.cairn.close();
  }
}

Deno.test({
  name: compatName("compat: watch streams match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      const put = async (k: string, v: string) => {
        await pair.post("/v3/kv/put", { key: b64(k), value: b64(v) });
      };
      await put("a", "1");

      await t.step("create, events with prev_kv, cancel, unknown cancel", async () => {
        const w = new Both(pair, [
          { create_request: { key: b64("a"), prev_kv: true } },
          { create_request: { key: b64("p/"), range_end: b64("p0") } },
        ]);
        await w.expect(2);
        await put("a", "2");
        await w.expect(1);
        await put("p/1", "x");
        await w.expect(1);
        await pair.post("/v3/kv/deleterange", { key: b64("a"), prev_kv: true });
        await w.expect(1);
        await w.quiet();
        w.close();
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("one txn is one frame; filters; from-key and all keys", async () => {
        const w = new Both(pair, [
          { create_request: { key: b64("t/"), range_end: b64("t0") } },
          { create_request: { key: b64("t/"), range_end: b64("t0"), filters: ["NOPUT"] } },
          { create_request: { key: b64("t/"), range_end: "AA==", filters: [1] } },
          { create_request: { key: "", range_end: "AA==", watch_id: "9" } },
        ]);
        await w.expect(4);
        await pair.post("/v3/kv/txn", {
          success: [
            { request_put: { key: b64("t/1"), value: b64("v1") } },
            { request_put: { key: b64("t/2"), value: b64("v2") } },
          ],
        });
        await w.expect(3, true); // NOPUT sees nothing
        await pair.post("/v3/kv/deleterange", { key: b64("t/"), range_end: b64("t0") });
        await w.expect(3, true); // NODELETE sees nothing
        await w.quiet();
        w.close();
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("history replay from a start revision, with prev_kv", async () => {
        const w = new Both(pair, [
          { create_request: { key: b64("t/"), range_end: b64("t0"), start_revision: "2" } },
          {
            create_request: {
              key: b64("t/"),
              range_end: b64("t0"),
              start_revision: 2,
              prev_kv: true,
            },
          },
        ]);
        await w.expect(2);
        await w.expect(2, true);
        await w.quiet();
        w.close();
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("IDs: chosen, duplicate, negative, auto; empty range", async () => {
        const w = new Both(pair, [
          { create_request: { key: b64("a"), watch_id: "5" } },
          { create_request: { key: b64("a"), watch_id: "5" } },
          { create_request: { key: b64("a") } },
          { create_request: { key: b64("a"), watch_id: "-3" } },
          { create_request: { key: b64("a"), watch_id: "0" } },
          { create_request: { key: b64("b"), range_end: b64("a") } },
          { cancel_request: { watch_id: "5" } },
          { cancel_request: { watch_id: "77" } },
          { progress_request: {} },
          {},
        ]);
        await w.expect(8);
        await w.quiet();
        w.close();
      });

      await t.step("compacted and future start revisions", async () => {
        await put("c", "1");
        await put("c", "2");
        const at = await pair.post("/v3/kv/range", { key: b64("c") });
        const rev = Number(JSON.parse(at.body).header.revision);
        await pair.post("/v3/kv/compaction", { revision: String(rev - 1), physical: true });
        const w = new Both(pair, [
          { create_request: { key: b64("c"), start_revision: String(rev - 2) } },
          { create_request: { key: b64("c"), start_revision: String(rev - 1) } },
          { create_request: { key: b64("c"), start_revision: String(rev + 2) } },
        ]);
        await w.expect(3); // created
        await w.expect(2, true); // the compacted cancel, the replay from rev - 1
        await put("c", "3");
        await w.expect(1); // the watch from rev - 1; the future one waits
        await w.quiet();
        await put("c", "4");
        await w.expect(2, true);
        w.close();
      });

      await t.step("errors: bad first message, bad enum, GET", async () => {
        await pair.post("/v3/watch", '{"create_request":{"key":');
        await pair.post("/v3/watch", '{"create_request":{"key":"YQ==","filters":["BAD"]}}');
        await pair.send("GET", "/v3/watch");
        assertEquals(pair.takeDiffs(), []);
        // A bad message after a good one ends the requests, not the stream.
        const w = new Both(pair, '{"create_request":{"key":"YQ=="}}{bad{"create_request":{}}');
        await w.expect(1);
        await put("a", "9");
        await w.expect(1);
        await w.quiet();
        w.close();
      });
    });
  },
});

Deno.test({
  name: compatName("compat: watch progress notifications and fragments match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      await t.step("progress_notify after an idle interval", async () => {
        await pair.post("/v3/kv/put", { key: b64("a"), value: b64("1") });
        const w = new Both(pair, [
          { create_request: { key: b64("a"), progress_notify: true } },
          { create_request: { key: b64("b"), progress_notify: true } },
        ]);
        await w.expect(2);
        await pair.post("/v3/kv/put", { key: b64("a"), value: b64("2") });
        await w.expect(1);
        // One interval later: only the watcher that was sent nothing in it.
        await w.expect(1);
        // Then both, every interval.
        await w.expect(2, true);
        w.close();
      });

      await t.step("fragments over --max-request-bytes + gRPC's 512 KiB", async () => {
        // 8 puts of 100 KiB: a replay of all of them (800 KiB) is over the
        // watch server's split size (100 KiB + 512 KiB).
        const value = "x".repeat(100 * 1024);
        for (let i = 0; i < 8; i++) {
          await pair.post("/v3/kv/put", { key: b64(`f/${i}`), value: b64(value) });
        }
        const w = new Both(pair, [
          {
            create_request: {
              key: b64("f/"),
              range_end: b64("f0"),
              fragment: true,
              start_revision: "1",
            },
          },
        ]);
        await w.expect(1); // created
        const parts = await w.expect(2);
        assert(parts[0].includes('"fragment":true') && !parts[1].includes('"fragment"'));
        await w.quiet();
        w.close();
        assertEquals(pair.takeDiffs(), []);
      });
    }, ["--experimental-watch-progress-notify-interval", "1s", "--max-request-bytes", "153600"]);
  },
});
