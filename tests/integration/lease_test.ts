/**
 * Leases through a real cairn process: kill -9 and a restart keep each
 * lease's remaining TTL (checkpointed through the log) and its keys.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startCairn } from "../servers.ts";

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  const json = await res.json();
  assert(res.ok, `${path}: ${JSON.stringify(json)}`);
  return json;
}

Deno.test("leases across kill -9: the remaining TTL is kept, not a fresh full TTL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-lease-it-" });
  let server = await startCairn(dir);
  try {
    await post(server.url, "/v3/lease/grant", { ID: "42", TTL: 60 });
    await post(server.url, "/v3/kv/put", { key: btoa("k"), value: btoa("v"), lease: "42" });
    // More than one checkpoint interval (5 s) passes before the crash.
    await new Promise((r) => setTimeout(r, 6500));
    await server.kill();
    server = await startCairn(dir);
    const ttl = await post(server.url, "/v3/lease/timetolive", { ID: "42", keys: true });
    // A fresh full TTL would read 59 (60 with the extension); the checkpoint
    // taken ~5 s in recorded 55, and the new leader adds its election
    // timeout (1 s) to every lease, as etcd's Promote does.
    const left = Number(ttl.TTL);
    assert(left >= 45 && left <= 56, `${left} s left after the restart, granted 60`);
    assertEquals(ttl.grantedTTL, "60");
    assertEquals(ttl.keys, [btoa("k")]);
    await post(server.url, "/v3/lease/revoke", { ID: "42" });
    const range = await post(server.url, "/v3/kv/range", { key: btoa("k") });
    assertEquals(range.kvs, undefined);
  } finally {
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
