/**
 * Store.watch, the embedded watch: the same service and hub the gateway
 * uses, fed by the store's own apply loop.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { openStore, type WatchBatch } from "../../mod.ts";

const td = new TextDecoder();

async function withStore(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-" });
  const store = await openStore(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Collect events until `n` arrived; returns them as "rev:key:type". */
async function collect(it: AsyncIterable<WatchBatch>, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of it) {
    for (const ev of batch.events) {
      assert(ev.kv.mod_revision <= batch.revision, "an event is at or below its batch revision");
      out.push(`${ev.kv.mod_revision}:${td.decode(ev.kv.key)}:${ev.type}`);
    }
    if (out.length >= n) break;
  }
  return out;
}

Deno.test("Store.watch: 20 watchers of a prefix each get all of 2,000 concurrent puts, in order", async () => {
  await withStore(async (store) => {
    const puts = 2000;
    const watchers = Array.from(
      { length: 20 },
      () => collect(store.watch("w/", { prefix: true }), puts),
    );
    // Let the watches be created before the writes start.
    await store.get("w/");
    await new Promise((r) => setTimeout(r, 50));
    const written = await Promise.all(
      Array.from({ length: puts }, (_, i) => store.put(`w/${i % 97}`, `v${i}`)),
    );
    const revs = written.map((r) => r.header.revision).sort((a, b) => a - b);
    for (const seen of await Promise.all(watchers)) {
      assertEquals(seen.map((s) => Number(s.split(":")[0])), revs);
    }
  });
});

Deno.test("Store.watch: history from a start revision, prev_kv, filters, then live events", async () => {
  await withStore(async (store) => {
    const first = await store.put("a", "1");
    await store.put("a", "2");
    await store.delete("a");
    const start = first.header.revision;
    const it = store.watch("a", { startRevision: start, prevKv: true })[Symbol.asyncIterator]();
    const batch = (await it.next()).value as WatchBatch;
    assertEquals(batch.events.map((e) => e.type), ["PUT", "PUT", "DELETE"]);
    assertEquals(batch.events[0].prev_kv, undefined);
    assertEquals(td.decode(batch.events[1].prev_kv!.value), "1");
    assertEquals(td.decode(batch.events[2].prev_kv!.value), "2");
    await store.put("a", "3");
    const live = (await it.next()).value as WatchBatch;
    assertEquals(live.events.map((e) => td.decode(e.kv.value)), ["3"]);
    await it.return?.();
    const deletes = store.watch("a", { startRevision: start, filters: ["NOPUT"] });
    assertEquals(await collect(deletes, 1), [`${start + 2}:a:DELETE`]);
  });
});

Deno.test("Store.watch: a compacted start revision throws with the compacted revision", async () => {
  await withStore(async (store) => {
    await store.put("a", "1");
    const r = await store.put("a", "2");
    await store.compact({ revision: r.header.revision, physical: true });
    await rejects(
      collect(store.watch("a", { startRevision: r.header.revision - 1 }), 1),
      (err: Error & { compactRevision?: number }) =>
        err.message === "etcdserver: mvcc: required revision has been compacted" &&
        err.compactRevision === r.header.revision,
    );
    // From the compacted revision itself, its change is still there.
    assertEquals(await collect(store.watch("a", { startRevision: r.header.revision }), 1), [
      `${r.header.revision}:a:PUT`,
    ]);
  });
});

Deno.test("Store.watch: an abort signal and closing the store end the iteration", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-watch-" });
  const store = await openStore(dir);
  try {
    const abort = new AbortController();
    const aborted = collect(store.watch("x", { signal: abort.signal }), 1);
    const open = collect(store.watch("y"), 1);
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    assertEquals(await aborted, []);
    await store.close();
    assertEquals(await open, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
