import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { type Clock, Lease, type LeaseApi, Session } from "../../client/lease.ts";
import { ConnectionError } from "../../client/mod.ts";
import { Errors, EtcdError } from "../../core/errors.ts";
import type { LeaseKeepAliveResponse } from "../../core/api/types.ts";
import { KEEPALIVE_RETRY_MS, MAX_KEEPALIVE_BUFFER } from "../../core/limits.ts";

/** A clock that moves only when told to, running the sleeps that come due in order. */
class FakeClock implements Clock {
  t = 0;
  #timers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = { at: this.t + ms, resolve };
      this.#timers.push(timer);
      signal.addEventListener("abort", () => {
        this.#timers = this.#timers.filter((x) => x !== timer);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward by `ms`, letting every callback that comes due run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((x) => x !== due);
      this.t = due.at;
      due.resolve();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));
const HEADER = { cluster_id: 1n, member_id: 2n, revision: 3, raft_term: 4 };

/** A LeaseApi whose keep-alive answers come from `answer` (a TTL or an error), calls recorded. */
function fakeApi(clock: FakeClock, answer: (n: number) => number | Error) {
  const keepAlives: number[] = [];
  const revoked: bigint[] = [];
  const api: LeaseApi = {
    leaseGrant: (req) => Promise.resolve({ header: HEADER, ID: req.ID ?? 77n, TTL: req.TTL }),
    leaseRevoke: (req) => {
      revoked.push(req.ID);
      return revoked.length > 1
        ? Promise.reject(Errors.LeaseNotFound())
        : Promise.resolve({ header: HEADER });
    },
    leaseKeepAlive: (req) => {
      keepAlives.push(clock.now());
      const a = answer(keepAlives.length);
      if (a instanceof Error) return Promise.reject(a);
      return Promise.resolve({ header: HEADER, ID: req.ID, TTL: a });
    },
    leaseTimeToLive: (req) =>
      Promise.resolve({ header: HEADER, ID: req.ID, TTL: 5, grantedTTL: 9, keys: [] }),
  };
  return { api, keepAlives, revoked };
}

Deno.test("keepAlive renews at once, then every TTL/3 of each answer, until aborted", async () => {
  const clock = new FakeClock();
  const { api, keepAlives } = fakeApi(clock, (n) => (n < 3 ? 9 : 6));
  const lease = await new Lease(api, { clock }).grant(9);
  assertEquals([lease.id, lease.ttl], [77n, 9]);
  const stop = new AbortController();
  const ka = lease.keepAlive({ signal: stop.signal });
  await clock.advance(11_000);
  // 9 s leases renew every 3 s; from the third answer on (TTL 6), every 2 s.
  assertEquals(keepAlives, [0, 3000, 6000, 8000, 10_000]);
  stop.abort();
  await ka.done;
  await clock.advance(10_000);
  assertEquals(keepAlives.length, 5);
  const seen: number[] = [];
  for await (const r of ka) seen.push(r.TTL);
  assertEquals(seen, [9, 9, 6, 6, 6]);
});

Deno.test("keepAlive ends with lease not found when a renewal answers TTL 0", async () => {
  const clock = new FakeClock();
  const { api, keepAlives } = fakeApi(clock, (n) => (n < 3 ? 3 : 0));
  const ka = new Lease(api, { clock }).of(5n).keepAlive();
  await clock.advance(5_000);
  assertEquals(keepAlives, [0, 1000, 2000]);
  await assertRejects(ka.done, (e: EtcdError) => e.message === Errors.LeaseNotFound().message);
  const seen: bigint[] = [];
  const err = await (async () => {
    for await (const r of ka) seen.push(r.ID);
  })().catch((e) => e);
  assertEquals([seen, err.code], [[5n, 5n], 5]);
});

Deno.test("keepAlive retries a transient failure every KEEPALIVE_RETRY_MS until the TTL runs out", async () => {
  const clock = new FakeClock();
  const down = new ConnectionError("http://a: connection refused", true);
  const { api, keepAlives } = fakeApi(clock, (n) => (n === 1 || n === 3 ? 3 : down));
  const lease = await new Lease(api, { clock }).grant(3);
  const ka = lease.keepAlive();
  await clock.advance(1000 + KEEPALIVE_RETRY_MS);
  // The renewal at 1 s fails; the retry 500 ms later succeeds and restarts the cadence.
  assertEquals(keepAlives, [0, 1000, 1000 + KEEPALIVE_RETRY_MS]);
  await clock.advance(5_000);
  const last = 1000 + KEEPALIVE_RETRY_MS;
  // From then on every attempt fails: retries until 3 s after the last success.
  assertEquals(keepAlives.slice(3), [
    last + 1000,
    last + 1500,
    last + 2000,
    last + 2500,
    last + 3000,
  ]);
  await assertRejects(ka.done, (e: EtcdError) => e.code === 5);
});

Deno.test("keepAlive stops at an error that is not transient, with that error", async () => {
  const clock = new FakeClock();
  const denied = new EtcdError("etcdserver: permission denied", 7);
  const { api, keepAlives } = fakeApi(clock, () => denied);
  const ka = new Lease(api, { clock }).of(5n).keepAlive();
  await assertRejects(ka.done, (e) => e === denied);
  await clock.advance(5_000);
  assertEquals(keepAlives, [0]);
});

Deno.test("a reader that falls behind gets the latest MAX_KEEPALIVE_BUFFER answers", async () => {
  const clock = new FakeClock();
  const { api } = fakeApi(clock, () => 3);
  const stop = new AbortController();
  const ka = new Lease(api, { clock }).of(5n).keepAlive({ signal: stop.signal });
  const n = MAX_KEEPALIVE_BUFFER + 5;
  await clock.advance((n - 1) * 1000);
  stop.abort();
  await ka.done;
  const seen: LeaseKeepAliveResponse[] = [];
  for await (const r of ka) seen.push(r);
  assertEquals(seen.length, MAX_KEEPALIVE_BUFFER);
});

Deno.test("revoke stops the lease's keep-alives, which end without error", async () => {
  const clock = new FakeClock();
  const { api, keepAlives, revoked } = fakeApi(clock, () => 3);
  const lease = await new Lease(api, { clock }).grant(3);
  const ka = lease.keepAlive();
  await clock.advance(1_500);
  await lease.revoke();
  await ka.done;
  await clock.advance(5_000);
  assertEquals([keepAlives, revoked], [[0, 1000], [77n]]);
  assertEquals((await lease.timeToLive()).grantedTTL, 9);
});

Deno.test("Session keeps its lease alive until close revokes it; close twice is fine", async () => {
  const clock = new FakeClock();
  const { api, keepAlives, revoked } = fakeApi(clock, () => 60);
  const session = await Session.create(api, { clock });
  assertEquals([session.lease, session.ttl], [77n, 60]);
  await clock.advance(45_000);
  assertEquals(keepAlives, [0, 20_000, 40_000]);
  await session.close();
  await session.done;
  await session.close(); // the second revoke answers not found: ignored
  assertEquals(revoked, [77n, 77n]);
  await clock.advance(60_000);
  assertEquals(keepAlives.length, 3);
});

Deno.test("Session.done rejects when the lease is lost; orphan stops without revoking", async () => {
  const clock = new FakeClock();
  const lost = fakeApi(clock, (n) => (n === 1 ? 6 : 0));
  const s1 = await Session.create(lost.api, { ttl: 6, clock });
  await clock.advance(2_000);
  await assertRejects(s1.done, (e: EtcdError) => e.code === 5);
  const kept = fakeApi(clock, () => 6);
  const s2 = await Session.create(kept.api, { lease: 9n, clock });
  assertEquals(s2.lease, 9n);
  s2.orphan();
  await s2.done;
  assertEquals(kept.revoked, []);
});
