import assert from "node:assert/strict";
import { openStore } from "../../mod.ts";
import { cairnArgs, freePort, runCairnToExit, startCairn } from "../servers.ts";

const b64 = (s: string) => btoa(s);

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
}

Deno.test("data dir lock: a second server on the same data dir exits at once, naming the holder", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "cairn-lock-" });
  const first = await startCairn(dataDir);
  try {
    assert.equal(
      (await post(first.url, "/v3/kv/put", { key: b64("k"), value: b64("1") })).status,
      200,
    );
    const url = `http://127.0.0.1:${freePort()}`;
    const second = await runCairnToExit(cairnArgs(dataDir, url));
    assert.notEqual(second.code, undefined, "the second server kept running");
    assert.notEqual(second.code, 0);
    assert.match(
      second.stderr,
      new RegExp(`Cannot open data dir ${dataDir}: it is locked by process ${first.child.pid}`),
    );
    // The first server is untouched and still serves.
    const res = await post(first.url, "/v3/kv/range", { key: b64("k") });
    const body = await res.json();
    assert.equal(body.kvs[0].value, b64("1"));
    assert.equal(body.header.revision, "2");
    // The embedded store takes the same lock.
    await assert.rejects(
      openStore(dataDir),
      new RegExp(`Cannot open data dir ${dataDir}: it is locked by process ${first.child.pid}`),
    );
  } finally {
    assert.equal(await first.terminate(), 0);
  }
  // A clean shutdown released the lock: the store opens again, with its data.
  const store = await openStore(dataDir);
  try {
    const { kvs } = await store.get("k");
    assert.equal(new TextDecoder().decode(kvs[0].value), "1");
    // A second store in this process is refused too while the first is open.
    await assert.rejects(openStore(dataDir), /it is locked by process \d+/);
  } finally {
    await store.close();
  }
  const again = await openStore(dataDir);
  await again.close();
  Deno.removeSync(dataDir, { recursive: true });
});
