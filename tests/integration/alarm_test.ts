/**
 * Space quota and alarms, differentially: the same JSON gateway requests go
 * to a real etcd 3.4 and to cairn, both started with a small
 * --quota-backend-bytes, and their answers must be equal once each member's
 * own ID is masked. The two stores reach their quota after different
 * amounts of data (their files differ), so the sequence writes until each
 * refuses and compares from there: the refusal, the NOSPACE alarm, reads and
 * deletes still served, writes that add data refused, the CORRUPT alarm,
 * recovery by delete + compact + defragment + disarm. Then what only cairn
 * is asked: the alarm is still raised after a restart.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HAVE_ETCD, type ServerProcess, startCairn, startEtcd } from "../servers.ts";

const QUOTA = ["--quota-backend-bytes", "300000"];
const b64 = (s: string) => btoa(s);
const VALUE = b64("x".repeat(20_000));

interface Answer {
  status: number;
  body: unknown;
}

/** POST `body` to `path` of `server`; the status and the parsed JSON answer. */
async function post(server: ServerProcess, path: string, body: unknown): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`${path} on ${server.url} answered ${res.status} ${text}`);
  }
}

/** The member's own ID (decimal, as the gateway writes it). */
async function selfId(server: ServerProcess): Promise<string> {
  const { body } = await post(server, "/v3/maintenance/status", {});
  return (body as { header: { member_id: string } }).header.member_id;
}

/** `answer` with the member's own ID shown as `<self>` and header IDs and terms dropped. */
function masked(answer: Answer, self: string): Answer {
  const text = JSON.stringify(answer.body).replaceAll(self, "<self>");
  const body = JSON.parse(text, (k, v) => {
    if (k === "header" && v !== null && typeof v === "object") {
      const { cluster_id: _c, member_id: _m, raft_term: _t, revision: _r, ...rest } = v;
      return rest;
    }
    return v;
  });
  return { status: answer.status, body };
}

Deno.test({
  name: "quota and alarms: NOSPACE and CORRUPT answer as etcd's; the alarm outlives a restart",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    const etcd = await startEtcd(dirs[0], QUOTA);
    let cairn = await startCairn(dirs[1], QUOTA);
    try {
      const ids = new Map([[etcd, await selfId(etcd)], [cairn, await selfId(cairn)]]);
      /** The same request to both; their masked answers must be equal. */
      const both = async (path: string, body: unknown, what = path): Promise<Answer> => {
        const [e, c] = [await post(etcd, path, body), await post(cairn, path, body)];
        const want = masked(e, ids.get(etcd)!);
        assertEquals(masked(c, ids.get(cairn)!), want, what);
        return want;
      };

      // Fill each store until it refuses a put.
      for (const server of [etcd, cairn]) {
        let refused: Answer | undefined;
        for (let i = 0; i < 200 && refused === undefined; i++) {
          const a = await post(server, "/v3/kv/put", { key: b64(`k${i}`), value: VALUE });
          if (a.status !== 200) refused = a;
        }
        assert(refused !== undefined, "the quota is reached");
        assertEquals(refused, {
          status: 429,
          body: {
            error: "etcdserver: mvcc: database space exceeded",
            message: "etcdserver: mvcc: database space exceeded",
            code: 8,
          },
        });
      }
      // The refusal raised NOSPACE for the member itself.
      const nospace = { alarms: [{ memberID: "<self>", alarm: "NOSPACE" }] };
      assertEquals((await both("/v3/maintenance/alarm", {})).body, nospace);
      assertEquals((await both("/v3/maintenance/alarm", { action: "GET" })).body, nospace);
      await both("/v3/maintenance/alarm", { action: "GET", alarm: "CORRUPT" });
      const status = await post(cairn, "/v3/maintenance/status", {});
      assertEquals(
        (status.body as { errors: string[] }).errors,
        [`memberID:${ids.get(cairn)} alarm:NOSPACE `],
      );
      // Writes that add data are refused; reads and deletes are served.
      await both("/v3/kv/put", { key: b64("k0"), value: b64("v") }, "put");
      await both("/v3/lease/grant", { TTL: 60 }, "lease grant");
      const putTxn = { success: [{ request_put: { key: b64("t"), value: b64("v") } }] };
      await both("/v3/kv/txn", putTxn, "txn with a put");
      const get = { key: b64("k0"), keys_only: true };
      assertEquals((await both("/v3/kv/range", get, "range")).status, 200);
      const delTxn = { failure: [{ request_delete_range: { key: b64("k1") } }] };
      assertEquals((await both("/v3/kv/txn", delTxn, "txn deleting")).status, 200);
      await both("/v3/kv/deleterange", { key: b64("k0") }, "delete");

      // CORRUPT: every write refused, reads served; raising it twice answers it twice.
      const corrupt = { action: "ACTIVATE", memberID: "<id>", alarm: "CORRUPT" };
      for (let i = 0; i < 2; i++) {
        const [e, c] = await Promise.all(
          [etcd, cairn].map((s) =>
            post(s, "/v3/maintenance/alarm", { ...corrupt, memberID: ids.get(s) })
          ),
        );
        assertEquals(masked(c, ids.get(cairn)!), masked(e, ids.get(etcd)!));
        assertEquals(masked(c, ids.get(cairn)!).body, {
          alarms: [{ memberID: "<self>", alarm: "CORRUPT" }],
        });
      }
      await both("/v3/kv/deleterange", { key: b64("k2") }, "delete under CORRUPT");
      await both("/v3/kv/compaction", { revision: "2" }, "compaction under CORRUPT");
      assertEquals((await both("/v3/kv/range", get, "range under CORRUPT")).status, 200);
      for (const s of [etcd, cairn]) {
        const off = { action: "DEACTIVATE", memberID: ids.get(s), alarm: "CORRUPT" };
        const a = masked(await post(s, "/v3/maintenance/alarm", off), ids.get(s)!);
        assertEquals(a.body, { alarms: [{ memberID: "<self>", alarm: "CORRUPT" }] });
        // Clearing an alarm that is not raised answers none.
        assertEquals((await post(s, "/v3/maintenance/alarm", off)).body, {});
      }

      // Recovery (cairn's alarm is checked across a restart first).
      await cairn.terminate();
      cairn = await startCairn(dirs[1], QUOTA);
      ids.set(cairn, await selfId(cairn));
      assertEquals((await both("/v3/maintenance/alarm", {}, "alarm after restart")).body, nospace);
      for (const s of [etcd, cairn]) {
        await post(s, "/v3/kv/deleterange", { key: b64("k"), range_end: b64("l") });
        const { body } = await post(s, "/v3/kv/range", { key: b64("k"), count_only: true });
        const rev = (body as { header: { revision: string } }).header.revision;
        assertEquals(
          (await post(s, "/v3/kv/compaction", { revision: rev, physical: true })).status,
          200,
        );
        assertEquals((await post(s, "/v3/maintenance/defragment", {})).status, 200);
        const off = { action: "DEACTIVATE", memberID: ids.get(s), alarm: "NOSPACE" };
        assertEquals((await post(s, "/v3/maintenance/alarm", off)).status, 200);
      }
      assertEquals((await both("/v3/maintenance/alarm", {}, "no alarm")).body, {});
      assertEquals((await both("/v3/kv/put", { key: b64("after"), value: VALUE })).status, 200);
    } finally {
      await etcd.kill();
      await cairn.kill();
      for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
