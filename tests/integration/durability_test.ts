import assert from "node:assert/strict";
import { startCairn } from "../servers.ts";

const b64 = (s: string) => btoa(s);

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
}

Deno.test("durability: every acknowledged put survives kill -9 and restart", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "cairn-durability-" });
  let server = await startCairn(dataDir);
  const acked = new Map<string, string>();
  let stop = false;
  // 16 writers, each writing its own keys until the server dies under them.
  const writers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const key = `w${w}/k${i}`;
      const value = `v${w}-${i}`;
      try {
        const res = await post(server.url, "/v3/kv/put", { key: b64(key), value: b64(value) });
        const text = await res.text();
        if (res.status === 200) acked.set(key, value);
        else throw new Error(`put failed: ${res.status} ${text}`);
      } catch (err) {
        if (err instanceof TypeError || stop) return; // connection lost: the kill
        throw err;
      }
    }
  });
  while (acked.size < 500) await new Promise((r) => setTimeout(r, 5));
  await server.kill();
  stop = true;
  await Promise.all(writers);
  assert.ok(acked.size >= 500);

  server = await startCairn(dataDir);
  try {
    const res = await post(server.url, "/v3/kv/range", { key: b64("\0"), range_end: b64("\0") });
    const body = await res.json();
    const stored = new Map<string, string>(
      (body.kvs ?? []).map((kv: { key: string; value: string }) => [atob(kv.key), atob(kv.value)]),
    );
    const missing = [...acked].filter(([k, v]) => stored.get(k) !== v);
    assert.deepEqual(missing, [], `${missing.length} acknowledged writes lost`);
    // Revisions continue after the restart: the next write gets a fresh one.
    const rev = Number(body.header.revision);
    const put = await (await post(server.url, "/v3/kv/put", { key: b64("after"), value: b64("x") }))
      .json();
    assert.equal(Number(put.header.revision), rev + 1);
  } finally {
    assert.equal(await server.terminate(), 0, "clean shutdown on SIGTERM");
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("durability: --wal-dir keeps the WAL in its own directory, and a restart replays it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-wal-dir-" });
  const flags = ["--wal-dir", `${dir}/wal`];
  let server = await startCairn(`${dir}/data`, flags);
  try {
    for (let i = 0; i < 20; i++) {
      const res = await post(server.url, "/v3/kv/put", { key: b64(`k${i}`), value: b64(`v${i}`) });
      assert.equal(res.status, 200, await res.text());
    }
    await server.kill();
    assert.ok([...Deno.readDirSync(`${dir}/wal`)].length > 0, "nothing in --wal-dir");
    assert.throws(() => Deno.statSync(`${dir}/data/member/wal`), Deno.errors.NotFound);
    server = await startCairn(`${dir}/data`, flags);
    const res = await post(server.url, "/v3/kv/range", { key: b64("k"), range_end: b64("l") });
    const { kvs } = await res.json() as { kvs: { value: string }[] };
    assert.equal(kvs.length, 20);
  } finally {
    await server.kill();
    Deno.removeSync(dir, { recursive: true });
  }
});
