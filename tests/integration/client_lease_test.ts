/**
 * The Lease helper against a real cairn server (over the HTTP Client) and
 * against the embedded Store: a kept-alive lease holds its key past several
 * TTLs; once the keep-alive is aborted, the lease expires and the key goes.
 * A Session's close revokes its lease at once.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Client } from "../../client/mod.ts";
import { Lease, type LeaseApi, Session } from "../../client/lease.ts";
import { openStore, type Store } from "../../mod.ts";
import { startCairn } from "../servers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the test needs of a Store or a Client besides the lease calls. */
type Kv = LeaseApi & Pick<Store, "put" | "get">;

/** Polls until `key` is gone; returns the milliseconds it took, or Infinity after `limitMs`. */
async function untilGone(kv: Kv, key: string, limitMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if ((await kv.get(key)).count === 0) return Date.now() - start;
    await sleep(50);
  }
  return Infinity;
}

async function keptAliveThenExpires(kv: Kv): Promise<void> {
  const lease = await new Lease(kv).grant(2);
  assertEquals(lease.ttl, 2);
  await kv.put("lk", "v", { lease: lease.id });
  const stop = new AbortController();
  const ka = lease.keepAlive({ signal: stop.signal });
  const renewals: number[] = [];
  const reading = (async () => {
    for await (const r of ka) renewals.push(r.TTL);
  })();
  // Three TTLs: the key would be gone after the first without renewals.
  await sleep(6_000);
  assertEquals((await kv.get("lk")).count, 1, "the key outlives several TTLs");
  // Every 2/3 s: about 9 renewals in 6 s.
  assertEquals(renewals.length >= 7 && renewals.every((t) => t === 2), true, `${renewals}`);
  stop.abort();
  await ka.done;
  await reading;
  const took = await untilGone(kv, "lk", 5_000);
  assertEquals(took < 3_500, true, `key gone ${took} ms after the last renewal stopped`);
  assertEquals((await lease.timeToLive()).TTL, -1);
}

async function sessionCloseRevokes(kv: Kv): Promise<void> {
  const session = await Session.create(kv, { ttl: 30 });
  await kv.put("sk", "v", { lease: session.lease });
  await session.close();
  await session.done;
  assertEquals((await kv.get("sk")).count, 0);
}

Deno.test("Lease over Client: keepAlive holds a key past several TTLs; after abort it goes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-lease-" });
  const server = await startCairn(`${dir}/data`);
  try {
    const client = new Client({ endpoints: [server.url] });
    await keptAliveThenExpires(client);
    await sessionCloseRevokes(client);
  } finally {
    await server.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Lease over the embedded Store: the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-lease-store-" });
  const store = await openStore(`${dir}/data`);
  try {
    await keptAliveThenExpires(store);
    await sessionCloseRevokes(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
