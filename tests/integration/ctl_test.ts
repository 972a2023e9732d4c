/**
 * Differential test of `ctl` against etcdctl 3.4: the same command sequence
 * runs as `etcdctl` against a real etcd, as `main.ts ctl` against a second
 * real etcd (output must match byte for byte, except cluster/member IDs,
 * timings and database sizes), and as `main.ts ctl` against a cairn server
 * (additionally masking raft term/index and the server version string).
 * Skipped when the etcd or etcdctl binary is absent.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Client, EtcdError } from "../../client/mod.ts";
import {
  freePort,
  HAVE_ETCD as HAVE_ETCD_BINARY,
  ROOT,
  runs,
  type ServerProcess,
  startCairn as startCairnProcess,
  startEtcd as startEtcdProcess,
  withoutDenoNotices,
} from "../servers.ts";

const HAVE_ETCD = HAVE_ETCD_BINARY && (await runs("etcdctl", ["version"]));

interface Server {
  endpoint: string;
  stop(): Promise<void>;
}

/** Start a server on a fresh temp dir; stopping it SIGTERMs it and removes the dir. */
async function spawnServer(start: (dir: string) => Promise<ServerProcess>): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-ctl-test-" });
  let server: ServerProcess;
  try {
    server = await start(`${dir}/data`);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    endpoint: server.endpoint,
    stop: async () => {
      await server.terminate();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const startEtcd = (): Promise<Server> => spawnServer(startEtcdProcess);
const startCairn = (): Promise<Server> => spawnServer((dir) => startCairnProcess(dir));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], stdin: string, env = {}): Promise<Result> {
  const proc = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = proc.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await proc.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: withoutDenoNotices(dec.decode(out.stderr)),
  };
}

function etcdctl(endpoint: string, args: string[], stdin: string): Promise<Result> {
  return run("etcdctl", ["--endpoints", endpoint, ...args], stdin, { ETCDCTL_API: "3" });
}

/** The `ctl` task's command line from deno.json (`deno run … main.ts ctl`), deno resolved. */
const CTL_TASK: string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const words = String(config.tasks.ctl).trim().split(/\s+/);
  return words[0] === "deno" ? [Deno.execPath(), ...words.slice(1)] : words;
})();

/** `deno task ctl …`, run as the task defines it (same permissions). */
function ctl(endpoint: string, args: string[], stdin: string): Promise<Result> {
  const [cmd, ...taskArgs] = CTL_TASK;
  return run(cmd, [...taskArgs, "--endpoints", endpoint, ...args], stdin);
}

interface Step {
  args: string[];
  stdin?: string;
  /**
   * Name the lease ID this step prints (`lease <hex> granted`, or `"ID":<decimal>`):
   * later steps' `$NAME` arguments become it in hex, and outputs show it as `<NAME>`.
   */
  capture?: string;
}

/** The lease ID a step printed: `lease <hex> …` (simple) or `"ID":<decimal>` / `"ID" : <decimal>`. */
function leaseIdOf(stdout: string): bigint | undefined {
  const hex = /^lease ([0-9a-f]{16}) /m.exec(stdout);
  if (hex) return BigInt(`0x${hex[1]}`);
  const dec = /"ID" ?: ?(\d+)/.exec(stdout);
  return dec ? BigInt(dec[1]) : undefined;
}

/** Lease IDs captured on one side, by name. */
type Leases = Map<string, bigint>;

/** `$NAME` arguments replaced by the side's captured lease IDs in hex. */
function withLeases(args: string[], leases: Leases): string[] {
  return args.map((a) => a.replace(/\$(\w+)/g, (m, n) => leases.get(n)?.toString(16) ?? m));
}

/** The side's captured lease IDs (hex and decimal) shown as `<NAME>`; seconds left masked. */
function maskLeases(text: string, leases: Leases): string {
  let t = text;
  for (const [name, id] of leases) {
    t = t.replaceAll(id.toString(16).padStart(16, "0"), `<${name}>`).replaceAll(
      String(id),
      `<${name}>`,
    );
  }
  // Seconds left depend on when each side's step ran.
  t = t.replace(/remaining\(\d+s\)/g, "remaining(Ns)").replace(/"ttl":\d+/g, '"ttl":N');
  return t.replace(/"TTL" : \d+\n"GrantedTTL"/g, '"TTL" : N\n"GrantedTTL"');
}

const TXN_OK = 'mod("foo") > "0"\nvalue("foo") = "baz"\n\nput foo "new v" --prev-kv\nget foo2\n' +
  "del k3 --prev-kv\n\nget foo\n\n";
const TXN_FAIL = 'version("foo") = "50"\n\nput foo x\n\nget foo\nget foo --prefix --keys-only\n' +
  'put k9 "a b"\n\n';

/** The command sequence; each step sees the state the previous ones left. */
const STEPS: Step[] = [
  { args: ["put", "foo", "bar"] },
  { args: ["put", "foo", "baz", "--prev-kv"] },
  { args: ["put", "foo2", "hello world", "-w", "json"] },
  { args: ["get", "foo"] },
  { args: ["get", "foo", "-w", "json"] },
  { args: ["get", "foo", "--prefix", "-w", "json"] },
  { args: ["get", "", "--prefix", "--keys-only"] },
  { args: ["get", "foo", "--from-key", "--limit", "1", "-w", "json"] },
  { args: ["get", "", "--from-key", "--sort-by", "value", "--order", "descend"] },
  { args: ["get", "foo", "--prefix", "--print-value-only"] },
  { args: ["get", "foo", "-w", "fields"] },
  { args: ["get", "foo", "--consistency", "s", "--hex"] },
  { args: ["get", "missing", "-w", "json"] },
  { args: ["get", "foo", "--rev", "2"] },
  { args: ["get", "foo", "--rev", "1000"] },
  { args: ["put", "", "x"] },
  { args: ["put", "k3"], stdin: "from stdin" },
  { args: ["put", "k3", "--ignore-value", "--prev-kv", "-w", "json"] },
  { args: ["put", "missing", "--ignore-value"] },
  { args: ["put", "k3", "v", "--lease", "1234"] },
  { args: ["put", "k3", "v", "--lease", "zz"] },
  { args: ["txn"], stdin: TXN_OK },
  { args: ["txn", "-w", "json"], stdin: TXN_FAIL },
  { args: ["txn", "-i"], stdin: 'create("foo") > "0"\n\nput k5 y --prev-kv\n\n\n' },
  { args: ["txn"], stdin: 'mod("foo") = 0\n\n\n\n' },
  { args: ["txn"], stdin: "\nget a --bogus\n\n\n" },
  { args: ["txn"], stdin: "\nput a b\nput a c\n\n\n" },
  { args: ["txn"], stdin: 'value("foo") = "x"\n\nput a b\n' },
  { args: ["-w", "table", "get", "foo"] },
  { args: ["get", "foo", "-w", "json", "--print-value-only"] },
  { args: ["get", "foo", "--sort-by", "bogus"] },
  { args: ["del", "foo", "--prev-kv"] },
  { args: ["del", "foo", "--prefix", "-w", "json"] },
  { args: ["del", "nothing"] },
  { args: ["del"] },
  { args: ["compaction", "3"] },
  { args: ["compaction", "3"] },
  { args: ["compaction", "100000"] },
  { args: ["compaction", "abc"] },
  { args: ["get", "k3", "--rev", "2"] },
  { args: ["endpoint", "health"] },
  { args: ["endpoint", "health", "-w", "json"] },
  { args: ["endpoint", "status"] },
  { args: ["endpoint", "status", "-w", "json"] },
  { args: ["lease", "grant", "100"], capture: "L1" },
  { args: ["lease", "grant", "100", "-w", "json"], capture: "L2" },
  { args: ["lease", "grant", "100", "-w", "fields"], capture: "L3" },
  { args: ["lease", "grant", "9000000001"] },
  { args: ["lease", "grant", "abc"] },
  { args: ["lease", "grant"] },
  { args: ["lease", "timetolive", "1234", "-w", "table"] },
  { args: ["put", "lk1", "v", "--lease", "$L1"] },
  { args: ["put", "lk2", "v", "--lease", "$L2", "--prev-kv", "-w", "json"] },
  { args: ["get", "lk", "--prefix", "-w", "json"] },
  { args: ["lease", "timetolive", "$L1"] },
  { args: ["lease", "timetolive", "$L1", "--keys"] },
  { args: ["lease", "timetolive", "$L1", "--keys", "-w", "json"] },
  { args: ["lease", "timetolive", "$L1", "--keys", "-w", "fields"] },
  { args: ["lease", "timetolive", "$L2", "-w", "json"] },
  { args: ["lease", "timetolive", "1234"] },
  { args: ["lease", "timetolive", "1234", "-w", "json"] },
  { args: ["lease", "timetolive", "zz"] },
  { args: ["lease", "keep-alive", "--once", "$L1"] },
  { args: ["lease", "keep-alive", "--once", "$L1", "-w", "json"] },
  { args: ["lease", "keep-alive", "--once", "$L1", "-w", "fields"] },
  { args: ["lease", "keep-alive", "--once", "1234"] },
  { args: ["lease", "keep-alive", "1234"] },
  { args: ["lease", "keep-alive", "1234", "-w", "json"] },
  { args: ["lease", "keep-alive"] },
  { args: ["lease", "revoke", "$L2"] },
  { args: ["lease", "revoke", "$L3", "-w", "fields"] },
  { args: ["lease", "keep-alive", "--once", "$L1", "-w", "table"] },
  { args: ["get", "lk2"] },
  { args: ["lease", "list"] },
  { args: ["lease", "list", "-w", "json"] },
  { args: ["lease", "list", "-w", "fields"] },
  { args: ["lease", "revoke", "$L2"] },
  { args: ["lease", "revoke", "zz"] },
  { args: ["lease", "revoke", "$L1", "-w", "protobuf"] },
  { args: ["lease", "timetolive", "$L1"] },
  { args: ["get", "lk", "--prefix"] },
  { args: ["put", "lk3", "v", "--lease", "$L1"] },
  { args: ["lease"] },
  { args: ["lease", "--bogus"] },
  { args: ["lease", "ti", "-h"] },
  { args: ["lease", "keep-alive", "-h"] },
  { args: ["foo"] },
  { args: ["get", "--bogus"] },
  { args: ["get", "--limit", "x", "a"] },
  { args: ["put", "-h"] },
  { args: ["endpoint", "status", "--help"] },
  // lock with a command: deterministic apart from the key's lease ID (masked).
  { args: ["lock"] },
  { args: ["lock", "ctl-lock", "--", "sh", "-c", "echo $ETCD_LOCK_KEY $ETCD_LOCK_REV"] },
  { args: ["lock", "--ttl", "5", "ctl-lock", "--", "sh", "-c", "echo $ETCD_LOCK_REV"] },
  { args: ["lock", "ctl-lock", "sh", "-c", "echo x"] },
  { args: ["lock", "ctl-lock", "--", "sh", "-c", "exit 3"] },
  { args: ["lock", "ctl-lock", "--", "no-such-command-in-path"] },
  { args: ["lock", "ctl-lock", "echo", "held"] },
  { args: ["lock", "--ttl", "x", "ctl-lock", "echo"] },
  { args: ["get", "ctl-lock", "--prefix"] },
  { args: ["lock", "-h"] },
  { args: ["elect"] },
  { args: ["elect", "ctl-election"] },
  { args: ["elect", "ctl-election", "a", "b"] },
  { args: ["elect", "-l", "ctl-election", "a"] },
  { args: ["elect", "--help"] },
];

/** Masks what legitimately differs between two servers. */
function mask(text: string, endpoint: string, strict: boolean): string {
  let t = text.replaceAll(endpoint, "EP");
  // A lock or candidate key names its lease.
  t = t.replace(/\b(ctl-lock|ctl-held|ctl-el)\/[0-9a-f]+/g, "$1/LEASE");
  t = t.replace(/"key":"([A-Za-z0-9+/=]+)"/g, (m, b64) => {
    const key = atob(b64);
    return /^ctl-(held|el)\/[0-9a-f]+$/.test(key) ? '"key":"LOCK-KEY"' : m;
  });
  t = t.replace(/"lease":\d+/g, '"lease":LEASE');
  t = t.replace(/^\{"level":"warn".*\n/gm, ""); // clientv3's retry log lines
  t = t.replace(/"(cluster_id|member_id|leader)":\d+/g, '"$1":ID');
  t = t.replace(/"(ClusterID|MemberID|Leader)" : \d+/g, '"$1" : ID');
  t = t.replace(/\b(cluster_id|member_id):\d+/g, "$1:ID"); // a header in protobuf text
  t = t.replace(/"took":"[^"]*"/g, '"took":"T"').replace(/took = \S+/g, "took = T");
  t = t.replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":N');
  t = t.replace(/^EP, [0-9a-f]+, ([^,]+), [^,]+, /gm, "EP, ID, $1, SIZE, ");
  if (!strict) {
    t = t.replace(/"(raft_term|raftTerm|raftIndex|raftAppliedIndex)":\d+/g, '"$1":N');
    t = t.replace(/"RaftTerm" : \d+/g, '"RaftTerm" : N').replace(/\braft_term:\d+/g, "raft_term:N");
    t = t.replace(/"version":"[^"]*"/g, '"version":"V"');
    t = t.replace(
      /^EP, ID, [^,]+, SIZE, (true|false), (true|false), \d+, \d+, \d+, /gm,
      "EP, ID, V, SIZE, $1, $2, T, I, A, ",
    );
  }
  return t;
}

/** Read-only commands whose output includes the server's own IDs. */
const READS: Step[] = [
  { args: ["get", "", "--prefix", "-w", "protobuf"] },
  { args: ["get", "foo", "--prefix", "--keys-only", "-w", "protobuf"] },
  { args: ["get", "", "--from-key", "-w", "json"] },
  { args: ["get", "", "--from-key", "-w", "fields"] },
  { args: ["txn", "-w", "protobuf"], stdin: 'value("k3") != "zz"\n\nget k3\nget k --prefix\n\n\n' },
  { args: ["txn", "-w", "protobuf"], stdin: 'value("k3") = "zz"\n\n\nget foo\n\n' },
  { args: ["endpoint", "status", "-w", "table"] },
  { args: ["endpoint", "status", "-w", "fields"] },
  { args: ["lease", "timetolive", "1234", "-w", "protobuf"] },
  { args: ["lease", "list", "-w", "protobuf"] },
];

/** etcdctl and ctl against the same server: identical bytes, nothing masked. */
async function compareReadsOnOneServer(server: Server): Promise<void> {
  for (const step of READS) {
    const stdin = step.stdin ?? "";
    const want = await etcdctl(server.endpoint, step.args, stdin);
    const got = await ctl(server.endpoint, step.args, stdin);
    assertEquals(got, want, `ctl ${step.args.join(" ")} on the same server`);
  }
}

async function compareSequence(
  reference: Server,
  subject: Server,
  strict: boolean,
): Promise<void> {
  const wantLeases: Leases = new Map();
  const gotLeases: Leases = new Map();
  for (const step of STEPS) {
    const stdin = step.stdin ?? "";
    const want = await etcdctl(reference.endpoint, withLeases(step.args, wantLeases), stdin);
    const got = await ctl(subject.endpoint, withLeases(step.args, gotLeases), stdin);
    const label = step.args.join(" ");
    if (step.capture !== undefined) {
      for (const [side, r] of [[wantLeases, want], [gotLeases, got]] as const) {
        const id = leaseIdOf(r.stdout);
        if (id !== undefined) side.set(step.capture, id);
      }
    }
    assertEquals(
      {
        code: got.code,
        stdout: maskLeases(mask(got.stdout, subject.endpoint, strict), gotLeases),
        stderr: maskLeases(mask(got.stderr, subject.endpoint, strict), gotLeases),
      },
      {
        code: want.code,
        stdout: maskLeases(mask(want.stdout, reference.endpoint, strict), wantLeases),
        stderr: maskLeases(mask(want.stderr, reference.endpoint, strict), wantLeases),
      },
      `ctl ${label}`,
    );
  }
}

Deno.test({
  name: "ctl on etcd prints what etcdctl prints, byte for byte",
  ignore: !HAVE_ETCD,
  sanitizeResources: true,
  async fn() {
    const [a, b] = await Promise.all([startEtcd(), startEtcd()]);
    try {
      await compareSequence(a, b, true);
      await compareReadsOnOneServer(b);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  },
});

Deno.test({
  name: "ctl on cairn prints what etcdctl prints on etcd (ids, raft term/index masked)",
  ignore: !HAVE_ETCD,
  async fn() {
    const [a, c] = await Promise.all([startEtcd(), startCairn()]);
    try {
      await compareSequence(a, c, false);
    } finally {
      await Promise.all([a.stop(), c.stop()]);
    }
  },
});

Deno.test({
  name: "Client against etcd's gateway: failover past a dead endpoint, etcd's errors",
  ignore: !HAVE_ETCD,
  async fn() {
    const etcd = await startEtcd();
    try {
      const client = new Client({
        endpoints: [`127.0.0.1:${freePort()}`, `http://${etcd.endpoint}`],
        timeout: 3000,
      });
      const put = await client.put("a", "1");
      const rev = put.header.revision;
      await client.put("ab", "2", { prev_kv: true });
      const got = await client.get("a", { prefix: true });
      assertEquals(got.kvs.map((kv) => new TextDecoder().decode(kv.value)), ["1", "2"]);
      assertEquals(got.count, 2);
      const txn = await client.txn({
        compare: [{
          result: "EQUAL",
          target: "VALUE",
          key: new TextEncoder().encode("a"),
          value: new TextEncoder().encode("1"),
        }],
        success: [{ request_delete_range: { key: new TextEncoder().encode("ab"), prev_kv: true } }],
        failure: [],
      });
      assertEquals(txn.succeeded, true);
      const del = "response_delete_range" in txn.responses[0]
        ? txn.responses[0].response_delete_range
        : undefined;
      assertEquals(del?.deleted, 1);
      await client.compact(rev + 1);
      const err = await client.get("a", { revision: rev }).catch((e) => e);
      assertEquals(err instanceof EtcdError, true);
      assertEquals([err.message, err.code, err.httpStatus], [
        "etcdserver: mvcc: required revision has been compacted",
        11,
        400,
      ]);
      const status = await client.status();
      assertEquals(status.leader, status.header.member_id);
      assertEquals(await client.health(), { health: true });
      assertEquals((await client.version()).etcdcluster, "3.4.0");
    } finally {
      await etcd.stop();
    }
  },
});

/** A `watch` run: its arguments and the text its output ends with once complete. */
interface WatchStep {
  args: string[];
  /** Output (stdout) is complete when it contains this; undefined: the command exits by itself. */
  until?: string;
}

const END = "w/end";
const ENV_ECHO = 'echo "R=$ETCD_WATCH_REVISION T=$ETCD_WATCH_EVENT_TYPE K=$ETCD_WATCH_KEY ' +
  'V=$ETCD_WATCH_VALUE"';

/** Watches from revision 2, run after the writes: the history arrives in one response. */
const CATCH_UP: WatchStep[] = [
  { args: ["watch", "w", "--prefix", "--rev", "2"], until: END },
  { args: ["watch", "w", "--prefix", "--rev", "2", "--prev-kv"], until: END },
  { args: ["watch", "w", "--prefix", "--rev", "2", "--prev-kv", "-w", "json"], until: btoa(END) },
  {
    args: ["watch", "w", "--prefix", "--rev", "2", "--prev-kv", "--hex"],
    until: [...END].map((c) => `\\x${c.charCodeAt(0).toString(16)}`).join(""),
  },
  { args: ["watch", "w", "--prefix", "--rev", "2", "-w", "fields"], until: `"${END}"` },
  { args: ["watch", "w/a", "w/c", "--rev", "2"], until: "w/b\n\n" },
  {
    args: ["watch", "--rev", "2", "w", "--prefix", "--", "sh", "-c", ENV_ECHO],
    until: `K="${END}"`,
  },
  { args: ["watch", "w", "--prefix", "--rev", "2", "-w", "table"] },
  { args: ["watch", "w", "b", "--prefix"] },
  { args: ["watch", "w", "--rev", "2", "--"] },
  { args: ["watch", "w/a", "--rev", "2", "--", "sh", "-c", "exit 3"] },
];

/** Watches of a compacted revision: canceled by the server, ctl exits 5. */
const COMPACTED: WatchStep[] = [
  { args: ["watch", "w", "--prefix", "--rev", "2"] },
  { args: ["watch", "w", "--prefix", "--rev", "2", "-w", "json"] },
  { args: ["watch", "w", "--prefix", "--rev", "2", "-w", "fields"] },
];

/** Watches started before the writes (simple output does not show how responses are grouped). */
const LIVE: WatchStep[] = [
  { args: ["watch", "w", "--prefix"], until: END },
  { args: ["watch", "w", "--prefix", "--prev-kv"], until: END },
];

/** The writes every watch sees (through the gateway, so etcd and cairn get the same). */
async function watchWrites(endpoint: string): Promise<number> {
  const client = new Client({ endpoints: [endpoint] });
  const key = (k: string) => new TextEncoder().encode(k);
  await client.put("w/a", "1");
  await client.put("w/a", "2");
  await client.put("w/b", 'he"llo wörld\nx');
  await client.delete("w/a");
  await client.txn({
    compare: [],
    success: [
      { request_put: { key: key("w/a"), value: key("x") } },
      { request_put: { key: key("w/c"), value: key("y") } },
      { request_delete_range: { key: key("w/b") } },
    ],
    failure: [],
  });
  await client.put("w/bin", new Uint8Array([0xff, 0x00, 0x80, 0x41]));
  return (await client.put(END, ".")).header.revision;
}

/** Runs a watch until its output holds `until` (then SIGTERM), or until it exits. */
async function runWatch(cmd: string[], step: WatchStep, env = {}): Promise<Result> {
  const proc = new Deno.Command(cmd[0], {
    args: [...cmd.slice(1), ...step.args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let stdout = "";
  let stderr = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const c of s) add(dec.decode(c, { stream: true }));
  };
  const reading = Promise.all([
    pump(proc.stdout, (t) => stdout += t),
    pump(proc.stderr, (t) => stderr += t),
  ]);
  const deadline = Date.now() + 20_000;
  let exited = false;
  const status = proc.status.then((s) => {
    exited = true;
    return s;
  });
  while (step.until !== undefined && !exited && !stdout.includes(step.until)) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (step.until !== undefined && !exited) {
    await new Promise((r) => setTimeout(r, 200)); // a last exec command may still print
    proc.kill("SIGTERM");
  }
  const { code } = await status;
  await reading;
  return {
    code: step.until === undefined ? code : 0,
    stdout,
    stderr: withoutDenoNotices(stderr),
  };
}

const etcdctlCmd = (endpoint: string) => ["etcdctl", "--endpoints", endpoint];
const ctlCmd = (endpoint: string) => [...CTL_TASK, "--endpoints", endpoint];

/** Every step on both sides at once; results in step order. */
function runSteps(
  steps: WatchStep[],
  cmd: string[],
  env: Record<string, string> = {},
): Promise<Result[]> {
  return Promise.all(steps.map((s) => runWatch(cmd, s, env)));
}

async function compareWatches(
  reference: Server,
  subject: Server,
  subjectCmd: (ep: string) => string[],
  strict: boolean,
): Promise<void> {
  const etcdEnv = { ETCDCTL_API: "3" };
  const check = (got: Result[], want: Result[], steps: WatchStep[]) => {
    steps.forEach((step, i) => {
      if (step.until !== undefined) {
        assertEquals(want[i].stdout.includes(step.until), true, `etcdctl ${step.args.join(" ")}`);
      }
      assertEquals(
        {
          code: got[i].code,
          stdout: mask(got[i].stdout, subject.endpoint, strict),
          stderr: mask(got[i].stderr, subject.endpoint, strict),
        },
        {
          code: want[i].code,
          stdout: mask(want[i].stdout, reference.endpoint, strict),
          stderr: mask(want[i].stderr, reference.endpoint, strict),
        },
        `watch ${step.args.join(" ")}`,
      );
    });
  };
  // Live watchers from the next revision: they see the writes whenever they connect.
  const liveFrom = (ep: string) =>
    new Client({ endpoints: [ep] }).get("w").then((r) => String(r.header.revision + 1));
  const live = (from: string) => LIVE.map((s) => ({ ...s, args: [...s.args, "--rev", from] }));
  const [refFrom, subFrom] = await Promise.all([
    liveFrom(reference.endpoint),
    liveFrom(subject.endpoint),
  ]);
  const liveWant = runSteps(live(refFrom), etcdctlCmd(reference.endpoint), etcdEnv);
  const liveGot = runSteps(live(subFrom), subjectCmd(subject.endpoint));
  await new Promise((r) => setTimeout(r, 500));
  await Promise.all([watchWrites(reference.endpoint), watchWrites(subject.endpoint)]);
  check(await liveGot, await liveWant, LIVE);

  const [want, got] = await Promise.all([
    runSteps(CATCH_UP, etcdctlCmd(reference.endpoint), etcdEnv),
    runSteps(CATCH_UP, subjectCmd(subject.endpoint)),
  ]);
  check(got, want, CATCH_UP);

  await Promise.all(
    [reference, subject].map((s) => new Client({ endpoints: [s.endpoint] }).compact(5)),
  );
  const [cWant, cGot] = await Promise.all([
    runSteps(COMPACTED, etcdctlCmd(reference.endpoint), etcdEnv),
    runSteps(COMPACTED, subjectCmd(subject.endpoint)),
  ]);
  check(cGot, cWant, COMPACTED);
}

Deno.test({
  name: "ctl watch on etcd prints what etcdctl watch prints (formats, --prev-kv, --hex, exec env)",
  ignore: !HAVE_ETCD,
  async fn() {
    const [a, b] = await Promise.all([startEtcd(), startEtcd()]);
    try {
      await compareWatches(a, b, ctlCmd, true);
      // Same server, same history: protobuf bytes (IDs included) must match too.
      const step = { args: ["watch", "w", "--prefix", "--rev", "5", "-w", "protobuf"], until: END };
      const [want] = await runSteps([step], etcdctlCmd(b.endpoint), { ETCDCTL_API: "3" });
      const [got] = await runSteps([step], ctlCmd(b.endpoint));
      assertEquals(got, want, "watch -w protobuf on the same server");
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  },
});

Deno.test({
  name: "ctl watch on cairn prints what etcdctl watch prints on etcd (ids, raft term masked)",
  ignore: !HAVE_ETCD,
  async fn() {
    const [a, c] = await Promise.all([startEtcd(), startCairn()]);
    try {
      await compareWatches(a, c, ctlCmd, false);
    } finally {
      await Promise.all([a.stop(), c.stop()]);
    }
  },
});

/** A long-running ctl or etcdctl process whose output is collected as it comes. */
class Running {
  stdout = "";
  stderr = "";
  readonly #proc: Deno.ChildProcess;
  readonly #reading: Promise<unknown>;

  constructor(cmd: string[], args: string[], env: Record<string, string>) {
    this.#proc = new Deno.Command(cmd[0], {
      args: [...cmd.slice(1), ...args],
      cwd: ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      for await (const c of s) add(dec.decode(c, { stream: true }));
    };
    this.#reading = Promise.all([
      pump(this.#proc.stdout, (t) => this.stdout += t),
      pump(this.#proc.stderr, (t) => this.stderr += t),
    ]);
  }

  /** Waits until stdout holds `text` `times` times (at most 20 s). */
  async printed(text: string, times = 1): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (this.stdout.split(text).length - 1 < times && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGINT (what Ctrl-C sends), then the exit. */
  interrupt(): Promise<Result> {
    this.#proc.kill("SIGINT");
    return this.exit();
  }

  /** The process's exit code and whole output. */
  async exit(): Promise<Result> {
    const { code } = await this.#proc.status;
    await this.#reading;
    return { code, stdout: this.stdout, stderr: withoutDenoNotices(this.stderr) };
  }
}

/** Waits until `count` keys exist under `prefix` (a waiter has queued its key). */
async function keysUnder(endpoint: string, prefix: string, count: number): Promise<void> {
  const client = new Client({ endpoints: [endpoint] });
  const deadline = Date.now() + 20_000;
  while ((await client.get(prefix, { prefix: true, count_only: true })).count < count) {
    if (Date.now() > deadline) throw new Error(`${count} keys under ${prefix} never appeared`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Locks and elections held until SIGINT, on one side: a held lock printed,
 * a waiter running its command once the holder is interrupted, a waiter
 * interrupted before it holds; two candidates and an observer.
 */
async function interruptScenario(cmd: string[], endpoint: string, env: Record<string, string>) {
  const start = (...args: string[]) => new Running(cmd, args, env);
  const out: Record<string, Result> = {};
  const holder = start("lock", "ctl-held");
  await holder.printed("\n\n");
  const waiter = start("lock", "ctl-held", "--", "sh", "-c", "echo got $ETCD_LOCK_REV");
  await keysUnder(endpoint, "ctl-held/", 2);
  out.holder = await holder.interrupt();
  out.waiter = await waiter.exit();

  const json = start("lock", "-w", "json", "ctl-held");
  await json.printed("\n");
  const giver = start("lock", "ctl-held");
  await keysUnder(endpoint, "ctl-held/", 2);
  out.giver = await giver.interrupt();
  out.json = await json.interrupt();

  const observer = start("elect", "-l", "ctl-el");
  const first = start("elect", "ctl-el", "p1");
  await first.printed("p1\n");
  await observer.printed("p1\n");
  const second = start("elect", "-w", "json", "ctl-el", "p2");
  await keysUnder(endpoint, "ctl-el/", 2);
  out.first = await first.interrupt();
  await second.printed("\n");
  await observer.printed("p2\n");
  out.second = await second.interrupt();
  out.observer = await observer.interrupt();
  return out;
}

async function compareInterrupts(reference: Server, subject: Server, strict: boolean) {
  const [want, got] = await Promise.all([
    interruptScenario(etcdctlCmd(reference.endpoint), reference.endpoint, { ETCDCTL_API: "3" }),
    interruptScenario(ctlCmd(subject.endpoint), subject.endpoint, {}),
  ]);
  for (const name of Object.keys(want)) {
    const show = (r: Result, ep: string) => ({
      code: r.code,
      stdout: mask(r.stdout, ep, strict),
      stderr: mask(r.stderr, ep, strict),
    });
    assertEquals(show(got[name], subject.endpoint), show(want[name], reference.endpoint), name);
  }
}

Deno.test({
  name: "ctl lock and elect held until SIGINT print and exit as etcdctl's, on etcd and on cairn",
  ignore: !HAVE_ETCD,
  async fn() {
    const servers = await Promise.all([startEtcd(), startEtcd(), startEtcd(), startCairn()]);
    const [a, b, a2, c] = servers;
    try {
      await Promise.all([compareInterrupts(a, b, true), compareInterrupts(a2, c, false)]);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  },
});
