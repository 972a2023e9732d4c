/**
 * The gateway's watch endpoint served in-process over real HTTP: a client
 * that goes away takes its watchers with it, and streamed requests are
 * handled as they arrive.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createGateway } from "../../server/gateway/mod.ts";
import { memberId } from "../../server/ids.ts";
import { openMember } from "../../server/member.ts";

async function withGateway(fn: (url: string, watchers: () => number) => Promise<void>) {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-gw-watch-" });
  const id = memberId(["http://localhost:2380"], "etcd-cluster");
  const member = await openMember(dir, { memberId: id, clusterId: id }, {
    maxTxnOps: 128,
    maxRequestBytes: 1572864,
  });
  const app = createGateway(member.service, { cairnVersion: "0" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, () => member.service.watch.hub.size);
  } finally {
    member.service.close();
    await server.shutdown();
    await member.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("gateway watch: a client that disconnects takes its watchers with it", async () => {
  await withGateway(async (url, watchers) => {
    const abort = new AbortController();
    const res = await fetch(`${url}/v3/watch`, {
      method: "POST",
      body: '{"create_request":{"key":"YQ=="}}{"create_request":{"key":"Yg=="}}',
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await until(() => watchers() === 2);
    assertEquals(watchers(), 2);
    abort.abort();
    await until(() => watchers() === 0);
    assertEquals(watchers(), 0);
  });
});

Deno.test("gateway watch: requests streamed in the body are handled as they arrive", async () => {
  await withGateway(async (url, watchers) => {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const te = new TextEncoder();
    const res = fetch(`${url}/v3/watch`, { method: "POST", body: readable });
    // A message split across chunks.
    await writer.write(te.encode('{"create_request":{"key"'));
    await writer.write(te.encode(':"YQ=="}}'));
    const reader = (await res).body!.getReader();
    const td = new TextDecoder();
    let text = td.decode((await reader.read()).value);
    assert(text.includes('"created":true'), text);
    await writer.write(te.encode('{"create_request":{"key":"Yg==","watch_id":"4"}}'));
    while (!text.includes('"watch_id":"4"')) text += td.decode((await reader.read()).value);
    assertEquals(watchers(), 2);
    await writer.write(te.encode('{"cancel_request":{"watch_id":"4"}}'));
    while (!text.includes('"canceled":true')) text += td.decode((await reader.read()).value);
    assertEquals(watchers(), 1);
    await writer.close();
    await reader.cancel();
  });
});
