/**
 * Seeded random differential test: a deterministic stream of puts, deletes,
 * txns (random compares, nested txns, every op kind) and ranges with random
 * options over a small key space, sent to real etcd 3.4 and to cairn from
 * the same fresh start. Every response must match byte for byte except
 * cluster_id, member_id and raft_term. A failure names the seed and the
 * request, so it replays exactly.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { b64, compatName, HAVE_ETCD, withPair } from "./harness.ts";

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [1, 2, 3, 4, 5];
const OPS_PER_SEED = 300;

class Gen {
  #r: () => number;
  constructor(seed: number) {
    this.#r = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  key(): string {
    return `r/${this.pick(["a", "b", "c", "d", "e", "f", "g", "h"])}${this.int(4)}`;
  }
  /** A key range: a single key, a prefix, from-key or everything. */
  span(): { key: string; range_end?: string } {
    switch (this.int(4)) {
      case 0:
        return { key: b64(this.key()) };
      case 1: {
        const p = `r/${this.pick(["a", "b", "c", "d", "e", "f", "g", "h"])}`;
        return {
          key: b64(p),
          range_end: b64(p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1)),
        };
      }
      case 2:
        return { key: b64(this.key()), range_end: b64([0]) };
      default:
        return { key: b64([0]), range_end: b64([0]) };
    }
  }
  value(): string {
    // Few distinct values, so value sorts and compares have ties.
    return b64(this.pick(["", "x", "y", "zz", "x", "long-value-" + this.int(3)]));
  }
  range(rev: number): Record<string, unknown> {
    const r: Record<string, unknown> = { ...this.span() };
    if (this.chance(0.4)) r.limit = this.int(6);
    if (this.chance(0.4)) r.sort_order = this.pick(["NONE", "ASCEND", "DESCEND"]);
    if (this.chance(0.4)) r.sort_target = this.pick(["KEY", "VERSION", "CREATE", "MOD", "VALUE"]);
    if (this.chance(0.15)) r.keys_only = true;
    if (this.chance(0.1)) r.count_only = true;
    if (this.chance(0.2)) r.revision = Math.max(0, rev - this.int(10));
    if (this.chance(0.1)) r.min_mod_revision = Math.max(0, rev - this.int(20));
    if (this.chance(0.1)) r.max_create_revision = Math.max(0, rev - this.int(20));
    if (this.chance(0.1)) r.serializable = true;
    return r;
  }
  put(): Record<string, unknown> {
    const p: Record<string, unknown> = { key: b64(this.key()), value: this.value() };
    if (this.chance(0.3)) p.prev_kv = true;
    if (this.chance(0.05)) {
      delete p.value;
      p.ignore_value = true;
    }
    return p;
  }
  del(): Record<string, unknown> {
    return { ...this.span(), prev_kv: this.chance(0.5) };
  }
  compare(rev: number): Record<string, unknown> {
    const target = this.pick(["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]);
    const c: Record<string, unknown> = {
      result: this.pick(["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]),
      target,
      key: b64(this.key()),
    };
    if (this.chance(0.2)) {
      const s = this.span();
      c.key = s.key;
      if (s.range_end) c.range_end = s.range_end;
    }
    if (target === "VERSION") c.version = this.int(4);
    if (target === "CREATE") c.create_revision = Math.max(0, rev - this.int(rev + 1));
    if (target === "MOD") c.mod_revision = Math.max(0, rev - this.int(rev + 1));
    if (target === "VALUE") c.value = this.value();
    if (target === "LEASE") c.lease = 0;
    return c;
  }
  ops(rev: number, depth: number): unknown[] {
    const n = this.int(4);
    const out: unknown[] = [];
    const written = new Set<string>();
    for (let i = 0; i < n; i++) {
      const kind = this.int(depth > 0 ? 3 : 4);
      if (kind === 0) out.push({ request_range: this.range(rev) });
      else if (kind === 1) {
        const p = this.put();
        // Mostly avoid the duplicate-key error so writes go through.
        if (written.has(p.key as string) && this.chance(0.8)) continue;
        written.add(p.key as string);
        out.push({ request_put: p });
      } else if (kind === 2) out.push({ request_range: this.range(rev) });
      else out.push({ request_txn: this.txn(rev, depth + 1) });
    }
    return out;
  }
  txn(rev: number, depth = 0): Record<string, unknown> {
    const compare = Array.from({ length: this.int(3) }, () => this.compare(rev));
    return { compare, success: this.ops(rev, depth), failure: this.ops(rev, depth) };
  }
}

Deno.test({
  name: compatName("compat: seeded random KV operations match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    for (const seed of SEEDS) {
      await t.step(`seed ${seed}`, async () => {
        await withPair(async (pair) => {
          const g = new Gen(seed);
          let rev = 1;
          for (let i = 0; i < OPS_PER_SEED; i++) {
            const kind = g.int(10);
            let res;
            if (kind < 3) res = await pair.post("/v3/kv/put", g.put());
            else if (kind < 4) res = await pair.post("/v3/kv/deleterange", g.del());
            else if (kind < 6) res = await pair.post("/v3/kv/txn", g.txn(rev));
            else if (kind < 9) res = await pair.post("/v3/kv/range", g.range(rev));
            else if (g.chance(0.3)) {
              res = await pair.post("/v3/kv/compaction", {
                revision: Math.max(1, rev - g.int(15)),
              });
            } else res = await pair.post("/v3/kv/range", g.range(rev));
            const m = /"revision":"(\d+)"/.exec(res.body);
            if (m) rev = Number(m[1]);
          }
          assertEquals(pair.takeDiffs(), [], `seed ${seed}`);
        });
      });
    }
  },
});
