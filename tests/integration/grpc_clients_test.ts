/**
 * Real third-party etcd v3 gRPC clients against cairn: python3-etcd3 (the
 * Debian package, run by a short `python3 -c` script) and npm `etcd3` 1.1.2
 * (a small Deno script run as a subprocess, outside this project's config,
 * lock file and node_modules). Each script puts, gets, watches one event,
 * grants a lease and puts with it, and takes and gives back a lock, printing
 * one line per step. It runs against a real etcd 3.4 first (which proves the
 * script and its expected output right), then against cairn; both must print
 * exactly the expected lines.
 *
 * Skipped, with a message saying what to install, when etcd or the client is
 * absent.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { HAVE_ETCD } from "../servers.ts";
import { runCommand, type Server, startServer } from "./etcdctl_diff.ts";

/** Time one client script may take, in ms (the first npm run also downloads etcd3). */
const CLIENT_TIMEOUT_MS = 120_000;

/** The first Python on this machine that imports etcd3 (Debian's is /usr/bin/python3). */
async function findPython(): Promise<string | undefined> {
  for (const python of ["/usr/bin/python3", "python3"]) {
    const r = await runCommand(python, ["-c", "import etcd3"], { timeoutMs: 30_000 })
      .catch(() => undefined);
    if (r?.code === 0) return python;
  }
  return undefined;
}

const PYTHON = HAVE_ETCD ? await findPython() : undefined;
if (HAVE_ETCD && PYTHON === undefined) {
  console.warn(
    "grpc_clients_test: python3-etcd3 is not installed (apt-get install python3-etcd3): " +
      "its test is skipped",
  );
}
if (!HAVE_ETCD) console.warn("grpc_clients_test: no etcd binary: the client tests are skipped");

/** What one run of a client script printed. */
interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Start etcd and cairn (single members), run `client` against each, stop both. */
async function againstBoth(
  client: (endpoint: string, dir: string) => Promise<ClientRun>,
): Promise<{ etcd: ClientRun; cairn: ClientRun }> {
  const started = await Promise.allSettled([startServer("etcd"), startServer("cairn")]);
  try {
    const [etcd, cairn] = started.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    }) as [Server, Server];
    const [a, b] = await Promise.all([
      client(etcd.endpoint, etcd.dir),
      client(cairn.endpoint, cairn.dir),
    ]);
    return { etcd: a, cairn: b };
  } finally {
    await Promise.all(started.map((s) => s.status === "fulfilled" && s.value.close()));
  }
}

/** Assert that `run` exited 0 and printed `expected`, saying which server it ran against. */
function assertPrinted(run: ClientRun, expected: string[], server: string): void {
  assertEquals(
    { code: run.code, lines: run.stdout.trimEnd().split("\n") },
    { code: 0, lines: expected },
    `against ${server}; stderr:\n${run.stderr}`,
  );
}

// ---------------------------------------------------------------------------
// python3-etcd3

/**
 * The python3-etcd3 script: argv[1] is `host:port`. The watch replays the
 * put from its revision (no race with the watch's creation); a second watch
 * sees a put made after it was created.
 */
const PYTHON_SCRIPT = `
import sys, etcd3
host, port = sys.argv[1].rsplit(":", 1)
c = etcd3.client(host=host, port=int(port), timeout=10)
def say(s): print(s, flush=True)
c.put("/py/k", "v1")
value, meta = c.get("/py/k")
say(f"get {value.decode()} version {meta.version}")
events, cancel = c.watch("/py/k", start_revision=meta.mod_revision)
ev = next(events)
say(f"watch {type(ev).__name__} {ev.key.decode()} {ev.value.decode()}")
cancel()
events, cancel = c.watch_prefix("/py/live/")
c.put("/py/live/1", "x")
ev = next(events)
say(f"live {type(ev).__name__} {ev.key.decode()} {ev.value.decode()}")
cancel()
lease = c.lease(30)
c.put("/py/leased", "x", lease=lease)
value, meta = c.get("/py/leased")
say(f"leased {value.decode()} attached {meta.lease_id == lease.id}")
say(f"granted ttl {lease.granted_ttl}")
lease.refresh()
lease.revoke()
say(f"after revoke {c.get('/py/leased')[0]}")
lock = c.lock("py-lock", ttl=10)
say(f"acquired {lock.acquire(timeout=5)} held {lock.is_acquired()}")
lock.release()
say(f"held after release {lock.is_acquired()}")
c.close()
`;

const PYTHON_EXPECTED = [
  "get v1 version 1",
  "watch PutEvent /py/k v1",
  "live PutEvent /py/live/1 x",
  "leased x attached True",
  "granted ttl 30",
  "after revoke None",
  "acquired True held True",
  "held after release False",
];

Deno.test({
  name: "python3-etcd3 against etcd and cairn: put, get, watch, lease, lock",
  ignore: PYTHON === undefined,
  async fn() {
    const runs = await againstBoth(async (endpoint) => {
      const r = await runCommand(PYTHON!, ["-c", PYTHON_SCRIPT, endpoint], {
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
      const stdout = new TextDecoder().decode(r.stdout);
      return { code: r.code, stdout, stderr: r.stderr };
    });
    assertPrinted(runs.etcd, PYTHON_EXPECTED, "etcd");
    assertPrinted(runs.cairn, PYTHON_EXPECTED, "cairn");
  },
});

// ---------------------------------------------------------------------------
// npm etcd3

/** The npm etcd3 script, written to a temp dir and run by Deno: Deno.args[0] is `host:port`. */
const NPM_SCRIPT = `
import { Etcd3 } from "npm:etcd3@1.1.2";
const client = new Etcd3({ hosts: "http://" + Deno.args[0], dialTimeout: 5000 });
const say = (s: string) => console.log(s);
try {
  await client.put("/js/k").value("v1");
  say("get " + await client.get("/js/k").string());
  const watcher = await client.watch().key("/js/k").create();
  const seen = new Promise<string>((resolve) =>
    watcher.on("put", (kv) => resolve(kv.key.toString() + " " + kv.value.toString()))
  );
  await client.put("/js/k").value("v2");
  say("watch " + await seen);
  await watcher.cancel();
  const lease = client.lease(30, { autoKeepAlive: false });
  const id = await lease.grant();
  await lease.put("/js/leased").value("x");
  const kv = (await client.get("/js/leased").exec()).kvs[0];
  say("leased " + kv.value.toString() + " attached " + (kv.lease === id));
  await lease.keepaliveOnce();
  await lease.revoke();
  say("after revoke " + await client.get("/js/leased").string());
  const lock = client.lock("js-lock");
  await lock.acquire();
  say("locked");
  await lock.release();
  say("released");
} finally {
  client.close();
}
`;

const NPM_EXPECTED = [
  "get v1",
  "watch /js/k v2",
  "leased x attached true",
  "after revoke null",
  "locked",
  "released",
];

Deno.test({
  name: "npm etcd3 1.1.2 against etcd and cairn: put, get, watch, lease, lock",
  ignore: !HAVE_ETCD,
  async fn() {
    const runs = await againstBoth(async (endpoint, dir) => {
      const script = `${dir}/npm_etcd3_client.ts`;
      await Deno.writeTextFile(script, NPM_SCRIPT);
      // Outside the project: no deno.json, no lock file, npm packages from the global cache.
      const r = await runCommand(Deno.execPath(), [
        "run",
        "-A",
        "--no-config",
        "--no-lock",
        "--node-modules-dir=none",
        script,
        endpoint,
      ], { cwd: dir, timeoutMs: CLIENT_TIMEOUT_MS, env: { NO_COLOR: "1" } });
      const stdout = new TextDecoder().decode(r.stdout);
      return { code: r.code, stdout, stderr: r.stderr };
    });
    assertPrinted(runs.etcd, NPM_EXPECTED, "etcd");
    assertPrinted(runs.cairn, NPM_EXPECTED, "cairn");
  },
});
