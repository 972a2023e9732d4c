/**
 * Leases: core/lease on a hand-driven clock, then a member's lease service
 * (grant, attach, revoke in one revision, expiry, keep-alive, checkpoints
 * across a restart).
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { Lessor } from "../../core/lease/mod.ts";
import { LEASE_EXPIRY_SLACK_MS } from "../../core/limits.ts";
import { memberId } from "../../server/ids.ts";
import { openMember } from "../../server/member.ts";

const te = new TextEncoder();
const td = new TextDecoder();

Deno.test("lessor: grant raises the TTL to the minimum, refuses duplicates and huge TTLs", () => {
  let now = 1000;
  const lessor = new Lessor({ now: () => now, minTtl: 2 });
  assertEquals(lessor.grant(1n, 1).ttl, 2);
  assertEquals(lessor.grant(2n, -5).ttl, 2);
  assertEquals(lessor.grant(3n, 10).ttl, 10);
  throws(() => lessor.grant(3n, 10), /lease already exists/);
  throws(() => lessor.grant(4n, 9_000_000_001), /too large lease TTL/);
  assertEquals(lessor.grant(5n, 9_000_000_000).ttl, 9_000_000_000);
  // Read in the millisecond of the grant: etcd's clock would have moved on
  // by some nanoseconds, so it reads 1 s less than the TTL.
  assertEquals(lessor.remainingSeconds(3n), 9);
  now += 1;
  assertEquals(lessor.remainingSeconds(3n), 9);
  now += 1499;
  assertEquals(lessor.remainingSeconds(3n), 8); // 8.5 s left, truncated as etcd does
});

Deno.test("lessor: leases fall due in expiry order, never early; renewals and retries", () => {
  let now = 0;
  const S = LEASE_EXPIRY_SLACK_MS;
  const lessor = new Lessor({ now: () => now, minTtl: 1 });
  lessor.grant(1n, 3);
  lessor.grant(2n, 1);
  lessor.grant(3n, 2);
  now = 999 + S;
  assertEquals(lessor.due(10), []);
  now = 1000 + S;
  assertEquals(lessor.due(10), [2n]);
  assertEquals(lessor.due(10), []); // being revoked
  assertEquals(lessor.renew(2n), undefined);
  assertEquals(lessor.renew(3n), 2); // expires at 3000 + 2S now
  now = 2999 + S;
  assertEquals(lessor.due(10), []);
  now = 3000 + 2 * S;
  assertEquals(lessor.due(10).sort(), [1n, 3n]);
  lessor.retry(1n);
  assertEquals(lessor.due(1), [1n]);
  // An expired lease is not renewed, even before it is found due.
  lessor.grant(9n, 1);
  now += 1000 + S;
  assertEquals(lessor.renew(9n), undefined);
  assertEquals(lessor.revoke(2n), []);
  throws(() => lessor.revoke(2n), /requested lease not found/);
});

Deno.test("lessor: checkpoints record what changed; a renewed lease clears its record", () => {
  let now = 0;
  const lessor = new Lessor({ now: () => now, minTtl: 1 });
  lessor.grant(1n, 10);
  assertEquals(lessor.checkpoints(10), []); // full TTL left
  now = 3500;
  assertEquals(lessor.checkpoints(10), [{ id: 1n, remaining: 7 }]);
  lessor.checkpoint(1n, 7);
  assertEquals(lessor.checkpoints(10), []);
  lessor.renew(1n);
  assertEquals(lessor.checkpoints(10), [{ id: 1n, remaining: 0 }]);
  // A restored lease expires after its recorded remaining TTL.
  const again = new Lessor({ now: () => now, minTtl: 1 });
  again.restore(1n, 10, 7);
  now += 6999 + LEASE_EXPIRY_SLACK_MS;
  assertEquals(again.due(10), []);
  now += 1;
  assertEquals(again.due(10), [1n]);
});

async function withMember(
  dir: string,
  fn: (m: Awaited<ReturnType<typeof openMember>>) => Promise<void>,
): Promise<void> {
  const id = memberId(["http://localhost:2380"], "etcd-cluster");
  const m = await openMember(dir, { memberId: id, clusterId: id }, {
    maxTxnOps: 128,
    maxRequestBytes: 1572864,
  }, { leaseCheckpointMs: 200 });
  try {
    await fn(m);
  } finally {
    await m.close();
  }
}

Deno.test("lease service: keys attach, revoke deletes them all in one revision", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-lease-" });
  try {
    await withMember(dir, async ({ service }) => {
      const { ID } = await service.lease.grant({ TTL: 60, ID: 7n });
      assertEquals(ID, 7n);
      await rejects(service.lease.grant({ TTL: 60, ID: 7n }), /lease already exists/);
      await rejects(service.put({ key: te.encode("x"), lease: 8n }), /requested lease not found/);
      for (const k of ["a", "b", "c"]) {
        await service.put({ key: te.encode(k), value: te.encode(k), lease: ID });
      }
      await service.put({ key: te.encode("c"), value: te.encode("no lease") }); // detaches c
      const ttl = await service.lease.timeToLive({ ID, keys: true });
      assertEquals(ttl.keys.map((k) => td.decode(k)), ["a", "b"]);
      assertEquals(ttl.grantedTTL, 60);
      assert(ttl.TTL === 59 || ttl.TTL === 60, String(ttl.TTL));
      const before = (await service.range({ key: te.encode("a") })).header.revision;
      await service.lease.revoke({ ID });
      const after = await service.range({ key: te.encode("a"), range_end: te.encode("z") });
      assertEquals(after.header.revision, before + 1); // one revision for both deletes
      assertEquals(after.kvs.map((kv) => td.decode(kv.key)), ["c"]);
      assertEquals((await service.lease.timeToLive({ ID })).TTL, -1);
      await rejects(service.lease.revoke({ ID }), /requested lease not found/);
      assertEquals((await service.lease.keepAlive({ ID })).TTL, 0);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("lease service: an unrenewed lease's key goes after its TTL, a renewed one stays", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-lease-" });
  try {
    await withMember(dir, async ({ service }) => {
      const t0 = performance.now();
      const short = await service.lease.grant({ TTL: 2, ID: 1n });
      const kept = await service.lease.grant({ TTL: 2, ID: 2n });
      const granted = performance.now();
      await service.put({ key: te.encode("short"), value: te.encode("1"), lease: short.ID });
      await service.put({ key: te.encode("kept"), value: te.encode("1"), lease: kept.ID });
      const has = async (k: string) => (await service.range({ key: te.encode(k) })).count === 1;
      let goneAt: number | undefined;
      while (performance.now() - t0 < 5000) {
        const now = performance.now();
        if (!await has("short")) {
          goneAt ??= now;
          break;
        }
        await service.lease.keepAlive({ ID: kept.ID });
        await new Promise((r) => setTimeout(r, 10));
      }
      assert(goneAt !== undefined, "the unrenewed lease's key went");
      // Never before the TTL counted from the grant's answer; at most 250 ms late.
      assert(goneAt >= granted + 2000, `gone ${goneAt - granted} ms after the grant`);
      assert(goneAt <= t0 + 2000 + 250, `gone ${goneAt - t0} ms after the grant was asked`);
      assert(await has("kept"), "the renewed lease's key stays");
      assertEquals((await service.lease.timeToLive({ ID: short.ID })).TTL, -1);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("lease service: a restart keeps each lease's remaining TTL and its keys", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-lease-" });
  try {
    await withMember(dir, async ({ service }) => {
      await service.lease.grant({ TTL: 30, ID: 5n });
      await service.lease.grant({ TTL: 30, ID: 6n });
      await service.put({ key: te.encode("k"), value: te.encode("v"), lease: 5n });
      // Let at least 2 s pass and a checkpoint record it.
      await new Promise((r) => setTimeout(r, 2500));
    });
    await withMember(dir, async ({ service }) => {
      const ttl = await service.lease.timeToLive({ ID: 5n, keys: true });
      assert(ttl.TTL <= 28 && ttl.TTL >= 25, `remaining ${ttl.TTL} s after the restart`);
      assertEquals(ttl.grantedTTL, 30);
      assertEquals(ttl.keys.map((k) => td.decode(k)), ["k"]);
      assertEquals((await service.lease.leases()).leases.map((l) => l.ID).sort(), [5n, 6n]);
      await service.lease.revoke({ ID: 5n });
      assertEquals((await service.range({ key: te.encode("k") })).count, 0);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("lease service: 5,000 leases expiring at once all go, while writes keep being served", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-lease-" });
  try {
    await withMember(dir, async ({ service }) => {
      const N = 5000;
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const { ID } = await service.lease.grant({ TTL: 2, ID: BigInt(i + 1) });
        await service.put({ key: te.encode(`l/${i}`), value: te.encode("v"), lease: ID });
      }));
      let writes = 0;
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          await service.put({ key: te.encode("w"), value: te.encode(String(writes)) });
          writes++;
        }
      })();
      const start = performance.now();
      let left = N;
      while (left > 0 && performance.now() - start < 15_000) {
        await new Promise((r) => setTimeout(r, 100));
        left = (await service.range({
          key: te.encode("l/"),
          range_end: te.encode("l0"),
          count_only: true,
        })).count;
      }
      const writesDuringExpiry = writes;
      stop = true;
      await writer;
      assertEquals(left, 0);
      assertEquals((await service.lease.leases()).leases.length, 0);
      assert(writesDuringExpiry > 0, "writes went on during the expiry");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("lessor: with more leases than a round takes, every lease gets its checkpoint in turn", () => {
  let now = 0;
  const lessor = new Lessor({ now: () => now, minTtl: 1 });
  for (let i = 1n; i <= 5n; i++) lessor.grant(i, 100);
  now = 10_000;
  const first = lessor.checkpoints(2).map((c) => c.id);
  const second = lessor.checkpoints(2).map((c) => c.id);
  const third = lessor.checkpoints(2).map((c) => c.id);
  assertEquals([...first, ...second, ...third].slice(0, 5).sort(), [1n, 2n, 3n, 4n, 5n]);
});
