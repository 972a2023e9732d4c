/**
 * Lock and election through the embedded Store (the service layer a server
 * runs): keys and fencing revisions, mutual exclusion under contention,
 * waiters whose lease ends or whose caller gives up, and elections
 * (campaign, proclaim, leader, resign, observe).
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { EtcdError, GrpcCode, openStore, type Store } from "../../mod.ts";

const te = new TextEncoder();
const td = new TextDecoder();

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-lock-" });
  const store = await openStore(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves once `key` exists. */
async function until(store: Store, key: Uint8Array): Promise<void> {
  while ((await store.range({ key })).kvs.length === 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rejects with an EtcdError of gRPC Unknown whose message matches `re`. */
async function rejectsUnknown(p: Promise<unknown>, re: RegExp): Promise<void> {
  await rejects(p, (err) => {
    assert(err instanceof EtcdError, String(err));
    assertEquals(err.code, GrpcCode.Unknown);
    assert(re.test(err.message), err.message);
    return true;
  });
}

Deno.test("lock: the key is name/<lease hex>; a second lock under the lease reuses it", async () => {
  await withStore(async (store) => {
    await store.leaseGrant({ TTL: 30, ID: 0xabcn });
    const a = await store.lock({ name: te.encode("job"), lease: 0xabcn });
    assertEquals(td.decode(a.key), "job/abc");
    const again = await store.lock({ name: te.encode("job"), lease: 0xabcn });
    assertEquals(td.decode(again.key), "job/abc");
    assertEquals(again.header.revision, a.header.revision);
    const kv = (await store.range({ key: a.key })).kvs[0];
    assertEquals([kv.create_revision, kv.lease], [a.header.revision, 0xabcn]);
    await rejectsUnknown(
      store.lock({ name: te.encode("x"), lease: 7n }),
      /^etcdserver: requested lease not found$/,
    );
    await rejectsUnknown(store.unlock({ key: new Uint8Array() }), /key is not provided/);
    const u = await store.unlock({ key: a.key });
    assertEquals((await store.range({ key: a.key })).kvs, []);
    assertEquals(u.header.revision, a.header.revision + 1);
  });
});

Deno.test("lock: lease 0 holds the lock under a new 60 s lease", async () => {
  await withStore(async (store) => {
    const a = await store.lock({ name: te.encode("n") });
    const kv = (await store.range({ key: a.key })).kvs[0];
    assertEquals(td.decode(a.key), "n/" + kv.lease.toString(16));
    const ttl = await store.leaseTimeToLive({ ID: kv.lease });
    assertEquals(ttl.grantedTTL, 60);
  });
});

Deno.test("lock: 40 contending callers hold it one at a time, in fencing order", async () => {
  await withStore(async (store) => {
    const name = te.encode("contended");
    let holders = 0;
    let counter = 0;
    const fences: number[] = [];
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const ID = BigInt(i + 1);
      await store.leaseGrant({ TTL: 30, ID });
      const { key } = await store.lock({ name, lease: ID });
      holders++;
      assertEquals(holders, 1, "two holders at once");
      const fence = (await store.range({ key })).kvs[0].create_revision;
      const prev = await store.put(te.encode("fence"), String(fence), { prev_kv: true });
      if (prev.prev_kv) assert(Number(td.decode(prev.prev_kv.value)) < fence, "fence went back");
      fences.push(fence);
      const read = counter;
      await new Promise((r) => setTimeout(r, 1));
      counter = read + 1;
      holders--;
      await store.unlock({ key });
    }));
    assertEquals(counter, 40);
    assertEquals(fences, fences.toSorted((a, b) => a - b));
  });
});

Deno.test("lock: a waiter whose lease ends leaves the queue with etcd's error", async () => {
  await withStore(async (store) => {
    const name = te.encode("q");
    await store.leaseGrant({ TTL: 30, ID: 1n });
    await store.leaseGrant({ TTL: 2, ID: 2n });
    await store.leaseGrant({ TTL: 30, ID: 3n });
    const holder = await store.lock({ name, lease: 1n });
    const started = Date.now();
    const expiring = store.lock({ name, lease: 2n });
    await until(store, te.encode("q/2"));
    const third = store.lock({ name, lease: 3n });
    await until(store, te.encode("q/3"));
    // Fails when its key goes with the lease, while the holder still holds.
    await rejectsUnknown(expiring, /^mutex: session is expired$/);
    assert(Date.now() - started < 5000);
    assertEquals((await store.range({ key: te.encode("q/2") })).kvs, []);
    await store.unlock({ key: holder.key });
    assertEquals(td.decode((await third).key), "q/3");
  });
});

Deno.test("lock: a caller that gives up leaves the queue", async () => {
  await withStore(async (store) => {
    const name = te.encode("g");
    await store.leaseGrant({ TTL: 30, ID: 1n });
    await store.leaseGrant({ TTL: 30, ID: 2n });
    await store.lock({ name, lease: 1n });
    const abort = new AbortController();
    const waiting = store.lock({ name, lease: 2n }, abort.signal);
    await until(store, te.encode("g/2"));
    abort.abort();
    await rejects(waiting, /context canceled/);
    assertEquals((await store.range({ key: te.encode("g/2") })).kvs, []);
  });
});

Deno.test("election: campaign, proclaim, leader, resign, and observe", async () => {
  await withStore(async (store) => {
    const name = te.encode("e");
    await store.leaseGrant({ TTL: 30, ID: 0x10n });
    await store.leaseGrant({ TTL: 30, ID: 0x20n });
    await rejectsUnknown(store.leader({ name }), /^election: no leader$/);
    const abort = new AbortController();
    const seen: string[] = [];
    const observed = (async () => {
      for await (const r of store.observe({ name }, abort.signal)) {
        seen.push(`${td.decode(r.kv.key)}=${td.decode(r.kv.value)}@${r.header.revision}`);
      }
    })();
    const a = await store.campaign({ name, lease: 0x10n, value: te.encode("a1") });
    assertEquals(td.decode(a.leader.key), "e/10");
    assertEquals([a.leader.rev, a.leader.lease], [a.header.revision, 0x10n]);
    const p = await store.proclaim({ leader: a.leader, value: te.encode("a2") });
    assertEquals(td.decode((await store.leader({ name })).kv.value), "a2");
    await rejectsUnknown(
      store.proclaim({ leader: { ...a.leader, rev: 1 }, value: te.encode("x") }),
      /^election: not leader$/,
    );
    await rejectsUnknown(store.proclaim({ value: te.encode("x") }), /"leader" field/);
    const b = store.campaign({ name, lease: 0x20n, value: te.encode("b1") });
    await until(store, te.encode("e/20"));
    // The leader's lease ends: its key goes, and the next candidate is elected.
    await store.leaseRevoke({ ID: 0x10n });
    const elected = await b;
    assertEquals(td.decode(elected.leader.key), "e/20");
    const r = await store.resign({ leader: elected.leader });
    await rejectsUnknown(store.leader({ name }), /^election: no leader$/);
    while (seen.length < 3) await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    await observed;
    assertEquals(seen, [
      `e/10=a1@${a.header.revision}`,
      `e/10=a2@${p.header.revision}`,
      `e/20=b1@${p.header.revision + 2}`,
    ]);
    assert(r.header.revision > elected.header.revision);
  });
});
