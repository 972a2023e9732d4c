/**
 * Client.watch against a real cairn server: every event of concurrent
 * writers arrives once, in revision order, each revision whole; and a watch
 * whose server is killed (kill -9) and restarted on the same data dir and
 * address goes on with no duplicate and no gap.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Client, type Event, type WatchBatch } from "../../client/mod.ts";
import { startCairn, startCairnAt } from "../servers.ts";

const dec = new TextDecoder();

/** Milliseconds a test waits for its events before giving up (its watcher is closed). */
const DEADLINE_MS = 30_000;

/**
 * Every event of `batches`, checking the order invariants on the way:
 * revisions never go back, and no revision is split over two batches.
 */
function flatten(batches: WatchBatch[]): Event[] {
  const out: Event[] = [];
  let last = 0;
  for (const b of batches) {
    assertEquals(b.events[0].kv.mod_revision > last, true, `batch after revision ${last}`);
    for (const ev of b.events) {
      assertEquals(ev.kv.mod_revision >= last, true, "events in revision order");
      last = ev.kv.mod_revision;
    }
    assertEquals(b.revision >= last, true);
    out.push(...b.events);
  }
  return out;
}

Deno.test("Client.watch sees every event of concurrent writers once, in revision order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-" });
  const server = await startCairn(`${dir}/data`);
  try {
    const client = new Client({ endpoints: [server.url] });
    const ac = new AbortController();
    const watcher = client.watch("w/", {
      prefix: true,
      prevKv: true,
      signal: AbortSignal.any([ac.signal, AbortSignal.timeout(DEADLINE_MS)]),
    });
    await watcher.created;
    const writes: Promise<number>[] = [];
    for (let writer = 0; writer < 4; writer++) {
      writes.push((async () => {
        for (let i = 0; i < 25; i++) await client.put(`w/${writer}`, `${i}`);
        const txn = await client.txn({
          compare: [],
          success: [
            {
              request_put: {
                key: new TextEncoder().encode(`w/t${writer}`),
                value: new Uint8Array(),
              },
            },
            { request_delete_range: { key: new TextEncoder().encode(`w/${writer}`) } },
          ],
          failure: [],
        });
        return txn.header.revision;
      })());
    }
    const batches: WatchBatch[] = [];
    let count = 0;
    for await (const b of watcher) {
      batches.push(b);
      count += b.events.length;
      if (count >= 4 * 27) break;
    }
    const txnRevisions = await Promise.all(writes);
    const events = flatten(batches);
    assertEquals(events.length, 4 * 27);
    for (let writer = 0; writer < 4; writer++) {
      const mine = events.filter((e) => dec.decode(e.kv.key) === `w/${writer}`);
      assertEquals(
        mine.map((e) => e.type === "PUT" ? dec.decode(e.kv.value) : "DELETE"),
        [...Array.from({ length: 25 }, (_, i) => `${i}`), "DELETE"],
      );
      assertEquals(mine.at(-1)!.prev_kv?.value, new TextEncoder().encode("24"));
      // The txn's two events arrive in one batch.
      const txnBatch = batches.find((b) =>
        b.events.some((e) => e.kv.mod_revision === txnRevisions[writer])
      );
      assertEquals(
        txnBatch?.events.filter((e) => e.kv.mod_revision === txnRevisions[writer]).length,
        2,
      );
    }
  } finally {
    await server.terminate();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("Client.watch resumes after the server is killed and restarted: no duplicate, no gap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-" });
  let server = await startCairn(`${dir}/data`);
  try {
    const client = new Client({ endpoints: [server.url], timeout: 2000 });
    const ac = new AbortController();
    const watcher = client.watch("r/", {
      prefix: true,
      signal: AbortSignal.any([ac.signal, AbortSignal.timeout(DEADLINE_MS)]),
    });
    await watcher.created;
    const it = watcher[Symbol.asyncIterator]();
    const revisions: number[] = [];
    for (let i = 0; i < 5; i++) revisions.push((await client.put(`r/${i}`, "a")).header.revision);
    const batches: WatchBatch[] = [];
    // Read part of what was written; the rest waits in the old stream when it dies.
    for (let n = 0; n < 2; n++) batches.push((await it.next()).value as WatchBatch);
    for (let i = 5; i < 20; i++) revisions.push((await client.put(`r/${i}`, "b")).header.revision);
    await server.kill();
    server = await startCairnAt(`${dir}/data`, server.url);
    for (let i = 20; i < 40; i++) revisions.push((await client.put(`r/${i}`, "c")).header.revision);
    // Events, not batches: one batch may carry several revisions.
    let count = flatten(batches).length;
    while (count < 40) {
      const { value, done } = await it.next();
      if (done) break;
      batches.push(value);
      count += value.events.length;
    }
    ac.abort();
    assertEquals((await it.next()).done, true);
    const events = flatten(batches);
    assertEquals(events.map((e) => e.kv.mod_revision), revisions);
    assertEquals(events.map((e) => dec.decode(e.kv.key)), revisions.map((_, i) => `r/${i}`));
  } finally {
    await server.terminate();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
