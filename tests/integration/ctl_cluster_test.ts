/**
 * Cluster commands and client failover against a real etcd 3.4 cluster of
 * three members started on loopback:
 * - differential: the same `member …`, `endpoint … --cluster` and
 *   `move-leader` commands run as etcdctl 3.4 and as `main.ts ctl` against
 *   the cluster; outputs must match byte for byte once member and cluster
 *   IDs are shown as names, timings masked, and (where the order depends on
 *   a fresh random member ID or on completion order) lines sorted;
 * - failover: a Client over the three endpoints keeps reading and writing,
 *   watching and renewing a lease after the member it uses is killed
 *   (kill -9), and no write is applied twice.
 * Skipped when the etcd or etcdctl binary is absent.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  Client,
  ConnectionError,
  EtcdError,
  type KeyValue,
  type TxnRequest,
} from "../../client/mod.ts";
import { Lease } from "../../client/lease.ts";
import {
  freePort,
  HAVE_ETCD as HAVE_ETCD_BINARY,
  ROOT,
  runs,
  withoutDenoNotices,
} from "../servers.ts";

const HAVE_ETCD = HAVE_ETCD_BINARY && (await runs("etcdctl", ["version"]));

interface Member {
  name: string;
  /** `host:port` of the client URL. */
  endpoint: string;
  peer: string;
  child: Deno.ChildProcess;
  /** kill -9, and wait for the exit. */
  kill(): Promise<void>;
}

interface Cluster {
  members: Member[];
  stop(): Promise<void>;
}

/** Whether `GET /health` of `endpoint` answers true (the member has a leader). */
async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && (await res.text()).includes("true");
  } catch {
    return false;
  }
}

/**
 * Starts a three-member etcd 3.4 cluster on free loopback ports (short
 * heartbeat and election timeout, so elections are quick; no strict
 * reconfiguration check, so members can be added at once) and waits until
 * every member reports healthy.
 */
async function startCluster(): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-ctl-cluster-" });
  const specs = ["m1", "m2", "m3"].map((name) => ({
    name,
    client: `127.0.0.1:${freePort()}`,
    peer: `http://127.0.0.1:${freePort()}`,
  }));
  const initial = specs.map((s) => `${s.name}=${s.peer}`).join(",");
  const token = `ctl-cluster-${specs[0].client}`;
  const members: Member[] = specs.map((s) => {
    const child = new Deno.Command("etcd", {
      args: [
        ...["--name", s.name, "--data-dir", `${dir}/${s.name}`],
        ...["--listen-client-urls", `http://${s.client}`],
        ...["--advertise-client-urls", `http://${s.client}`],
        ...["--listen-peer-urls", s.peer, "--initial-advertise-peer-urls", s.peer],
        ...["--initial-cluster", initial, "--initial-cluster-state", "new"],
        ...["--initial-cluster-token", token],
        ...["--heartbeat-interval", "50", "--election-timeout", "500"],
        // Membership changes without waiting until every peer has been connected for 5 s.
        "--strict-reconfig-check=false",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then(() => void (exited = true));
    return {
      name: s.name,
      endpoint: s.client,
      peer: s.peer,
      child,
      kill: async () => {
        if (!exited) {
          try {
            child.kill("SIGKILL");
          } catch {
            // already gone
          }
        }
        await status;
      },
    };
  });
  const stop = async () => {
    await Promise.all(members.map((m) => m.kill()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const states = await Promise.all(members.map((m) => healthy(m.endpoint)));
      if (states.every(Boolean)) return { members, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the etcd cluster did not become healthy");
  } catch (e) {
    await stop();
    throw e;
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: withoutDenoNotices(dec.decode(out.stderr)),
  };
}

/** The `ctl` task's command line from deno.json (`deno run … main.ts ctl`), deno resolved. */
const CTL_TASK: string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const words = String(config.tasks.ctl).trim().split(/\s+/);
  return words[0] === "deno" ? [Deno.execPath(), ...words.slice(1)] : words;
})();

const etcdctl = (args: string[]) => run("etcdctl", args, { ETCDCTL_API: "3" });
const ctl = (args: string[]) => run(CTL_TASK[0], [...CTL_TASK.slice(1), ...args]);

/** Member and cluster IDs (hex and decimal) by the name a masked output shows. */
type Names = Map<bigint, string>;

/** The cluster's member IDs by name, and its cluster ID as `<cluster>`. */
async function memberNames(endpoint: string): Promise<Names> {
  const list = await new Client({ endpoints: [endpoint] }).memberList();
  const names: Names = new Map([[list.header.cluster_id, "<cluster>"]]);
  for (const m of list.members) names.set(m.ID, `<${m.name}>`);
  return names;
}

/**
 * What legitimately differs between an etcdctl run and a ctl run: IDs
 * shown as names (a fresh member as `<new>`), the `took` of health checks,
 * which member answered (a header's member_id), clientv3's retry log lines,
 * and peer ports chosen per side (`<peer>`).
 */
function mask(text: string, names: Names, peers: string[]): string {
  let t = text.replace(/^\{"level":"warn".*\n/gm, "");
  for (const p of peers) t = t.replaceAll(p, "<peer>");
  t = t.replace(/"took":"[^"]*"/g, '"took":"T"').replace(/took = \S+/g, "took = T");
  t = t.replace(/\| +\d+(\.\d+)?(µs|ms|s) +\|/g, "| T |");
  t = t.replace(/"member_id":\d+/g, '"member_id":ID').replace(
    /"MemberID" : \d+/g,
    '"MemberID" : ID',
  );
  // Longest first, so a hex ID never matches inside a decimal one.
  const forms = [...names].flatMap(([id, name]) => [
    [id.toString(), name],
    // Go's %16x, space-padded, in `Member <id> … cluster <id>`.
    [`Member ${id.toString(16).padStart(16, " ")}`, `Member ${name}`],
    [`cluster ${id.toString(16).padStart(16, " ")}`, `cluster ${name}`],
    [id.toString(16), name],
  ]).sort((a, b) => b[0].length - a[0].length);
  for (const [form, name] of forms) t = t.replaceAll(form, name);
  return t;
}

/**
 * Output whose order legitimately differs, put in a canonical order: lines
 * of simple output and table rows sorted, JSON arrays of members and of
 * health results sorted, ETCD_INITIAL_CLUSTER's entries sorted.
 */
function canonical(text: string): string {
  // Table column widths follow the masked timings: compare the structure only.
  const t = text.replace(/-+/g, "-").replace(/ +/g, " ");
  return t.split("\n").map((line) => {
    if (line.startsWith("ETCD_INITIAL_CLUSTER=")) {
      const v = JSON.parse(line.slice("ETCD_INITIAL_CLUSTER=".length)) as string;
      return `ETCD_INITIAL_CLUSTER=${JSON.stringify(v.split(",").sort().join(","))}`;
    }
    if (!line.startsWith("{") && !line.startsWith("[")) return line;
    // IDs are masked to <names>: quote them so the line parses, then sort its arrays.
    const json = JSON.parse(line.replace(/:(<[\w-]+>|ID)([,}\]])/g, ':"$1"$2'));
    const sortArrays = (v: unknown): unknown => {
      if (Array.isArray(v)) {
        return v.map(sortArrays).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
      }
      if (v !== null && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortArrays(x)]));
      }
      return v;
    };
    return JSON.stringify(sortArrays(json));
  }).sort().join("\n");
}

interface Compared {
  want: Result;
  got: Result;
}

/**
 * Runs `args` as etcdctl (`wantArgs`, when its arguments differ) and as ctl
 * and asserts equal output after masking; `sorted` compares canonical forms.
 */
async function compare(
  label: string,
  ctx: { endpoints: string; names: Names; peers: string[] },
  args: string[],
  opts: { wantArgs?: string[]; sorted?: boolean } = {},
): Promise<Compared> {
  const want = await etcdctl(["--endpoints", ctx.endpoints, ...(opts.wantArgs ?? args)]);
  const got = await ctl(["--endpoints", ctx.endpoints, ...args]);
  const norm = (r: Result) => {
    const f = (s: string) => {
      const m = mask(s, ctx.names, ctx.peers);
      return opts.sorted ? canonical(m) : m;
    };
    return { code: r.code, stdout: f(r.stdout), stderr: f(r.stderr) };
  };
  assertEquals(norm(got), norm(want), `${label}: ctl ${args.join(" ")}`);
  return { want, got };
}

/** The new member's ID a `member add` printed (simple: `Member <hex> added`). */
function addedId(stdout: string): bigint {
  const m = /^Member +([0-9a-f]+) added/m.exec(stdout);
  if (!m) throw new Error(`no member ID in ${JSON.stringify(stdout)}`);
  return BigInt(`0x${m[1]}`);
}

/** The leader's and the followers' names, from each member's status. */
async function roles(cluster: Cluster): Promise<{ leader: Member; followers: Member[] }> {
  for (let i = 0; i < 100; i++) {
    const statuses = await Promise.all(
      cluster.members.map((m) => new Client({ endpoints: [m.endpoint] }).status()),
    );
    const idx = statuses.findIndex((s) => s.leader === s.header.member_id);
    if (idx >= 0 && statuses.every((s) => s.leader === statuses[idx].leader)) {
      return {
        leader: cluster.members[idx],
        followers: cluster.members.filter((_, i) => i !== idx),
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the members do not agree on a leader");
}

Deno.test({
  name: "ctl member, endpoint --cluster and move-leader print what etcdctl prints on etcd",
  ignore: !HAVE_ETCD,
  async fn() {
    const cluster = await startCluster();
    try {
      const endpoints = cluster.members.map((m) => m.endpoint).join(",");
      const names = await memberNames(cluster.members[0].endpoint);
      const ctx = { endpoints, names, peers: [] as string[] };

      for (const w of ["simple", "table", "json", "fields"]) {
        await compare("member list", ctx, ["member", "list", "-w", w]);
      }
      for (const w of ["simple", "table", "json"]) {
        await compare("endpoint status", ctx, ["endpoint", "status", "--cluster", "-w", w]);
      }
      for (const w of ["simple", "table", "json"]) {
        await compare("endpoint health", ctx, ["endpoint", "health", "--cluster", "-w", w], {
          sorted: true,
        });
      }

      // A learner's life, once per side (etcd 3.4 allows one learner at a time).
      // The second learner gets peer URLs of its own: etcd may answer "member
      // not found" to an add that reuses those of a member removed a moment ago.
      const sides = [etcdctl, ctl].map((run) => ({
        run,
        peer: `127.0.0.1:${freePort()}`,
        moved: `127.0.0.1:${freePort()}`,
        second: `127.0.0.1:${freePort()}`,
      }));
      ctx.peers = sides.flatMap((s) => [s.peer, s.moved, s.second]);
      // Raw outputs per side, masked once every fresh ID is known (both show as <new>).
      const outputs: string[][] = [[], []];
      const sortedAt = new Set<string>();
      for (const [i, side] of sides.entries()) {
        const call = async (args: string[], sorted = false) => {
          const r = await side.run(["--endpoints", endpoints, ...args]);
          const text = `${args.join(" ")}\n[${r.code}]\n${r.stdout}\n${r.stderr}`;
          if (sorted) sortedAt.add(`${i}:${outputs[i].length}`);
          outputs[i].push(text);
          return r;
        };
        const add = await call(
          ["member", "add", "learner", `--peer-urls=http://${side.peer}`, "--learner"],
          true,
        );
        assertEquals(add.code, 0, add.stderr);
        const id = addedId(add.stdout);
        names.set(id, "<new>");
        const hex = id.toString(16);
        await call(["member", "list"], true);
        await call(["member", "list", "-w", "json"], true);
        await call(["member", "promote", hex]);
        await call(["member", "update", hex, `--peer-urls=http://${side.moved}`]);
        await call(
          ["member", "update", hex, `--peer-urls=http://${side.moved}`, "-w", "json"],
          true,
        );
        await call(["member", "list", "-w", "table"], true);
        await call(["member", "remove", hex]);
        await call(["member", "remove", hex]);
      }
      // A second learner per side, with the JSON output of add and remove.
      for (const [i, side] of sides.entries()) {
        const addArgs = [
          "--endpoints",
          endpoints,
          ...["member", "add", "j", `--peer-urls=http://${side.second}`, "--learner", "-w", "json"],
        ];
        let add = await side.run(addArgs);
        // etcd 3.4 now and then answers "member not found" to a learner add
        // made just after a remove (seen on either side; the cluster is etcd's
        // on both): such an add changed nothing, so it is made again.
        for (let tries = 1; add.code !== 0 && add.stderr.includes("member not found"); tries++) {
          if (tries === 5) break;
          await new Promise((r) => setTimeout(r, 200));
          add = await side.run(addArgs);
        }
        assertEquals(add.code, 0, add.stderr);
        const json = JSON.parse(add.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"'));
        const id = BigInt(json.member.ID);
        names.set(id, "<new>");
        const removed = await side.run(
          ["--endpoints", endpoints, "member", "remove", id.toString(16), "-w", "json"],
        );
        sortedAt.add(`${i}:${outputs[i].length}`);
        outputs[i].push(`${add.code}\n${add.stdout}\n${removed.code}\n${removed.stdout}`);
      }
      const shown = (i: number) =>
        outputs[i].map((text, n) => {
          const m = mask(text, names, ctx.peers);
          return sortedAt.has(`${i}:${n}`) ? canonical(m) : m;
        });
      assertEquals(shown(1), shown(0));

      // Argument errors.
      for (
        const args of [
          ["member", "add"],
          ["member", "add", "x", "http://127.0.0.1:1"],
          ["member", "add", "x"],
          ["member", "add", "x", "--peer-urls=foo"],
          ["member", "add", "x", "--peer-urls=http://127.0.0.1"],
          ["member", "add", "x", "--peer-urls=http://127.0.0.1:1/p"],
          ["member", "remove"],
          ["member", "remove", "zz"],
          ["member", "update", "1234"],
          ["member", "promote", "1234"],
          ["member", "remove", "1234"],
          ["move-leader"],
          ["move-leader", "zz"],
          ["move-leader", "1234"],
        ]
      ) await compare("errors", ctx, args);

      // move-leader: to a follower, then back (by etcdctl), on each side.
      const { leader, followers } = await roles(cluster);
      const hexOf = (m: Member) =>
        [...ctx.names].find(([, n]) => n === `<${m.name}>`)![0].toString(16);
      const back = async () => {
        const r = await etcdctl(["--endpoints", endpoints, "move-leader", hexOf(leader)]);
        assertEquals(r.code, 0, r.stderr);
      };
      for (const w of ["simple", "json", "protobuf", "table", "fields"]) {
        const args = ["--endpoints", endpoints, "move-leader", hexOf(followers[0]), "-w", w];
        const want = await etcdctl(args);
        await back();
        const got = await ctl(args);
        await back();
        const norm = (r: Result) => ({
          code: r.code,
          stdout: mask(r.stdout, ctx.names, []),
          stderr: mask(r.stderr, ctx.names, []),
        });
        assertEquals(norm(got), norm(want), `move-leader -w ${w}`);
      }
      await compare("move-leader to the leader", ctx, ["move-leader", hexOf(leader)]);
      await compare("move-leader from followers only", {
        ...ctx,
        endpoints: followers.map((f) => f.endpoint).join(","),
      }, ["move-leader", hexOf(leader)]);
      await compare("status after moves", ctx, ["endpoint", "status", "--cluster", "-w", "json"]);
    } finally {
      await cluster.stop();
    }
  },
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A TCP proxy to `target` (`host:port`) that passes each request on and,
 * once the answer starts to arrive (the request has been executed), closes
 * the client's connection instead of passing it back: a write whose answer
 * is lost.
 */
function answerDroppingProxy(target: string): { endpoint: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [hostname, port] = target.split(":");
  const serve = async (conn: Deno.Conn) => {
    const upstream = await Deno.connect({ hostname, port: Number(port) });
    const forward = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
          await upstream.write(buf.subarray(0, n));
        }
      } catch {
        // closed below
      }
    })();
    try {
      await upstream.read(new Uint8Array(64 * 1024));
    } catch {
      // the answer never came: close anyway
    }
    for (const c of [conn, upstream]) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await forward;
  };
  (async () => {
    try {
      for await (const conn of listener) serve(conn).catch(() => {});
    } catch {
      // listener closed
    }
  })();
  return {
    endpoint: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: () => listener.close(),
  };
}

/** A txn that increments `key` (a decimal) if it is still at `current`'s mod revision. */
function increment(key: Uint8Array, current: KeyValue): TxnRequest {
  return {
    compare: [{ key, target: "MOD", result: "EQUAL", mod_revision: current.mod_revision }],
    success: [{
      request_put: { key, value: enc.encode(String(Number(dec.decode(current.value)) + 1)) },
    }],
    failure: [],
  };
}

Deno.test({
  name: "Client over three etcd members keeps working after its member is killed; no write twice",
  ignore: !HAVE_ETCD,
  // The watch and keep-alive connections to the killed member end with the process.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cluster = await startCluster();
    const stop = new AbortController();
    try {
      // The client's first endpoint is the leader: killing it also costs the cluster its leader.
      const { leader, followers } = await roles(cluster);
      const client = new Client({
        endpoints: [leader, ...followers].map((m) => `http://${m.endpoint}`),
        timeout: 3000,
      });
      const counter = enc.encode("counter");
      const start = await client.put(counter, "0");
      const used = await client.status();
      assertEquals(used.header.member_id, used.leader, "the client starts on the leader");

      // A write whose answer is lost is not sent again (it was executed once); a read is.
      const proxy = answerDroppingProxy(leader.endpoint);
      try {
        const lossy = () =>
          new Client({
            endpoints: [proxy.endpoint, ...followers.map((m) => m.endpoint)],
            timeout: 3000,
          });
        const lost = lossy();
        const txnErr = await lost.txn(increment(counter, (await client.get(counter)).kvs[0]))
          .catch((e) => e);
        assert(txnErr instanceof ConnectionError && !txnErr.notExecuted, String(txnErr));
        const putErr = await lossy().put("lost", "once").catch((e) => e);
        assert(putErr instanceof ConnectionError && !putErr.notExecuted, String(putErr));
        const after = await lossy().get(counter);
        assertEquals(dec.decode(after.kvs[0].value), "1", "the txn was executed once");
        assertEquals((await client.get("lost")).kvs[0].version, 1, "the put was executed once");
      } finally {
        proxy.close();
      }

      const watcher = client.watch(counter, {
        startRevision: start.header.revision + 1,
        signal: stop.signal,
      });
      await watcher.created;
      const lease = await new Lease(client).grant(5);
      const keepAlive = lease.keepAlive({ signal: stop.signal });

      // Each round: read the counter, then a txn that increments it only if it has not
      // changed since (compare on mod_revision), and a put of a value used once.
      let applied = 0; // txns that answered succeeded
      let failedCompare = 0; // txns that answered not succeeded: only a second execution can
      let ambiguous = 1; // writes that failed without saying whether applied (the lossy txn)
      let killed = false;
      let afterKill = 0;
      for (let round = 0; round < 200 && afterKill < 20; round++) {
        let current;
        try {
          current = (await client.get(counter)).kvs[0];
        } catch (e) {
          assert(e instanceof EtcdError, String(e));
          continue; // a read during the election: retried by the next round
        }
        const txn = client.txn(increment(counter, current));
        const put = client.put("log", `round-${round}`);
        const settled = Promise.allSettled([txn, put]);
        if (round === 5) {
          // kill -9 while the two writes may be in flight on the leader.
          await leader.kill();
          killed = true;
        }
        const [t, p] = await settled;
        for (const r of [t, p]) {
          if (r.status === "rejected") {
            assert(r.reason instanceof EtcdError, String(r.reason));
            ambiguous++;
          }
        }
        if (t.status === "fulfilled") {
          if (t.value.succeeded) applied++;
          else failedCompare++;
        }
        if (killed && t.status === "fulfilled" && p.status === "fulfilled") afterKill++;
      }
      assertEquals(afterKill, 20, "writes succeed again after the kill");
      assertEquals(failedCompare, 0, "no txn was executed twice");

      const final = (await client.get(counter)).kvs[0];
      const value = Number(dec.decode(final.value));
      assertEquals(final.version, value + 1);
      assert(value >= applied && value <= applied + ambiguous, `${value} vs ${applied}`);

      // Every value the counter took, each once, through a watch that lost its member.
      const seen: number[] = [];
      for await (const batch of watcher) {
        for (const ev of batch.events) seen.push(Number(dec.decode(ev.kv.value)));
        if (batch.revision >= final.mod_revision) break;
      }
      assertEquals(seen, Array.from({ length: value }, (_, i) => i + 1));

      // The log key's history: no put applied twice.
      const history = await client.get("log", { revision: 0 });
      const logs: string[] = [];
      for (let rev = history.kvs[0].create_revision; rev <= history.kvs[0].mod_revision; rev++) {
        const at = await client.get("log", { revision: rev });
        if (at.kvs.length > 0 && at.kvs[0].mod_revision === rev) {
          logs.push(dec.decode(at.kvs[0].value));
        }
      }
      assertEquals(new Set(logs).size, logs.length, "a put applied twice");
      assertEquals(logs.length, history.kvs[0].version);

      // The lease is still renewed, now through another member.
      for await (const renewal of keepAlive) {
        if (renewal.header.member_id !== used.header.member_id) break;
      }
      assert((await lease.timeToLive()).TTL > 0);
    } finally {
      stop.abort();
      await cluster.stop();
    }
  },
});
