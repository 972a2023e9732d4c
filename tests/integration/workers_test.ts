import assert from "node:assert/strict";
import { startCairn } from "../servers.ts";

/** One HTTP/1.1 POST on a fresh TCP connection (so the kernel may pick any worker). */
async function postFresh(url: string, path: string, body: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const bytes = new TextEncoder().encode(body);
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    await conn.write(bytes);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    return text.slice(text.indexOf("\r\n\r\n") + 4);
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the server
    }
  }
}

Deno.test("http workers: a write acknowledged on one connection is visible on every other", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "cairn-workers-" });
  const server = await startCairn(dataDir, ["--http-workers", "2"]);
  try {
    for (let i = 0; i < 100; i++) {
      const value = btoa(`v${i}`);
      const put = JSON.parse(
        await postFresh(server.url, "/v3/kv/put", JSON.stringify({ key: btoa("k"), value })),
      );
      const rev = Number(put.header.revision);
      const got = JSON.parse(
        await postFresh(server.url, "/v3/kv/range", JSON.stringify({ key: btoa("k") })),
      );
      assert.equal(got.kvs[0].value, value, `read after write ${i}`);
      assert.ok(Number(got.header.revision) >= rev, "a read never goes back in revision");
    }
  } finally {
    assert.equal(await server.terminate(), 0);
    Deno.removeSync(dataDir, { recursive: true });
  }
});
