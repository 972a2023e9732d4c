/**
 * Cluster behaviour of real processes, the same tests against real etcd 3.4
 * and against cairn with the same flags: reads on any member see writes made
 * on another, no acknowledged write is lost when the leader or a follower is
 * killed under load, a paused and resumed old leader serves no stale
 * linearizable read, a history with a leader crash in it is linearizable,
 * and a 5-member cluster serves writes with 2 members down and none with 3.
 *
 * The etcd variants run whenever etcd is on PATH; the cairn variants always.
 *
 * The network partition test uses cairn's fault injection on the peer port
 * (CAIRN_FAULT_INJECTION=1), so it runs against cairn only.
 */
import assert from "node:assert/strict";
import { HAVE_ETCD } from "../servers.ts";
import { openBackend } from "../../native/lmdb.ts";
import { checkHistory, type Operation } from "../sim/linearizability.ts";
import {
  b64,
  type Cluster,
  type ClusterKind,
  get,
  getPrefix,
  type Member,
  postJson,
  put,
  RequestError,
  startCluster,
} from "./cluster_harness.ts";

/** etcd's default heartbeat interval, given explicitly so the tests below can rely on it (ms). */
const HEARTBEAT_MS = 100;
/** etcd's default election timeout, given explicitly (ms). */
const ELECTION_TIMEOUT_MS = 1_000;
const FLAGS = [
  "--heartbeat-interval",
  String(HEARTBEAT_MS),
  "--election-timeout",
  String(ELECTION_TIMEOUT_MS),
];

/** Concurrent writers under load. */
const WRITERS = 8;
/** How long the writers write at least, in ms. */
const LOAD_MS = 3_000;
/** Puts that must be acknowledged after the fault before the writers stop. */
const MIN_ACKED_AFTER_FAULT = 50;
/** How long the writers write at most, in ms (they stop earlier once {@linkcode MIN_ACKED_AFTER_FAULT} is reached after {@linkcode LOAD_MS}). */
const MAX_LOAD_MS = 15_000;
/** When in the load the fault is injected, in ms. */
const FAULT_AT_MS = 1_000;
/** Upper bound on one writer's puts. */
const MAX_PUTS_PER_WRITER = 5_000;
/** Time allowed for one put or read under faults, in ms. */
const OP_TIMEOUT_MS = 2_000;
/** Time allowed for a member to hold every acknowledged write after the faults, in ms. */
const CATCH_UP_MS = 20_000;
/** Time allowed for writes to succeed again after a fault, in ms. */
const RECOVER_MS = 15_000;
/** Pause between two retries, in ms. */
const RETRY_PAUSE_MS = 50;
/** How long the leader stays stopped: well past an election timeout (ms). */
const STOP_MS = 3 * ELECTION_TIMEOUT_MS;
/** Linearizable reads sent to the resumed old leader right after SIGCONT. */
const READS_AFTER_RESUME = 8;

/** Clients of the linearizability history. */
const HISTORY_CLIENTS = 6;
/** Keys of the linearizability history. */
const HISTORY_KEYS = 3;
/** Upper bound on one history client's operations. */
const MAX_OPS_PER_CLIENT = 400;
/** Search budget of the checker per key. */
const CHECK_BUDGET = 5_000_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];

const KINDS: { kind: ClusterKind; ignore: boolean; why: string }[] = [
  { kind: "etcd", ignore: !HAVE_ETCD, why: "no etcd binary on PATH" },
  { kind: "cairn", ignore: false, why: "" },
];

/** Register `fn` once per kind, on a fresh cluster of `size` members that is closed afterwards. */
function clusterTest(
  name: string,
  size: 1 | 3 | 5,
  fn: (cluster: Cluster) => Promise<void>,
  flags: string[] = [],
  kinds: ClusterKind[] = ["etcd", "cairn"],
): void {
  for (const { kind, ignore, why } of KINDS.filter((k) => kinds.includes(k.kind))) {
    Deno.test({
      name: `cluster[${kind}]: ${name}${ignore ? ` (skipped: ${why})` : ""}`,
      ignore,
      fn: async () => {
        const cluster = await startCluster({ kind, size, flags: [...FLAGS, ...flags] });
        try {
          await fn(cluster);
        } catch (err) {
          const logs = cluster.members.map((m) =>
            `--- ${m.name} (${m.state})\n${cluster.logTail(m)}`
          )
            .join("\n");
          throw new Error(`${err instanceof Error ? err.stack : err}\nmember logs:\n${logs}`);
        } finally {
          await cluster.close();
        }
      },
    });
  }
}

/** Retry `put` on the members `targets()` offers until one is acknowledged, at most `timeoutMs`. */
async function putUntilAcked(
  targets: () => Member[],
  key: string,
  value: string,
  timeoutMs = RECOVER_MS,
): Promise<Member> {
  const deadline = Date.now() + timeoutMs;
  const errors: string[] = [];
  for (let i = 0; i < Math.ceil(timeoutMs / RETRY_PAUSE_MS); i++) {
    const member = pick(targets());
    try {
      await put(member, key, value, OP_TIMEOUT_MS);
      return member;
    } catch (err) {
      errors.push(String(err));
    }
    if (Date.now() > deadline) break;
    await sleep(RETRY_PAUSE_MS);
  }
  throw new Error(`put ${key} not acknowledged in ${timeoutMs} ms: ${errors.slice(-3).join("; ")}`);
}

/**
 * `member` holds every `acked` key with its value, read serializably (from
 * its own state), polled until it has caught up, at most {@linkcode CATCH_UP_MS}.
 */
async function assertHoldsAll(
  member: Member,
  prefix: string,
  acked: Map<string, string>,
): Promise<void> {
  const deadline = Date.now() + CATCH_UP_MS;
  let missing: string[] = [];
  for (let i = 0; i < Math.ceil(CATCH_UP_MS / RETRY_PAUSE_MS); i++) {
    try {
      const stored = await getPrefix(member, prefix, {
        serializable: true,
        timeoutMs: OP_TIMEOUT_MS,
      });
      missing = [...acked].filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
      if (missing.length === 0) return;
    } catch (err) {
      missing = [`(read failed: ${err})`];
    }
    if (Date.now() > deadline) break;
    await sleep(RETRY_PAUSE_MS * 4);
  }
  assert.fail(
    `${member.name} lacks ${missing.length} of ${acked.size} acknowledged writes, e.g. ${
      missing.slice(0, 5).join(", ")
    }`,
  );
}

/** What a load run saw. */
interface Load {
  /** Acknowledged key → value. */
  acked: Map<string, string>;
  /** Puts acknowledged after the fault was injected. */
  ackedAfterFault: number;
  /** Puts that failed (error or timeout: outcome unknown). */
  failed: number;
}

/**
 * {@linkcode WRITERS} writers put unique keys under `prefix` to random
 * running members for {@linkcode LOAD_MS}, and on until
 * {@linkcode MIN_ACKED_AFTER_FAULT} puts were acknowledged after the fault
 * (at most {@linkcode MAX_LOAD_MS}). `fault` runs at {@linkcode FAULT_AT_MS}
 * while they write; then `check` runs, still while they write.
 */
async function loadWithFault(
  cluster: Cluster,
  prefix: string,
  fault: () => Promise<void>,
  check: () => Promise<void> = () => Promise.resolve(),
): Promise<Load> {
  const load: Load = { acked: new Map(), ackedAfterFault: 0, failed: 0 };
  const start = Date.now();
  const writing = () => {
    const t = Date.now() - start;
    return t < LOAD_MS || (t < MAX_LOAD_MS && load.ackedAfterFault < MIN_ACKED_AFTER_FAULT);
  };
  let faulted = false;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; i < MAX_PUTS_PER_WRITER && writing(); i++) {
      const key = `${prefix}w${w}/k${i}`;
      const value = `v${w}-${i}`;
      const after = faulted;
      try {
        await put(pick(cluster.running()), key, value, OP_TIMEOUT_MS);
        load.acked.set(key, value);
        if (after) load.ackedAfterFault++;
      } catch (err) {
        if (!(err instanceof RequestError)) throw err;
        load.failed++;
        await sleep(RETRY_PAUSE_MS);
      }
    }
  });
  await sleep(FAULT_AT_MS);
  await fault();
  faulted = true;
  await check();
  await Promise.all(writers);
  return load;
}

clusterTest("a write on any member is seen by a linearizable read on every other", 3, async (c) => {
  for (let round = 0; round < 3; round++) {
    for (const writer of c.members) {
      const key = `a/${writer.name}`;
      const value = `r${round}`;
      await put(writer, key, value);
      for (const reader of c.others(writer)) {
        assert.equal(await get(reader, key), value, `${reader.name} reading ${key}`);
      }
    }
  }
});

clusterTest("kill -9 of the leader under load loses no acknowledged write", 3, async (c) => {
  const old = await c.leader();
  const load = await loadWithFault(c, "b/", () => c.kill(old, "SIGKILL"), async () => {
    assert.notEqual(await c.leader(), old);
  });
  assert.ok(
    load.ackedAfterFault >= MIN_ACKED_AFTER_FAULT,
    `${load.ackedAfterFault} puts acknowledged after the leader died`,
  );
  await c.restart(old);
  await c.waitReady();
  for (const m of c.members) await assertHoldsAll(m, "b/", load.acked);
});

clusterTest("kill -9 of a follower under load loses no acknowledged write", 3, async (c) => {
  const leader = await c.leader();
  const follower = c.others(leader)[0];
  const load = await loadWithFault(c, "c/", () => c.kill(follower, "SIGKILL"));
  assert.ok(
    load.ackedAfterFault >= MIN_ACKED_AFTER_FAULT,
    `${load.ackedAfterFault} puts acknowledged after the follower died`,
  );
  await c.restart(follower);
  await c.waitReady();
  for (const m of c.members) await assertHoldsAll(m, "c/", load.acked);
});

clusterTest("a resumed old leader serves no stale linearizable read", 3, async (c) => {
  const old = await c.leader();
  await put(old, "d/k", "old");
  c.stop(old);
  const stoppedAt = Date.now();
  // The others elect a new leader and go on taking writes.
  await putUntilAcked(() => c.others(old), "d/k", "new");
  for (let i = 0; i < 10; i++) await putUntilAcked(() => c.others(old), `d/more${i}`, "x");
  const next = await c.leader();
  assert.notEqual(next, old);
  await sleep(Math.max(0, STOP_MS - (Date.now() - stoppedAt)));
  // A read that reaches the old leader while it is stopped is the first
  // thing it handles when it resumes, still believing it leads.
  const reads: Promise<string | null | RequestError>[] = [];
  const read = () =>
    get(old, "d/k", { timeoutMs: OP_TIMEOUT_MS }).catch((err) => {
      if (err instanceof RequestError) return err;
      throw err;
    });
  reads.push(read());
  await sleep(RETRY_PAUSE_MS);
  c.cont(old);
  for (let i = 0; i < READS_AFTER_RESUME; i++) reads.push(read());
  const results = await Promise.all(reads);
  for (const r of results) {
    assert.notEqual(
      r,
      "old",
      "a linearizable read on the resumed old leader returned a stale value",
    );
    if (!(r instanceof RequestError)) assert.equal(r, "new");
  }
  // Once it has caught up it serves the new value.
  const deadline = Date.now() + RECOVER_MS;
  let last: unknown;
  for (let i = 0; i < Math.ceil(RECOVER_MS / RETRY_PAUSE_MS) && Date.now() < deadline; i++) {
    try {
      last = await get(old, "d/k", { timeoutMs: OP_TIMEOUT_MS });
      assert.notEqual(last, "old", "a linearizable read on the old leader returned a stale value");
      if (last === "new") return;
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      last = err;
    }
    await sleep(RETRY_PAUSE_MS);
  }
  assert.fail(`the resumed old leader never served the new value (last: ${last})`);
});

clusterTest("a history with a leader crash in it is linearizable", 3, async (c) => {
  const ops: Operation[] = [];
  const end = performance.now() + LOAD_MS;
  let nextClient = HISTORY_CLIENTS;
  const clients = Array.from({ length: HISTORY_CLIENTS }, async (_, id) => {
    let client = id;
    for (let i = 0; i < MAX_OPS_PER_CLIENT && performance.now() < end; i++) {
      const key = `e/${Math.floor(Math.random() * HISTORY_KEYS)}`;
      const member = pick(c.running());
      const call = performance.now();
      if (Math.random() < 0.5) {
        const value = `c${id}-${i}`;
        try {
          await put(member, key, value, OP_TIMEOUT_MS);
          ops.push({ client, key, kind: "put", value, call, ret: performance.now() });
        } catch (err) {
          if (!(err instanceof RequestError)) throw err;
          // Outcome unknown: it may take effect at any time after its call.
          ops.push({ client, key, kind: "put", value, call, ret: Infinity });
          client = nextClient++; // a client has one operation pending at a time
        }
      } else {
        try {
          const output = await get(member, key, { timeoutMs: OP_TIMEOUT_MS });
          ops.push({ client, key, kind: "get", output, call, ret: performance.now() });
        } catch (err) {
          if (!(err instanceof RequestError)) throw err;
          // A failed read has no effect: left out.
        }
      }
    }
  });
  await sleep(FAULT_AT_MS);
  await c.kill(await c.leader(), "SIGKILL");
  await Promise.all(clients);
  const puts = ops.filter((o) => o.kind === "put" && o.ret !== Infinity).length;
  const gets = ops.filter((o) => o.kind === "get").length;
  assert.ok(puts >= 20 && gets >= 20, `too short a history: ${puts} puts, ${gets} gets`);
  assert.deepEqual(checkHistory(ops, CHECK_BUDGET), { result: "ok" });

  // The same history with one stale read appended is not: the check can fail.
  const acked = ops.filter((o) => o.kind === "put" && o.ret !== Infinity);
  const overwritten = acked.find((p) =>
    acked.some((q) => q.key === p.key && q.call > p.ret && q.value !== p.value)
  );
  assert.ok(overwritten, "no acknowledged put was overwritten by a later one");
  const t = Math.max(...ops.filter((o) => o.ret !== Infinity).map((o) => o.ret)) + 1;
  const stale: Operation = {
    client: nextClient,
    key: overwritten.key,
    kind: "get",
    output: overwritten.value,
    call: t,
    ret: t + 1,
  };
  assert.equal(checkHistory([...ops, stale], CHECK_BUDGET).result, "illegal");
});

clusterTest("5 members serve writes with 2 down and none with 3 down", 5, async (c) => {
  const leader = await c.leader();
  // The leader and a follower.
  await c.kill(leader, "SIGKILL");
  await c.kill(c.running()[0], "SIGKILL");
  await putUntilAcked(() => c.running(), "f/two-down", "ok");
  const next = await c.leader();
  assert.notEqual(next, leader);
  await c.kill(c.running()[0], "SIGKILL");
  assert.equal(c.running().length, 2);
  // Every attempt on either survivor fails with an error or times out.
  const attempts = await Promise.all(
    c.running().flatMap((m) =>
      [0, 1, 2].map((i) =>
        put(m, `f/three-down/${m.name}/${i}`, "no", OP_TIMEOUT_MS).then(
          () => `${m.name} acknowledged a put`,
          (err) => {
            if (!(err instanceof RequestError)) throw err;
            return undefined;
          },
        )
      )
    ),
  );
  assert.deepEqual(attempts.filter((a) => a !== undefined), []);
});

/** Poll `check` until it returns true, at most `timeoutMs`; throws with `what` otherwise. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = RECOVER_MS) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (let i = 0; i < Math.ceil(timeoutMs / RETRY_PAUSE_MS); i++) {
    try {
      if (await check()) return;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) break;
    await sleep(RETRY_PAUSE_MS);
  }
  throw new Error(`${what} not within ${timeoutMs} ms ${last}`);
}

/** Keys written before a member joins (more than --snapshot-count, so it catches up by snapshot). */
const JOIN_KEYS = 300;

clusterTest(
  "a single member grows to three with member add; the cluster restarts as three",
  1,
  async (c) => {
    const [first] = c.members;
    await put(first, "grow/0", "one");
    // The added members reach the first on its peer URL: it must listen there by now.
    const second = await c.join(first);
    await put(second, "grow/1", "two");
    const third = await c.join(second, true);
    await eventually("the learner is promoted", async () => {
      await postJson(first.clientUrl, "/v3/cluster/member/promote", { ID: third.id });
      return true;
    });
    await put(third, "grow/2", "three");
    for (const m of c.members) {
      assert.equal(await get(m, "grow/0"), "one");
      assert.equal(await get(m, "grow/2"), "three");
    }
    // Restarted, the first member listens for its peers from the start.
    await c.kill(first);
    await putUntilAcked(() => c.running(), "grow/3", "without the first");
    await c.restart(first);
    await eventually(
      "the restarted first member has the write made without it",
      async () => (await get(first, "grow/3", { serializable: true })) === "without the first",
    );
    await put(first, "grow/4", "back");
    assert.equal(await get(third, "grow/4"), "back");
  },
);

clusterTest(
  "a learner added after the log was compacted catches up by snapshot, is promoted, and a member is removed",
  3,
  async (c) => {
    const leader = await c.leader();
    for (let i = 0; i < JOIN_KEYS; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => put(pick(c.running()), `join/${i + j}`, `v${i + j}`)),
      );
    }
    const learner = await c.join(leader, true);
    // Writes go on while it catches up.
    for (let i = JOIN_KEYS; i < JOIN_KEYS + 20; i++) await put(leader, `join/${i}`, `v${i}`);
    await eventually("the learner holds every key", async () => {
      const kvs = await getPrefix(learner, "join/", { serializable: true });
      return kvs.size === JOIN_KEYS + 20 && kvs.get("join/7") === "v7";
    });
    // Promotion is refused until the learner has caught up; by now it has.
    await eventually("the learner is promoted", async () => {
      await postJson(leader.clientUrl, "/v3/cluster/member/promote", { ID: learner.id });
      return true;
    });
    // Member lists are served from each member's applied state (etcd 3.4 has no
    // linearizable member list): the promoted member sees its promotion soon after.
    await eventually("the promoted member lists four voters", async () => {
      const listed = await postJson(learner.clientUrl, "/v3/cluster/member/list", {});
      const members = listed.members as { ID: string; isLearner?: boolean }[];
      return members.length === 4 && members.every((m) => m.isLearner !== true);
    });
    // The new voter serves linearizable writes and reads.
    await put(learner, "join/after", "promoted");
    assert.equal(await get(pick(c.others(learner)), "join/after"), "promoted");
    // Remove a follower of the original three.
    const current = await c.leader();
    const victim = c.running().find((m) => m !== current && m !== learner)!;
    await postJson(current.clientUrl, "/v3/cluster/member/remove", { ID: victim.id });
    await c.kill(victim);
    const after = await postJson(current.clientUrl, "/v3/cluster/member/list", {});
    assert.equal((after.members as unknown[]).length, 3);
    await putUntilAcked(() => c.running(), "join/removed", "yes");
    // A removed member that starts again is told so by its old peers and stops.
    c.spawn(victim);
    await eventually("the removed member stops", () => Promise.resolve(c.exited(victim)));
    victim.state = "killed";
    assert.match(await Deno.readTextFile(victim.logFile), /permanently removed/);
    for (const m of c.running()) {
      await eventually(
        `${m.name} has the last write`,
        async () => (await get(m, "join/removed", { serializable: true })) === "yes",
      );
    }
  },
  ["--snapshot-count", "100"],
);

clusterTest(
  "a lease kept alive through a follower outlives its TTL and expires without it",
  3,
  async (c) => {
    const leader = await c.leader();
    const follower = c.others(leader)[0];
    const grant = await postJson(follower.clientUrl, "/v3/lease/grant", { TTL: 3 });
    const id = grant.ID as string;
    await postJson(follower.clientUrl, "/v3/kv/put", {
      key: b64("lease/k"),
      value: b64("v"),
      lease: id,
    });
    // Keep it alive through the follower for twice its TTL.
    const until = Date.now() + 6_000;
    for (let i = 0; i < 20 && Date.now() < until; i++) {
      const res = await postJson(follower.clientUrl, "/v3/lease/keepalive", { ID: id });
      const result = (res.result ?? res) as { TTL?: string };
      assert.equal(result.TTL, "3", "the keep-alive renews the full TTL");
      await sleep(500);
    }
    assert.equal(await get(pick(c.running()), "lease/k"), "v", "the kept-alive key is there");
    const ttl = await postJson(follower.clientUrl, "/v3/lease/timetolive", { ID: id, keys: true });
    assert.equal(ttl.grantedTTL, "3");
    assert.deepEqual(ttl.keys, [b64("lease/k")]);
    // Without keep-alives the leader revokes it.
    await eventually(
      "the key is gone after the lease expired",
      async () => (await get(follower, "lease/k")) === null,
      10_000,
    );
  },
);

clusterTest(
  "a partitioned leader commits nothing; the majority side elects a leader and takes writes; all converge after healing",
  3,
  async (c) => {
    const old = await c.leader();
    const majority = c.others(old);
    await c.isolate(old);
    // The minority side: a write there is never acknowledged, a linearizable read never served.
    const minorityPut = put(old, "part/minority", "lost", 3_000).then(
      () => "acked",
      () => "failed",
    );
    const minorityRead = get(old, "part/k", { timeoutMs: 3_000 }).then(
      (v) => `read ${v}`,
      () => "failed",
    );
    // The majority side elects a leader and takes writes.
    for (let i = 0; i < 20; i++) await putUntilAcked(() => majority, `part/${i}`, `v${i}`);
    await putUntilAcked(() => majority, "part/k", "majority");
    assert.equal(await minorityPut, "failed", "the isolated leader acknowledged a write");
    assert.equal(await minorityRead, "failed", "the isolated leader served a linearizable read");
    await c.heal(old);
    for (const m of c.running()) {
      await eventually(`${m.name} converges`, async () => {
        const kvs = await getPrefix(m, "part/", { serializable: true });
        return kvs.size === 21 && kvs.get("part/k") === "majority";
      });
      assert.equal(await get(m, "part/minority", { serializable: true }), null);
    }
    assert.equal(await get(old, "part/k"), "majority");
  },
  [],
  ["cairn"],
);

clusterTest(
  "a member added and another removed under load lose no acknowledged write",
  3,
  async (c) => {
    const load = await loadWithFault(c, "churn/", async () => {
      const leader = await c.leader();
      // Through a follower: the change is made by the leader.
      const added = await c.join(c.others(leader)[0]);
      const victim = c.running().find((m) => m !== leader && m !== added)!;
      // etcd refuses a removal until the new member is connected: retry.
      await eventually("the removal", async () => {
        await postJson((await c.leader()).clientUrl, "/v3/cluster/member/remove", {
          ID: victim.id,
        });
        return true;
      });
      await c.kill(victim);
    });
    assert.ok(load.acked.size > 0);
    for (const m of c.running()) await assertHoldsAll(m, "churn/", load.acked);
  },
);

clusterTest(
  "a follower restarted far behind (its entries compacted away) catches up by snapshot",
  3,
  async (c) => {
    const leader = await c.leader();
    const follower = c.others(leader)[0];
    const acked = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      await put(leader, `behind/a${i}`, `v${i}`);
      acked.set(`behind/a${i}`, `v${i}`);
    }
    await assertHoldsAll(follower, "behind/", acked);
    await c.kill(follower);
    // Far more than --snapshot-count entries while it is down, some of them
    // overwriting and deleting what it holds.
    for (let i = 0; i < JOIN_KEYS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => {
        const key = `behind/b${i + j}`;
        acked.set(key, `w${i + j}`);
        return put(pick(c.running()), key, `w${i + j}`);
      }));
    }
    for (let i = 0; i < 10; i++) {
      await put(leader, `behind/a${i}`, `new${i}`);
      acked.set(`behind/a${i}`, `new${i}`);
    }
    for (let i = 40; i < 50; i++) {
      await postJson(leader.clientUrl, "/v3/kv/deleterange", { key: b64(`behind/a${i}`) });
      acked.delete(`behind/a${i}`);
    }
    await c.restart(follower);
    await assertHoldsAll(follower, "behind/", acked);
    const kvs = await getPrefix(follower, "behind/", { serializable: true });
    assert.equal(kvs.size, acked.size, "nothing more than the cluster holds");
    if (c.kind === "cairn") {
      assert.match(await Deno.readTextFile(leader.logFile), /sending database snapshot/);
    }
  },
  ["--snapshot-count", "100"],
);

/** Events a watch on `member` delivers for keys under `prefix`, until `until` says stop (bounded by `timeoutMs`). */
async function watchEvents(
  member: Member,
  prefix: string,
  until: (events: { key: string; rev: number }[]) => boolean,
  timeoutMs: number,
  started: () => void,
): Promise<{ key: string; rev: number }[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: { key: string; rev: number }[] = [];
  try {
    const res = await fetch(`${member.clientUrl}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({
        create_request: { key: b64(prefix), range_end: b64(prefix.slice(0, -1) + "0") },
      }),
      signal: abort.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as {
          result?: { created?: boolean; events?: { kv: { key: string; mod_revision: string } }[] };
        };
        buf = buf.slice(nl + 1);
        if (line.result?.created) started();
        for (const ev of line.result?.events ?? []) {
          events.push({ key: atob(ev.kv.key), rev: Number(ev.kv.mod_revision) });
        }
        if (until(events)) return events;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

clusterTest(
  "a watcher on a follower cut off while the log is compacted sees every event, in order, once it is back",
  3,
  async (c) => {
    const leader = await c.leader();
    const follower = c.others(leader)[0];
    const total = JOIN_KEYS;
    const created = Promise.withResolvers<void>();
    const watching = watchEvents(
      follower,
      "wsnap/",
      (evs) => evs.length >= total,
      RECOVER_MS * 2,
      created.resolve,
    );
    await created.promise;
    await c.isolate(follower);
    // More than --snapshot-count entries while it is cut off: it comes back by snapshot.
    for (let i = 0; i < total; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => put(leader, `wsnap/${i + j}`, "v")),
      );
    }
    await c.heal(follower);
    const events = await watching;
    assert.equal(events.length, total, "every event arrives");
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i].rev > events[i - 1].rev, "in revision order, none twice");
    }
    assert.equal(new Set(events.map((e) => e.key)).size, total);
    assert.match(await Deno.readTextFile(leader.logFile), /sending database snapshot/);
  },
  ["--snapshot-count", "100"],
  ["cairn"],
);

clusterTest(
  "defragmenting every member under load loses no acknowledged write; members' HashKV agree",
  3,
  async (c) => {
    // Data that compaction frees, so each defragmentation has pages to give back.
    for (let i = 0; i < 50; i++) await put(pick(c.members), `dfrag/old${i % 5}`, "x".repeat(4096));
    const { header } = await postJson(c.members[0].clientUrl, "/v3/kv/range", {
      key: b64("dfrag/"),
      count_only: true,
    }) as { header: { revision: string } };
    await postJson(c.members[0].clientUrl, "/v3/kv/compaction", {
      revision: header.revision,
      physical: true,
    });
    const load = await loadWithFault(c, "dfrag/w", async () => {
      for (const m of c.members) {
        await postJson(m.clientUrl, "/v3/maintenance/defragment", {}, CATCH_UP_MS);
      }
    });
    assert.ok(load.ackedAfterFault >= MIN_ACKED_AFTER_FAULT, `${load.ackedAfterFault} acked after`);
    for (const m of c.members) await assertHoldsAll(m, "dfrag/w", load.acked);
    // HashKV at one revision, through etcdctl (gRPC): equal on every member.
    const { header: last } = await postJson(c.members[0].clientUrl, "/v3/kv/range", {
      key: b64("dfrag/"),
      count_only: true,
    }) as { header: { revision: string } };
    const endpoints = c.members.map((m) => m.clientUrl).join(",");
    const out = await new Deno.Command("etcdctl", {
      args: ["--endpoints", endpoints, "endpoint", "hashkv", "--rev", last.revision, "-w", "json"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const hashes = (JSON.parse(new TextDecoder().decode(out.stdout)) as {
      HashKV: { hash: number };
    }[]).map((h) => h.HashKV.hash);
    assert.equal(hashes.length, 3);
    assert.equal(new Set(hashes).size, 1, `hashes ${hashes.join(", ")}`);
  },
);

clusterTest(
  "a member whose store was changed behind its back is found by the corruption check, and writes stop",
  3,
  async (c) => {
    // Writes while the check runs every 300 ms: members that apply at their
    // own pace are not taken for corrupt.
    const until = Date.now() + 3_000;
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; Date.now() < until; i++) await put(pick(c.members), `busy/${w}/${i}`, "v");
    }));
    await sleep(1_000);
    assert.deepEqual(
      (await postJson(anyMemberUrl(c), "/v3/maintenance/alarm", {})).alarms ?? [],
      [],
      "no alarm under writes",
    );
    for (let i = 0; i < 20; i++) await put(pick(c.members), `corrupt/k${i}`, `v${i}`);
    const leader = await c.leader();
    const victim = c.others(leader)[0];
    // Wait until the victim holds every write, then change its records on disk.
    await assertHoldsAll(
      victim,
      "corrupt/",
      new Map(Array.from({ length: 20 }, (_, i) => [`corrupt/k${i}`, `v${i}`])),
    );
    await c.kill(victim, "SIGTERM");
    await changeBehindItsBack(victim, "corrupt/");
    await c.restart(victim);
    await c.waitReady();
    const victimId = BigInt(
      (await postJson(victim.clientUrl, "/v3/maintenance/status", {}) as {
        header: { member_id: string };
      }).header.member_id,
    );
    const deadline = Date.now() + CATCH_UP_MS;
    let alarms: { memberID: string; alarm: string }[] = [];
    while (Date.now() < deadline) {
      const got = await postJson(anyMemberUrl(c), "/v3/maintenance/alarm", {});
      alarms = (got.alarms ?? []) as typeof alarms;
      if (alarms.length > 0) break;
      await sleep(200);
    }
    assert.deepEqual(alarms, [{ memberID: victimId.toString(), alarm: "CORRUPT" }]);
    await assert.rejects(
      put(leader, "corrupt/after", "x"),
      (err: RequestError) => err.message.includes("etcdserver: corrupt cluster"),
    );
  },
  ["--experimental-corrupt-check-time", "300ms"],
  ["cairn"],
);

/** Flip a bit of every record under `prefix` in a stopped member's store. */
async function changeBehindItsBack(member: Member, prefix: string): Promise<void> {
  const store = openBackend(`${member.dataDir}/member`);
  const bytes = new TextEncoder().encode(prefix);
  await store.write(() => {
    for (const table of ["current", "history"] as const) {
      for (const { key, value } of [...store.scan(table, {})]) {
        if (!bytes.every((b, i) => key[i] === b)) continue;
        const changed = value.slice();
        changed[changed.length - 1] ^= 1;
        store.put(table, key, changed);
      }
    }
  });
  await store.close();
}

clusterTest(
  "--experimental-initial-corrupt-check: a member whose store differs from its peers' does not start; a sound one does",
  3,
  async (c) => {
    for (let i = 0; i < 20; i++) await put(pick(c.members), `initial/k${i}`, `v${i}`);
    const leader = await c.leader();
    const [sound, victim] = c.others(leader);
    const all = new Map(Array.from({ length: 20 }, (_, i) => [`initial/k${i}`, `v${i}`]));
    await assertHoldsAll(victim, "initial/", all);
    await assertHoldsAll(sound, "initial/", all);
    sound.flags = ["--experimental-initial-corrupt-check"];
    await c.restart(sound);
    await eventually(
      "the sound member logs the check passed",
      async () => /initial corruption checking passed/.test(await Deno.readTextFile(sound.logFile)),
    );
    await c.kill(victim, "SIGTERM");
    await changeBehindItsBack(victim, "initial/");
    victim.flags = ["--experimental-initial-corrupt-check"];
    await assert.rejects(c.restart(victim), /found data inconsistency with peers/);
    victim.state = "killed";
    // The others go on.
    await put(leader, "initial/after", "x");
    assert.equal(await get(sound, "initial/after"), "x");
  },
  [],
  ["cairn"],
);

/** The client URL of a running member (any: alarms are replicated). */
function anyMemberUrl(c: Cluster): string {
  return c.running()[0].clientUrl;
}
