import assert from "node:assert/strict";
import { cairnArgs, freePort, runCairnToExit, startCairn } from "../servers.ts";

const b64 = (s: string) => btoa(s);

Deno.test("client port: a second server on a taken client URL exits with etcd's bind error", async () => {
  const dirA = Deno.makeTempDirSync({ prefix: "cairn-port-a-" });
  const dirB = Deno.makeTempDirSync({ prefix: "cairn-port-b-" });
  // Both with HTTP worker threads, which share their own server's port.
  const first = await startCairn(dirA, ["--http-workers", "2"]);
  try {
    const put = await fetch(`${first.url}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: b64("k"), value: b64("a") }),
    });
    assert.equal(put.status, 200);
    for (const workers of ["2", "0"]) {
      const second = await runCairnToExit(cairnArgs(dirB, first.url, ["--http-workers", workers]));
      assert.notEqual(
        second.code,
        undefined,
        `the second server (${workers} workers) kept running`,
      );
      assert.notEqual(second.code, 0);
      assert.match(
        second.stderr,
        new RegExp(`listen tcp ${first.endpoint}: bind: address already in use`),
      );
    }
    // Every connection still reaches the first server's store.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${first.url}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: b64("k") }),
        headers: { connection: "close" },
      });
      const body = await res.json();
      assert.equal(body.kvs?.[0]?.value, b64("a"), `connection ${i} reached another store`);
    }
  } finally {
    await first.kill();
  }
  Deno.removeSync(dirA, { recursive: true });
  Deno.removeSync(dirB, { recursive: true });
});

Deno.test("client port: a port held by another program is reported as etcd's bind error", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-port-" });
  const port = freePort();
  const holder = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    const res = await runCairnToExit(cairnArgs(dir, `http://127.0.0.1:${port}`));
    assert.notEqual(res.code, undefined, "cairn kept running");
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      new RegExp(`listen tcp 127.0.0.1:${port}: bind: address already in use`),
    );
  } finally {
    holder.close();
  }
  Deno.removeSync(dir, { recursive: true });
});
