/**
 * core/watch without I/O: a hub over an in-memory history, fed by hand,
 * with catch-up steps run explicitly.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Event, KeyValue, WatchResponse } from "../../core/api/types.ts";
import {
  ERR_DUPLICATE_WATCH_ID,
  ERR_EMPTY_WATCHER_RANGE,
  fragments,
  MAX_WATCH_STREAM_RESPONSES,
  WatchHub,
  type WatchSource,
  type WatchSpec,
  type WatchStream,
} from "../../core/watch/mod.ts";
import { protoSize } from "../../core/api/codec.ts";
import { watchSpec } from "../../server/etcdserver/watch.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** An in-memory history: the events of each revision, and a compacted revision. */
class History implements WatchSource {
  events: Event[] = [];
  rev = 1;
  compacted = 0;
  #versions = new Map<string, KeyValue>();

  revision(): number {
    return this.rev;
  }
  compactRevision(): number {
    return this.compacted;
  }
  changes(from: number, to: number, maxEvents: number) {
    const out: Event[] = [];
    let last = from - 1;
    for (const ev of this.events) {
      const r = ev.kv.mod_revision;
      if (r < from || r > to) continue;
      if (r !== last && out.length >= maxEvents) return { events: out, next: r };
      last = r;
      out.push({ type: ev.type, kv: ev.kv });
    }
    return { events: out, next: to + 1 };
  }
  previous(key: Uint8Array, rev: number): KeyValue | undefined {
    return this.events.find((ev) =>
      ev.kv.mod_revision === rev && td.decode(ev.kv.key) === td.decode(key)
    )?.prev_kv;
  }
  /** One revision putting (or deleting, value null) the keys; returns its events. */
  write(changes: [string, string | null][]): Event[] {
    const rev = ++this.rev;
    const evs: Event[] = [];
    for (const [k, v] of changes) {
      const prev = this.#versions.get(k);
      let ev: Event;
      if (v === null) {
        const kv = {
          key: te.encode(k),
          create_revision: 0,
          mod_revision: rev,
          version: 0,
          value: new Uint8Array(),
          lease: 0n,
        };
        ev = { type: "DELETE", kv, prev_kv: prev };
        this.#versions.delete(k);
      } else {
        const kv = {
          key: te.encode(k),
          create_revision: prev?.create_revision ?? rev,
          mod_revision: rev,
          version: (prev?.version ?? 0) + 1,
          value: te.encode(v),
          lease: 0n,
        };
        ev = { type: "PUT", kv, prev_kv: prev };
        this.#versions.set(k, kv);
      }
      evs.push(ev);
    }
    this.events.push(...evs);
    return evs;
  }
}

function setup(syncEvents?: number) {
  const history = new History();
  const tasks: (() => void)[] = [];
  const hub = new WatchHub(history, { schedule: (fn) => tasks.push(fn), syncEvents });
  const open = () =>
    hub.openStream({
      header: (revision) => ({ cluster_id: 1n, member_id: 2n, revision, raft_term: 3 }),
      maxRequestBytes: 1024,
    });
  /** Write and feed one revision. */
  const write = (changes: [string, string | null][]) => {
    const evs = history.write(changes);
    hub.notify(evs, history.rev);
  };
  const runTasks = () => {
    while (tasks.length > 0) tasks.shift()!();
  };
  return { history, hub, open, write, runTasks };
}

function spec(key: string, extra: Partial<WatchSpec> & { prefix?: boolean } = {}): WatchSpec {
  const { prefix, ...rest } = extra;
  const k = te.encode(key);
  let end: Uint8Array | undefined;
  if (prefix) {
    end = k.slice();
    end[end.length - 1]++;
  }
  return {
    ...watchSpec({ key: k }),
    end,
    ...rest,
  };
}

function drain(stream: WatchStream): WatchResponse[] {
  const out: WatchResponse[] = [];
  for (let r = stream.take(); r !== undefined; r = stream.take()) out.push(r);
  return out;
}

/** The (revision, key, type) of every event in responses for watch `id`. */
function seen(responses: WatchResponse[], id = 0): string[] {
  return responses.filter((r) => r.watch_id === id).flatMap((r) =>
    (r.events ?? []).map((ev) => `${ev.kv.mod_revision}:${td.decode(ev.kv.key)}:${ev.type}`)
  );
}

Deno.test("watch: created at the current revision, then the feed's events in order", () => {
  const { open, write } = setup();
  write([["a", "1"]]);
  const s = open();
  s.create(spec("a"));
  write([["a", "2"]]);
  write([["b", "x"]]);
  write([["a", null]]);
  const rs = drain(s);
  assertEquals(rs[0], {
    header: { cluster_id: 1n, member_id: 2n, revision: 2, raft_term: 3 },
    watch_id: 0,
    created: true,
  });
  assertEquals(seen(rs), ["3:a:PUT", "5:a:DELETE"]);
  // No prev_kv unless asked.
  assert(rs.slice(1).every((r) => r.events!.every((ev) => ev.prev_kv === undefined)));
  assertEquals(rs[1].header.revision, 3);
});

Deno.test("watch: prefix, from-key and filters; prev_kv when asked", () => {
  const { open, write } = setup();
  const s = open();
  s.create(spec("p/", { prefix: true, prevKv: true })); // 0
  s.create(spec("p/", { end: new Uint8Array(0), noPut: true })); // 1: from-key, deletes only
  s.create(spec("p/", { prefix: true, noDelete: true })); // 2
  write([["p/1", "a"]]);
  write([["p/1", "b"], ["q", "c"]]);
  write([["p/1", null]]);
  const rs = drain(s);
  assertEquals(seen(rs, 0), ["2:p/1:PUT", "3:p/1:PUT", "4:p/1:DELETE"]);
  assertEquals(seen(rs, 1), ["4:p/1:DELETE"]);
  assertEquals(seen(rs, 2), ["2:p/1:PUT", "3:p/1:PUT"]);
  const del = rs.find((r) => r.watch_id === 0 && r.header.revision === 4)!;
  assertEquals(td.decode(del.events![0].prev_kv!.value), "b");
});

Deno.test("watch: a past start replays history, then joins the feed without gaps or repeats", () => {
  const { open, write, runTasks, hub } = setup(3);
  for (let i = 0; i < 10; i++) write([[`k${i % 3}`, `v${i}`]]);
  const s = open();
  s.create(spec("k", { prefix: true, startRevision: 2 }));
  assertEquals(hub.unsyncedCount, 1);
  write([["k0", "during"]]); // fed while the watcher is still behind
  runTasks();
  write([["k1", "after"]]);
  const revs = seen(drain(s)).map((e) => Number(e.split(":")[0]));
  assertEquals(revs, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  assertEquals(hub.unsyncedCount, 0);
});

Deno.test("watch: a compacted start is created, then canceled with compact_revision", () => {
  const { open, write, runTasks, history } = setup();
  for (let i = 0; i < 5; i++) write([["a", `${i}`]]);
  history.compacted = 4;
  const s = open();
  s.create(spec("a", { startRevision: 3 }));
  s.create(spec("a", { startRevision: 4 }));
  runTasks();
  const rs = drain(s);
  assertEquals(rs[0].created, true);
  assertEquals(rs[1].created, true);
  const canceled = rs.find((r) => r.canceled)!;
  assertEquals(canceled, {
    header: { cluster_id: 1n, member_id: 2n, revision: 0, raft_term: 3 },
    watch_id: 0,
    canceled: true,
    compact_revision: 4,
  });
  assertEquals(seen(rs, 1), ["4:a:PUT", "5:a:PUT", "6:a:PUT"]);
});

Deno.test("watch: a future start waits for its revision", () => {
  const { open, write, runTasks } = setup();
  const s = open();
  s.create(spec("a", { startRevision: 4 }));
  for (let i = 0; i < 4; i++) write([["a", `${i}`]]);
  runTasks();
  assertEquals(seen(drain(s)), ["4:a:PUT", "5:a:PUT"]);
});

Deno.test("watch: IDs — automatic, chosen, duplicate; empty range; cancel", () => {
  const { open } = setup();
  const s = open();
  s.create(spec("a", { watchId: 1 }));
  s.create(spec("a")); // auto: 0
  s.create(spec("a")); // auto: 2 (1 is taken)
  s.create(spec("a", { watchId: 1 }));
  s.create(spec("b", { end: te.encode("a") }));
  s.create(spec("a", { watchId: -3 }));
  s.cancel(2);
  s.cancel(7); // unknown: no answer
  const rs = drain(s);
  assertEquals(rs.map((r) => r.watch_id), [1, 0, 2, -1, -1, -3, 2]);
  assertEquals(rs[3].cancel_reason, ERR_DUPLICATE_WATCH_ID);
  assertEquals(rs[4].cancel_reason, ERR_EMPTY_WATCHER_RANGE);
  assertEquals(rs[6].canceled, true);
});

Deno.test("watch: a stalled stream does not hold up others, and catches up in order later", () => {
  const { open, write, runTasks, hub } = setup(50);
  const slow = open();
  const fast = open();
  slow.create(spec("k", { prefix: true }));
  fast.create(spec("k", { prefix: true }));
  drain(slow);
  drain(fast);
  const total = MAX_WATCH_STREAM_RESPONSES * 3;
  const fastSeen: string[] = [];
  for (let i = 0; i < total; i++) {
    write([[`k${i % 7}`, `${i}`]]);
    fastSeen.push(...seen(drain(fast)));
    runTasks();
  }
  assertEquals(fastSeen.length, total);
  assert(slow.pending <= MAX_WATCH_STREAM_RESPONSES, `slow stream holds ${slow.pending}`);
  assertEquals(hub.unsyncedCount, 1);
  // The slow consumer reads again: it catches up from history.
  const slowSeen: string[] = [];
  for (let round = 0; round < 100 && hub.unsyncedCount > 0; round++) {
    slowSeen.push(...seen(drain(slow)));
    runTasks();
  }
  slowSeen.push(...seen(drain(slow)));
  assertEquals(hub.unsyncedCount, 0);
  assertEquals(slowSeen, fastSeen);
  write([["k1", "live"]]);
  assertEquals(seen(drain(slow)), [`${total + 2}:k1:PUT`]);
});

Deno.test("watch: a feed gap is read from history", () => {
  const { open, write, history, hub, runTasks } = setup();
  const s = open();
  s.create(spec("a"));
  write([["a", "1"]]);
  history.write([["a", "2"]]);
  history.write([["a", "3"]]);
  hub.skip(history.rev);
  runTasks();
  write([["a", "4"]]);
  assertEquals(seen(drain(s)), ["2:a:PUT", "3:a:PUT", "4:a:PUT", "5:a:PUT"]);
});

Deno.test("watch: progress requests wait until the stream's watchers are caught up", () => {
  const { open, write, runTasks, hub } = setup();
  for (let i = 0; i < 3; i++) write([["a", `${i}`]]);
  const s = open();
  s.create(spec("a", { startRevision: 2 }));
  s.progress();
  assertEquals(drain(s).map((r) => r.watch_id), [0]);
  runTasks();
  const rs = drain(s);
  assertEquals(rs.map((r) => r.watch_id), [0, -1]);
  assertEquals(rs[1].header.revision, 4);
  // progress_notify: idle synced watchers get an empty response per interval.
  s.create(spec("b", { progressNotify: true }));
  drain(s);
  hub.progressTick();
  assertEquals(drain(s), [{
    header: { cluster_id: 1n, member_id: 2n, revision: 4, raft_term: 3 },
    watch_id: 1,
  }]);
  write([["b", "x"]]);
  drain(s);
  hub.progressTick(); // events went out in this interval: no notification
  assertEquals(drain(s), []);
  hub.progressTick();
  assertEquals(drain(s).length, 1);
});

Deno.test("watch: fragments stay under the limit, all but the last marked", () => {
  const big = new Uint8Array(300);
  const events: Event[] = Array.from({ length: 10 }, (_, i) => ({
    type: "PUT",
    kv: {
      key: te.encode(`k${i}`),
      create_revision: 2,
      mod_revision: 2,
      version: 1,
      value: big,
      lease: 0n,
    },
  }));
  const r: WatchResponse = {
    header: { cluster_id: 1n, member_id: 2n, revision: 2, raft_term: 3 },
    watch_id: 4,
    events,
  };
  const parts = fragments(r, 1024);
  assert(parts.length > 1);
  assertEquals(parts.flatMap((p) => p.events), events);
  assertEquals(parts.map((p) => p.fragment), [...parts.slice(1).map(() => true), false]);
  for (const p of parts) assert(protoSize("WatchResponse", p) < 1024 || p.events!.length === 1);
  assertEquals(fragments(r, 1 << 20), [r]);
});

Deno.test("watch: a closed stream stops its watchers and ends its reader", async () => {
  const { open, write, hub } = setup();
  const s = open();
  s.create(spec("a"));
  const pending = (async () => {
    const out: (WatchResponse | undefined)[] = [];
    for (;;) {
      const r = await s.next();
      out.push(r);
      if (r === undefined) return out;
    }
  })();
  write([["a", "1"]]);
  await Promise.resolve();
  hub.close();
  const out = await pending;
  assertEquals(out[out.length - 1], undefined);
  assertEquals(hub.size, 0);
});

Deno.test("watch: a stalled watcher whose next revision is compacted meanwhile is canceled", () => {
  const { open, write, runTasks, history, hub } = setup();
  const slow = open();
  const live = open();
  slow.create(spec("k", { prefix: true }));
  live.create(spec("k", { prefix: true }));
  drain(slow);
  drain(live);
  for (let i = 0; i < MAX_WATCH_STREAM_RESPONSES * 2; i++) {
    write([[`k${i % 5}`, `${i}`]]);
    drain(live);
    runTasks();
  }
  assertEquals(hub.unsyncedCount, 1);
  history.compacted = history.rev - 1;
  const delivered = drain(slow); // the client reads again
  runTasks();
  const rest = drain(slow);
  const revs = seen([...delivered, ...rest]).map((e) => Number(e.split(":")[0]));
  // What was queued before the stall, in order, then the cancel.
  assertEquals(revs, Array.from({ length: revs.length }, (_, i) => revs[0] + i));
  assertEquals(rest[rest.length - 1], {
    header: { cluster_id: 1n, member_id: 2n, revision: 0, raft_term: 3 },
    watch_id: 0,
    canceled: true,
    compact_revision: history.compacted,
  });
  assertEquals(hub.size, 1);
  write([["k1", "x"]]);
  assertEquals(drain(slow), []);
  assertEquals(seen(drain(live)).length, 1);
});

Deno.test("watch: the hub tells when it gets its first watcher and loses its last", () => {
  const calls: boolean[] = [];
  const hub = new WatchHub(new History(), { schedule: () => {}, onWatching: (w) => calls.push(w) });
  const s = hub.openStream({
    header: (revision) => ({ cluster_id: 1n, member_id: 2n, revision, raft_term: 3 }),
    maxRequestBytes: 1024,
  });
  s.create(spec("a"));
  s.create(spec("b"));
  s.cancel(0);
  assertEquals(calls, [true]);
  s.close();
  assertEquals(calls, [true, false]);
});
