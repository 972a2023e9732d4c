/**
 * Mutex and Election (client/concurrency.ts) over the embedded Store and
 * over a real cairn server through the HTTP Client: a second Mutex on the
 * same name waits until the first unlocks, and holds with a higher fencing
 * revision; a waiter that gives up leaves nothing behind; an observer sees
 * each leader and each proclamation, in order.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Client } from "../../client/mod.ts";
import { type ConcurrencyApi, Election, Mutex } from "../../client/concurrency.ts";
import { type LeaseApi, Session } from "../../client/lease.ts";
import { openStore } from "../../mod.ts";
import { startCairn } from "../servers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();

type Api = ConcurrencyApi & LeaseApi;

/** Whether `p` settles within `ms` milliseconds. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function mutexExcludes(api: Api): Promise<void> {
  const s1 = await Session.create(api, { ttl: 10 });
  const s2 = await Session.create(api, { ttl: 10 });
  try {
    const m1 = new Mutex(api, s1, "mx");
    const m2 = new Mutex(api, s2, "mx");
    await m1.lock();
    assertEquals(m1.held, true);
    assertEquals(m1.key, `mx/${s1.lease.toString(16)}`);
    const first = m1.revision;
    assertEquals(first > 0, true);
    const second = m2.lock();
    assertEquals(await settlesWithin(second, 500), false, "the second waits while the first holds");
    await m1.unlock();
    assertEquals(m1.held, false);
    assertEquals(
      await settlesWithin(second, 5_000),
      true,
      "the second holds once the first unlocks",
    );
    await second;
    assertEquals(m2.key, `mx/${s2.lease.toString(16)}`);
    assertEquals(m2.revision > first, true, "fencing revisions rise");

    // A third that gives up leaves no key behind; the holder is unaffected.
    const s3 = await Session.create(api, { ttl: 10 });
    const m3 = new Mutex(api, s3, "mx");
    const stop = new AbortController();
    const third = m3.lock({ signal: stop.signal });
    assertEquals(await settlesWithin(third, 300), false);
    stop.abort();
    let failed = false;
    await third.catch(() => failed = true);
    assertEquals(failed, true, "an aborted lock rejects");
    const key3 = new TextEncoder().encode(`mx/${s3.lease.toString(16)}`);
    let left = 1;
    for (let i = 0; i < 40 && left > 0; i++) {
      left = (await api.range({ key: key3 })).kvs.length;
      if (left > 0) await sleep(50);
    }
    assertEquals(left, 0, "the aborted waiter's key is gone");
    await s3.close();
    const secondRev = m2.revision;
    await m2.unlock();
    // Locked again by the first, now with a higher revision still.
    await m1.lock();
    assertEquals(m1.revision > secondRev, true);
    await m1.unlock();
  } finally {
    await s1.close();
    await s2.close();
  }
}

async function electionObserved(api: Api): Promise<void> {
  const s1 = await Session.create(api, { ttl: 10 });
  const s2 = await Session.create(api, { ttl: 10 });
  const stop = new AbortController();
  try {
    const e1 = new Election(api, s1, "el");
    const e2 = new Election(api, s2, "el");
    const seen: string[] = [];
    const watching = (async () => {
      for await (const r of new Election(api, s1, "el").observe({ signal: stop.signal })) {
        seen.push(dec.decode(r.kv.value));
      }
    })();
    await e1.campaign("a");
    assertEquals(e1.key, `el/${s1.lease.toString(16)}`);
    const second = e2.campaign("b");
    assertEquals(await settlesWithin(second, 500), false, "the second candidate waits");
    await e1.proclaim("a2");
    assertEquals(dec.decode((await e2.leader()).kv.value), "a2");
    const firstRev = e1.revision;
    await e1.resign();
    await second;
    assertEquals(e2.revision > firstRev, true);
    assertEquals(dec.decode((await e1.leader()).kv.value), "b");
    let notLeader = "";
    await e1.proclaim("x").catch((e) => notLeader = (e as Error).message);
    assertEquals(notLeader, "election: not leader");
    for (let i = 0; i < 100 && seen.length < 3; i++) await sleep(50);
    assertEquals(seen, ["a", "a2", "b"]);
    stop.abort();
    await watching;
    await e2.resign();
    let noLeader = "";
    await e2.leader().catch((e) => noLeader = (e as Error).message);
    assertEquals(noLeader, "election: no leader");
  } finally {
    stop.abort();
    await s1.close();
    await s2.close();
  }
}

Deno.test("Mutex and Election over the embedded Store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-conc-store-" });
  const store = await openStore(`${dir}/data`);
  try {
    await mutexExcludes(store);
    await electionObserved(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Mutex and Election over a cairn server through the Client", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-conc-" });
  const server = await startCairn(`${dir}/data`);
  try {
    const client = new Client({ endpoints: [server.url] });
    await mutexExcludes(client);
    await electionObserved(client);
  } finally {
    await server.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});
