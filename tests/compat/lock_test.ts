/**
 * Differential test of the v3lock and v3election gateway endpoints: the same
 * requests sent to real etcd 3.4 and to cairn, bodies compared byte for byte
 * (cluster_id, member_id and raft_term masked). Leases are granted with fixed
 * IDs, so the lock and candidate keys (`name/<lease hex>`) match. A request
 * that waits (a contended lock, a second candidate) is started on both, and
 * the step that lets it through is taken only once its key exists on both.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, type Pair, StreamLines, withPair } from "./harness.ts";

/** Resolves once `key` exists on `url` (polled). */
async function untilKey(url: string, key: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const res = await fetch(url + "/v3/kv/range", {
      method: "POST",
      body: JSON.stringify({ key: b64(key) }),
    });
    const body = await res.json();
    if (body.kvs?.length) return;
    if (Date.now() > deadline) throw new Error(`${key} never appeared on ${url}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once `key` exists on both servers. */
async function onBoth(pair: Pair, key: string): Promise<void> {
  await Promise.all([untilKey(pair.etcd.url, key), untilKey(pair.cairn.url, key)]);
}

Deno.test({
  name: compatName("compat: lock and election endpoints match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      // 0x1000 and 0x5000: keys name/1000 and name/5000.
      await pair.post("/v3/lease/grant", { TTL: 30, ID: "4096" });
      await pair.post("/v3/lease/grant", { TTL: 30, ID: "20480" });
      const A = "4096";
      const B = "20480";

      await t.step("lock, again under the same lease, unknown lease, unlock", async () => {
        await pair.post("/v3/lock/lock", { name: b64("l"), lease: A });
        await pair.post("/v3/lock/lock", { name: b64("l"), lease: A });
        await pair.post("/v3/lock/lock", { name: b64("l"), lease: "999" });
        await pair.post("/v3beta/lock/lock", { name: b64("m"), lease: B });
        await pair.post("/v3/lock/unlock", { key: b64("l/1000") });
        await pair.post("/v3/lock/unlock", { key: b64("m/5000") });
        await pair.post("/v3/lock/unlock", { key: b64("nothing") });
        await pair.post("/v3/lock/unlock", {});
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("bad bodies and methods", async () => {
        await pair.post("/v3/lock/lock", { name: 1 });
        await pair.post("/v3/lock/lock", { name: b64("l"), lease: "x" });
        await pair.post("/v3/lock/lock", "{");
        await pair.send("GET", "/v3/lock/lock");
        await pair.post("/v3/election/campaign", { name: b64("e"), value: true });
        await pair.post("/v3/election/leader", "[]");
        await pair.send("GET", "/v3/election/leader");
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("a contended lock is answered once the holder unlocks", async () => {
        await pair.post("/v3/lock/lock", { name: b64("c"), lease: A });
        const waiting = pair.post("/v3/lock/lock", { name: b64("c"), lease: B });
        await onBoth(pair, "c/5000");
        // Other writes meanwhile: the answer's revision is the unlock's.
        await pair.post("/v3/kv/put", { key: b64("c0"), value: b64("x") });
        await pair.post("/v3/lock/unlock", { key: b64("c/1000") });
        const answer = await waiting;
        assertEquals(answer.status, 200);
        await pair.post("/v3/kv/range", { key: b64("c/"), range_end: b64("c0") });
        await pair.post("/v3/lock/unlock", { key: b64("c/5000") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("waiters are answered in create-revision order", async () => {
        await pair.post("/v3/kv/put", { key: b64("q/first"), value: b64("") });
        const waitingA = pair.post("/v3/lock/lock", { name: b64("q"), lease: A });
        await onBoth(pair, "q/1000");
        const waitingB = pair.post("/v3/lock/lock", { name: b64("q"), lease: B });
        await onBoth(pair, "q/5000");
        await pair.post("/v3/kv/deleterange", { key: b64("q/first") });
        assertEquals((await waitingA).status, 200);
        await pair.post("/v3/lock/unlock", { key: b64("q/1000") });
        assertEquals((await waitingB).status, 200);
        await pair.post("/v3/lock/unlock", { key: b64("q/5000") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("campaign, leader, proclaim, resign", async () => {
        await pair.post("/v3/election/leader", { name: b64("e") });
        await pair.post("/v3/election/campaign", { name: b64("e"), lease: A, value: b64("v1") });
        await pair.post("/v3/election/campaign", { name: b64("e"), lease: A, value: b64("v1") });
        await pair.post("/v3/election/campaign", { name: b64("e"), lease: A, value: b64("v2") });
        const leader = await pair.post("/v3/election/leader", { name: b64("e") });
        const rev = JSON.parse(leader.body).kv.create_revision;
        const me = { name: b64("e"), key: b64("e/1000"), rev, lease: A };
        await pair.post("/v3/election/proclaim", { leader: me, value: b64("v3") });
        await pair.post("/v3/election/proclaim", { leader: { ...me, rev: "1" }, value: b64("x") });
        await pair.post("/v3/election/proclaim", {
          leader: { ...me, lease: "999" },
          value: b64("x"),
        });
        await pair.post("/v3/election/proclaim", { value: b64("x") });
        await pair.post("/v3/election/proclaim", { leader: {}, value: b64("x") });
        await pair.post("/v3/election/leader", { name: b64("e") });
        await pair.post("/v3/election/resign", { leader: { ...me, rev: "1" } });
        await pair.post("/v3/election/resign", {});
        await pair.post("/v3/election/resign", { leader: me });
        await pair.post("/v3/election/leader", { name: b64("e") });
        await pair.post("/v3/election/proclaim", { leader: me, value: b64("v4") });
        await pair.post("/v3/election/campaign", { name: b64("e"), lease: "999" });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("a second candidate is elected when the leader resigns", async () => {
        const first = await pair.post("/v3/election/campaign", {
          name: b64("f"),
          lease: A,
          value: b64("one"),
        });
        const me = JSON.parse(first.body).leader;
        const waiting = pair.post("/v3/election/campaign", {
          name: b64("f"),
          lease: B,
          value: b64("two"),
        });
        await onBoth(pair, "f/5000");
        await pair.post("/v3/election/leader", { name: b64("f") });
        await pair.post("/v3/election/resign", { leader: me });
        const answer = await waiting;
        assertEquals(answer.status, 200);
        await pair.post("/v3/election/leader", { name: b64("f") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("observe streams each leader change", async () => {
        const body = JSON.stringify({ name: b64("o") });
        const etcd = new StreamLines(pair.etcd.url + "/v3/election/observe", body);
        const cairn = new StreamLines(pair.cairn.url + "/v3/election/observe", body);
        const expect = async (n: number) => {
          const [e, c] = await Promise.all([etcd.take(n), cairn.take(n)]);
          assertEquals(c, e);
          assertEquals(e.length, n, `etcd sent ${e.length} of ${n} lines`);
        };
        // etcd's gateway sends the response head with the first line: give
        // both time to start observing before the first campaign.
        await new Promise((r) => setTimeout(r, 300));
        const first = await pair.post("/v3/election/campaign", {
          name: b64("o"),
          lease: A,
          value: b64("a"),
        });
        await expect(1);
        const me = JSON.parse(first.body).leader;
        await pair.post("/v3/election/proclaim", { leader: me, value: b64("b") });
        await expect(1);
        const waiting = pair.post("/v3/election/campaign", {
          name: b64("o"),
          lease: B,
          value: b64("c"),
        });
        await onBoth(pair, "o/5000");
        await pair.post("/v3/kv/put", { key: b64("o/zzz"), value: b64("ignored") });
        await pair.post("/v3/election/resign", { leader: me });
        await waiting;
        await expect(1);
        const [e, c] = await Promise.all([etcd.extra(), cairn.extra()]);
        assertEquals(c, e);
        assertEquals(e, []);
        etcd.close();
        cairn.close();
        assertEquals(pair.takeDiffs(), []);
      });
      assert(pair.compared > 40);
    });
  },
});
