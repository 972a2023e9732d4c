/**
 * Store and HTTP throughput: durable puts (sequential and 64 concurrent
 * writers) and single-key gets, through the embedded store and through the
 * JSON gateway of an in-process server. Run with `deno task bench`.
 */
import { openStore } from "../mod.ts";
import { parseConfig } from "../server/config.ts";
import { startServer } from "../server/mod.ts";

const value = new Uint8Array(256).fill(120);
const keys = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`bench/key${i}`));

const storeDir = Deno.makeTempDirSync({ prefix: "cairn-bench-store-" });
const store = await openStore(storeDir);
for (const key of keys) await store.put({ key, value });

let n = 0;
Deno.bench("store: durable put, one writer", { group: "store-put" }, async () => {
  await store.put({ key: keys[n++ % keys.length], value });
});

Deno.bench("store: durable put x64, 64 concurrent writers", { group: "store-put" }, async () => {
  await Promise.all(
    Array.from({ length: 64 }, () => store.put({ key: keys[n++ % keys.length], value })),
  );
});

Deno.bench("store: get one key", { group: "store-get" }, async () => {
  await store.get(keys[n++ % keys.length]);
});

Deno.bench("store: range of 100 keys", { group: "store-get" }, async () => {
  await store.get("bench/key1", { range_end: "bench/key2" });
});

const serverDir = Deno.makeTempDirSync({ prefix: "cairn-bench-http-" });
const server = await startServer(parseConfig([
  "--data-dir",
  serverDir,
  "--listen-client-urls",
  "http://127.0.0.1:0",
], {}));
const url = server.clientUrls[0];
const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const putBodies = keys.map((k) => JSON.stringify({ key: b64(k), value: b64(value) }));
const getBodies = keys.map((k) => JSON.stringify({ key: b64(k) }));
for (const body of putBodies) {
  await (await fetch(`${url}/v3/kv/put`, { method: "POST", body })).arrayBuffer();
}

async function call(path: string, body: string) {
  const res = await fetch(`${url}${path}`, { method: "POST", body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
}

Deno.bench("http: durable put, one client", { group: "http-put" }, async () => {
  await call("/v3/kv/put", putBodies[n++ % keys.length]);
});

Deno.bench("http: durable put x64, 64 concurrent clients", { group: "http-put" }, async () => {
  await Promise.all(
    Array.from({ length: 64 }, () => call("/v3/kv/put", putBodies[n++ % keys.length])),
  );
});

Deno.bench("http: get one key x64, 64 concurrent clients", { group: "http-get" }, async () => {
  await Promise.all(
    Array.from({ length: 64 }, () => call("/v3/kv/range", getBodies[n++ % keys.length])),
  );
});

globalThis.addEventListener("unload", () => {
  // deno bench has no teardown hook; the temp dirs are removed on exit.
  try {
    Deno.removeSync(storeDir, { recursive: true });
    Deno.removeSync(serverDir, { recursive: true });
  } catch {
    // best effort
  }
});
