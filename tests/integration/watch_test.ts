/**
 * Watch through a real cairn process (HTTP worker threads, so events cross
 * the applied-change feed): many watchers under concurrent writes, a stalled
 * consumer beside a live one, and shutdown with open streams.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startCairn } from "../servers.ts";

const b64 = (s: string) => btoa(s);

/** A watch stream over HTTP whose frames are read only when asked. */
class WatchStream {
  readonly #abort = new AbortController();
  readonly #reader: Promise<ReadableStreamDefaultReader<Uint8Array>>;
  readonly #decoder = new TextDecoder();
  #buffer = "";
  /** Events seen, as revisions, in arrival order. */
  revisions: number[] = [];
  frames = 0;

  constructor(url: string, create: Record<string, unknown>) {
    this.#reader = fetch(`${url}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({ create_request: create }),
      signal: this.#abort.signal,
    }).then((res) => res.body!.getReader());
  }

  /** Read frames until `done()` holds or the stream ends; false if it ended. */
  async readUntil(done: () => boolean): Promise<boolean> {
    const reader = await this.#reader;
    while (!done()) {
      const { done: ended, value } = await reader.read();
      if (ended) return false;
      this.#buffer += this.#decoder.decode(value, { stream: true });
      let nl;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
        this.frames++;
        for (const ev of line.result?.events ?? []) this.revisions.push(Number(ev.kv.mod_revision));
      }
    }
    return true;
  }

  close(): void {
    this.#abort.abort();
  }
}

async function put(url: string, key: string, value: string): Promise<number> {
  const res = await fetch(`${url}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  const body = await res.json();
  assert(res.ok, JSON.stringify(body));
  return Number(body.header.revision);
}

/** `count` puts from `clients` concurrent writers; returns their revisions, sorted. */
async function concurrentPuts(
  url: string,
  count: number,
  clients: number,
  value: (i: number) => string,
): Promise<number[]> {
  const revs: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < count) {
      const i = next++;
      revs.push(await put(url, `w/${i % 101}`, value(i)));
    }
  }));
  return revs.sort((a, b) => a - b);
}

Deno.test("watch over HTTP: 20 watchers of a prefix each get all of 2,000 concurrent puts, in revision order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-it-" });
  const server = await startCairn(dir, ["--http-workers", "2"]);
  const streams: WatchStream[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const s = new WatchStream(server.url, { key: b64("w/"), range_end: b64("w0") });
      streams.push(s);
      await s.readUntil(() => s.frames >= 1); // created
    }
    const revs = await concurrentPuts(server.url, 2000, 32, (i) => `v${i}`);
    for (const s of streams) {
      assert(await s.readUntil(() => s.revisions.length >= revs.length));
      assertEquals(s.revisions, revs);
    }
  } finally {
    for (const s of streams) s.close();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watch over HTTP: a stalled consumer does not hold up writes or other watchers, and catches up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-it-" });
  // One worker: both streams are served by the same thread and hub.
  const server = await startCairn(dir, ["--http-workers", "1"]);
  const stalled = new WatchStream(server.url, { key: b64("w/"), range_end: b64("w0") });
  const live = new WatchStream(server.url, { key: b64("w/"), range_end: b64("w0") });
  try {
    await stalled.readUntil(() => stalled.frames >= 1);
    await live.readUntil(() => live.frames >= 1);
    // 3,000 puts of 16 KiB: ~48 MiB of events, far more than the socket
    // buffers and the stalled stream's own bound can hold.
    const big = "x".repeat(16 * 1024);
    const writing = concurrentPuts(server.url, 3000, 16, () => big);
    const reading = live.readUntil(() => live.revisions.length >= 3000);
    const revs = await writing;
    assert(await reading);
    assertEquals(live.revisions, revs);
    // The stalled consumer reads again: everything, in order, once.
    assert(await stalled.readUntil(() => stalled.revisions.length >= revs.length));
    assertEquals(stalled.revisions, revs);
  } finally {
    stalled.close();
    live.close();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watch over HTTP: SIGTERM ends open watch streams and the server exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-it-" });
  for (const workers of ["0", "2"]) {
    const server = await startCairn(dir, ["--http-workers", workers]);
    const s = new WatchStream(server.url, { key: b64("a") });
    try {
      await s.readUntil(() => s.frames >= 1);
      const code = await server.terminate();
      assertEquals(code, 0);
      // The stream was ended by the server, not left hanging.
      assertEquals(await s.readUntil(() => false), false);
    } finally {
      s.close();
      await server.kill();
    }
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("watch over HTTP: 10,000 watchers on one server each get their key's event", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-it-" });
  const server = await startCairn(dir, ["--http-workers", "2"]);
  const STREAMS = 100;
  const PER_STREAM = 100;
  const streams: { abort: AbortController; text: Promise<string> }[] = [];
  try {
    for (let s = 0; s < STREAMS; s++) {
      const body = Array.from(
        { length: PER_STREAM },
        (_, i) => JSON.stringify({ create_request: { key: b64(`k/${s * PER_STREAM + i}`) } }),
      ).join("");
      const abort = new AbortController();
      const res = await fetch(`${server.url}/v3/watch`, {
        method: "POST",
        body,
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      // Read until every watcher of the stream was created and got one event.
      const text = (async () => {
        let all = "";
        let created = 0;
        let events = 0;
        while (created < PER_STREAM || events < PER_STREAM) {
          const { done, value } = await reader.read();
          if (done) break;
          const chunk = decoder.decode(value, { stream: true });
          all += chunk;
          created += chunk.split('"created":true').length - 1;
          events += chunk.split('"events":').length - 1;
        }
        return all;
      })();
      streams.push({ abort, text });
    }
    // Every key once, 100 puts per txn.
    for (let t = 0; t < STREAMS * PER_STREAM / 100; t++) {
      const success = Array.from({ length: 100 }, (_, i) => ({
        request_put: { key: b64(`k/${t * 100 + i}`), value: b64("v") },
      }));
      const res = await fetch(`${server.url}/v3/kv/txn`, {
        method: "POST",
        body: JSON.stringify({ success }),
      });
      assert(res.ok);
      await res.body?.cancel();
    }
    for (let s = 0; s < STREAMS; s++) {
      const lines = (await streams[s].text).trim().split("\n").map((l) => JSON.parse(l).result);
      const keys = lines.flatMap((r) =>
        (r.events ?? []).map((e: { kv: { key: string } }) => atob(e.kv.key))
      );
      assertEquals(
        keys.sort(),
        Array.from({ length: PER_STREAM }, (_, i) => `k/${s * PER_STREAM + i}`).sort(),
      );
    }
  } finally {
    for (const s of streams) s.abort.abort();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
