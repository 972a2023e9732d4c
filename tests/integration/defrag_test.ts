/**
 * Defragmentation of a one-member cairn: the file shrinks to what the data
 * needs once compaction freed the rest, a watch opened before it goes on
 * with the next revision, every key survives, and the member restarts from
 * the new file.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startCairn } from "../servers.ts";
import { b64, postJson } from "./cluster_harness.ts";

interface Status {
  dbSize: string;
  dbSizeInUse: string;
  header: { revision: string };
}

Deno.test({
  name: "defragment: the file shrinks, a watch goes on, keys survive, the member restarts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    let server = await startCairn(dir);
    try {
      const url = server.url;
      const big = b64("x".repeat(50_000));
      for (let i = 0; i < 100; i++) {
        await postJson(url, "/v3/kv/put", { key: b64(`big/${i}`), value: big });
      }
      await postJson(url, "/v3/kv/put", { key: b64("keep"), value: b64("kept") });
      await postJson(url, "/v3/kv/deleterange", { key: b64("big/"), range_end: b64("big0") });
      const before = await postJson(url, "/v3/maintenance/status", {}) as unknown as Status;
      await postJson(url, "/v3/kv/compaction", {
        revision: before.header.revision,
        physical: true,
      });
      // A watch from the next revision, open across the defragmentation.
      const next = Number(before.header.revision) + 1;
      const watch = await fetch(`${url}/v3/watch`, {
        method: "POST",
        body: JSON.stringify({ create_request: { key: b64("w"), start_revision: String(next) } }),
      });
      const reader = watch.body!.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const until = async (text: string) => {
        while (!seen.includes(text)) {
          const { value, done } = await reader.read();
          assert(!done, "the watch stream stays open");
          seen += value;
        }
      };
      await until('"created":true');

      assertEquals(await postJson(url, "/v3/maintenance/defragment", {}), {});
      const after = await postJson(url, "/v3/maintenance/status", {}) as unknown as Status;
      assert(
        Number(after.dbSize) * 4 < Number(before.dbSize),
        `file ${before.dbSize} → ${after.dbSize} bytes`,
      );
      assert(Number(after.dbSizeInUse) <= Number(after.dbSize));
      await postJson(url, "/v3/kv/put", { key: b64("w"), value: b64("after") });
      await until(`"mod_revision":"${next}"`);
      await reader.cancel();

      await server.terminate();
      server = await startCairn(dir);
      const { kvs } = await postJson(server.url, "/v3/kv/range", {
        key: b64("\0"),
        range_end: b64("\0"),
      }) as { kvs: { key: string; value: string }[] };
      assertEquals(
        kvs.map((kv) => [atob(kv.key), atob(kv.value)]),
        [["keep", "kept"], ["w", "after"]],
      );
    } finally {
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "defragment: leases granted while it runs keep the member's minimum TTL across a restart",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    // etcd's minimum lease TTL is ceil(1.5 × election timeout): 8 s here.
    const flags = ["--heartbeat-interval", "500", "--election-timeout", "5000"];
    let server = await startCairn(dir, flags);
    try {
      const url = server.url;
      for (let i = 0; i < 50; i++) {
        await postJson(url, "/v3/kv/put", { key: b64(`pad/${i}`), value: b64("x".repeat(20_000)) });
      }
      let granting = true;
      const granted: string[] = [];
      const grants = (async () => {
        while (granting) {
          const r = await postJson(url, "/v3/lease/grant", { TTL: 1 }) as {
            ID: string;
            TTL: string;
          };
          assertEquals(r.TTL, "8");
          granted.push(r.ID);
        }
      })();
      for (let i = 0; i < 5; i++) await postJson(url, "/v3/maintenance/defragment", {});
      granting = false;
      await grants;
      assert(granted.length > 0);
      await server.terminate();
      server = await startCairn(dir, flags);
      for (const ID of granted) {
        const ttl = await postJson(server.url, "/v3/lease/timetolive", { ID }) as {
          grantedTTL: string;
        };
        assertEquals(ttl.grantedTTL, "8", `lease ${ID}`);
      }
    } finally {
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "defragment while the HTTP workers start: every worker serves the store that follows",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    // The first worker listens (and the member answers /health) while the
    // others are still opening the store: defragment over and over meanwhile.
    const server = await startCairn(dir, ["--http-workers", "4"]);
    // A new connection for every read: each lands on any of the workers.
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    try {
      const url = server.url;
      let defragmenting = true;
      const defrags = (async () => {
        while (defragmenting) await postJson(url, "/v3/maintenance/defragment", {});
      })();
      defrags.catch(() => {}); // awaited below
      const until = Date.now() + 4000;
      for (let i = 0; Date.now() < until; i++) {
        const { header } = await postJson(url, "/v3/kv/put", {
          key: b64("k"),
          value: b64(`v${i}`),
        }) as { header: { revision: string } };
        for (let j = 0; j < 4; j++) {
          const res = await fetch(`${url}/v3/kv/range`, {
            method: "POST",
            body: JSON.stringify({ key: b64("k") }),
            client,
            signal: AbortSignal.timeout(5000),
          });
          const body = await res.json() as {
            header: { revision: string };
            kvs: { value: string }[];
          };
          assertEquals(body.header.revision, header.revision);
          assertEquals(atob(body.kvs[0].value), `v${i}`);
        }
      }
      defragmenting = false;
      await defrags;
    } finally {
      client.close();
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
