/**
 * The MVCC tables against themselves: every revision's full keyspace is
 * recorded when it is current (read from `current`), and must read back the
 * same later at that revision (from `current` and `history` together), before
 * and after compactions; a compaction must leave exactly the versions a read
 * at or above its revision can still see.
 */
import assert from "node:assert/strict";
import type { Backend } from "../../core/backend.ts";
import { compactHistory } from "../../core/mvcc/compact.ts";
import {
  decodeRecord,
  encodeRecord,
  historyKey,
  historyKeyRevision,
  historyKeyUserKey,
} from "../../core/mvcc/encoding.ts";
import type { KeyValue } from "../../core/api/types.ts";
import { Meta, ReadView, RECORD_FORMAT, type ViewState, WriteView } from "../../core/mvcc/view.ts";
import { openBackend } from "../../native/lmdb.ts";
import { openMember } from "../../server/member.ts";

const enc = new TextEncoder();
const ALL = new Uint8Array([0]);
const EVERYTHING = new Uint8Array(0); // rangeKeys' "no upper bound"
const KEYS = ["a", "a\0", "a\0b", "ab", "b", "c", "d\0\0"].map((k) => enc.encode(k));

function brief(kvs: KeyValue[]): string[] {
  return kvs.map((kv) =>
    `${JSON.stringify(new TextDecoder().decode(kv.key))}=${new TextDecoder().decode(kv.value)}` +
    `@${kv.create_revision}/${kv.mod_revision}/v${kv.version}/l${kv.lease}`
  );
}

/** A tiny seeded PRNG (mulberry32). */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function withBackend(fn: (b: Backend) => Promise<void>) {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-history-" });
  const b = openBackend(dir);
  try {
    await b.write(() => b.putMeta(Meta.revision, 1));
    await fn(b);
  } finally {
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Runs write transactions the way the applier does, keeping the view state. */
function writer(b: Backend) {
  let state: ViewState = { revision: 1, compactRevision: 0 };
  return {
    get state() {
      return state;
    },
    async txn(fn: (w: WriteView) => void) {
      state = await b.write(() => {
        const w = new WriteView(b, state);
        fn(w);
        const end = w.end();
        if (end.revision !== state.revision) b.putMeta(Meta.revision, end.revision);
        return end;
      });
    },
  };
}

function records(b: Backend, table: "current" | "history"): number {
  let n = 0;
  for (const _ of b.scan(table, {})) n++;
  return n;
}

Deno.test("history: every revision reads back as it was, before and after compactions", async () => {
  for (const seed of [1, 2, 3, 4]) {
    await withBackend(async (b) => {
      const rand = prng(seed);
      const pick = () => KEYS[Math.floor(rand() * KEYS.length)];
      const w = writer(b);
      // snapshots[rev] = the whole keyspace while rev was current.
      const snapshots: string[][] = [];
      const snap = () => {
        const v = new ReadView(b, w.state);
        snapshots[w.state.revision] = brief(v.rangeKeys(ALL, EVERYTHING).kvs);
      };
      snap();
      for (let i = 0; i < 120; i++) {
        const r = rand();
        await w.txn((v) => {
          if (r < 0.55) v.put(pick(), enc.encode(`v${i}`), BigInt(i % 3));
          else if (r < 0.7) v.deleteRange(pick(), undefined);
          else if (r < 0.8) v.deleteRange(pick(), pick());
          else if (r < 0.9) {
            // Several keys in one revision.
            v.put(pick(), enc.encode(`m${i}`), 0n);
            v.put(pick(), enc.encode(`n${i}`), 0n);
          } else {
            // Delete then recreate in one revision (the API's txn check
            // forbids it, the tables must still hold it).
            const k = pick();
            v.deleteRange(k, undefined);
            v.put(k, enc.encode(`r${i}`), 0n);
          }
        });
        snap();
      }
      const check = (from: number) => {
        const v = new ReadView(b, w.state);
        for (let rev = from; rev <= w.state.revision; rev++) {
          if (snapshots[rev] === undefined) continue;
          assert.deepEqual(
            brief(v.rangeKeys(ALL, EVERYTHING, { rev }).kvs),
            snapshots[rev],
            `seed ${seed}: range at ${rev}`,
          );
          const expected = new Map(snapshots[rev].map((s) => [s.split("=")[0], s]));
          for (const key of KEYS) {
            const got = brief(v.rangeKeys(key, undefined, { rev }).kvs);
            const want = expected.get(JSON.stringify(new TextDecoder().decode(key)));
            assert.deepEqual(
              got,
              want === undefined ? [] : [want],
              `seed ${seed}: ${key} at ${rev}`,
            );
          }
          // A sub-range and a limit, against the same snapshot.
          const sub = brief(v.rangeKeys(KEYS[1], KEYS[4], { rev, limit: 2 }).kvs);
          const inSub = snapshots[rev].filter((s) => {
            const k = JSON.parse(s.split("=")[0]) as string;
            return k >= "a\0" && k < "b";
          });
          assert.deepEqual(sub, inSub.slice(0, 2), `seed ${seed}: sub-range at ${rev}`);
          assert.equal(
            v.rangeKeys(KEYS[1], KEYS[4], { rev, countOnly: true }).count,
            inSub.length,
          );
        }
      };
      check(1);
      const live = records(b, "current");
      for (const at of [20, 21, 60, w.state.revision - 3, w.state.revision]) {
        await w.txn((v) => v.setCompactRevision(at));
        await compactHistory(b, at, { batchSize: 7 });
        check(at);
        // What is left: the live records, the versions above the compaction,
        // and per key the one visible at it when that is an older version.
        let needed = 0;
        const v = new ReadView(b, w.state);
        for (const kv of v.rangeKeys(ALL, EVERYTHING, { rev: at }).kvs) {
          const now = v.rangeKeys(kv.key, undefined).kvs[0];
          if (now === undefined || now.mod_revision !== kv.mod_revision) needed++;
        }
        let above = 0;
        for (const e of b.scan("history", {})) {
          const view = new DataView(e.key.buffer, e.key.byteOffset + e.key.length - 8, 8);
          if (Number(view.getBigUint64(0)) > at) above++;
        }
        assert.equal(records(b, "current"), live);
        assert.equal(records(b, "history"), needed + above, `seed ${seed}: history after ${at}`);
      }
    });
  }
});

Deno.test("history: a live version is stored once, in current", async () => {
  await withBackend(async (b) => {
    const w = writer(b);
    for (const key of KEYS) await w.txn((v) => v.put(key, enc.encode("1"), 0n));
    assert.equal(records(b, "current"), KEYS.length);
    assert.equal(records(b, "history"), 0);
    await w.txn((v) => v.put(KEYS[0], enc.encode("2"), 0n));
    await w.txn((v) => v.deleteRange(KEYS[1], undefined));
    // The superseded version of KEYS[0]; KEYS[1]'s last version and its tombstone.
    assert.equal(records(b, "history"), 3);
    assert.equal(records(b, "current"), KEYS.length - 1);
  });
});

Deno.test("encoding: history keys give back their user key and revision; records keep every field", () => {
  for (const key of [[], [0], [0, 0], [1, 0, 0xff, 0], [0xff, 0xff], [7, 8, 9]]) {
    for (const rev of [1, 127, 128, 2 ** 31, 2 ** 53 - 1]) {
      const hk = historyKey(new Uint8Array(key), rev);
      assert.deepEqual([...historyKeyUserKey(hk)], key);
      assert.equal(historyKeyRevision(hk), rev);
    }
  }
  for (const n of [0, 1, 127, 128, 16383, 16384, 2 ** 32 + 5, 2 ** 53 - 1]) {
    for (const lease of [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
      const kv = {
        key: enc.encode("k"),
        create_revision: n,
        mod_revision: n + (n < 2 ** 53 - 1 ? 1 : 0),
        version: n,
        value: enc.encode("value"),
        lease,
      };
      for (const deleted of [false, true]) {
        const back = decodeRecord(kv.key, encodeRecord(kv, deleted));
        assert.equal(back.deleted, deleted);
        assert.deepEqual(back.kv, kv);
        assert.equal(decodeRecord(kv.key, encodeRecord(kv, deleted), true).kv.value.length, 0);
      }
    }
  }
  // A record is the value plus a few bytes: flags, three varints, no key.
  const small = encodeRecord({
    key: enc.encode("a/long/key/that/is/not/stored/in/the/record"),
    create_revision: 5,
    mod_revision: 300,
    version: 2,
    value: new Uint8Array(10),
    lease: 0n,
  }, false);
  assert.equal(small.length, 1 + 1 + 2 + 1 + 10);
});

Deno.test("store: a data dir in another record format is refused at open, not misread", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-format-" });
  try {
    const m = await openMember(dir, { memberId: 1n, clusterId: 2n }, {
      maxTxnOps: 128,
      maxRequestBytes: 1572864,
    });
    assert.equal(m.backend.getMeta(Meta.recordFormat), RECORD_FORMAT);
    await m.close();
    // A store from before the format was recorded.
    const b = openBackend(`${dir}/member`);
    await b.write(() => b.putMeta(Meta.recordFormat, undefined));
    await b.close();
    await assert.rejects(
      openMember(dir, { memberId: 1n, clusterId: 2n }, {
        maxTxnOps: 128,
        maxRequestBytes: 1572864,
      }),
      /holds records in format 1; this cairn reads format 2 only/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
