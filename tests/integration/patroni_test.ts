/**
 * The real-world acceptance test: Patroni (apt `patroni`) runs two
 * PostgreSQL nodes with cairn as its etcd3 store (the JSON gateway: leases,
 * keep-alives, txns, watches, the member list). They elect a leader, the
 * other streams from it as a replica, and when the leader's Patroni and
 * PostgreSQL are killed with SIGKILL the replica takes over, on a single
 * cairn member and on a 3-member cairn cluster.
 *
 * Skipped where Patroni, PostgreSQL 15 or the `postgres` user (PostgreSQL
 * refuses to run as root) is missing.
 */
import assert from "node:assert/strict";
import { runs, startCairn } from "../servers.ts";
import { allocatePorts, startCluster } from "./cluster_harness.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const HAVE_PATRONI = await runs("patroni", ["--version"]) &&
  await runs(`${PG_BIN}/postgres`, ["--version"]) &&
  await runs("id", ["postgres"]);

/** Patroni's leader key TTL (s); loop_wait + 2 × retry_timeout must not exceed it. */
const TTL_S = 10;
/** Time allowed for the first leader and the streaming replica, in ms. */
const SETTLE_MS = 90_000;
/** Time allowed for the replica to take over after the leader is killed, in ms. */
const FAILOVER_MS = 60_000;
const POLL_MS = 500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface PatroniNode {
  name: string;
  api: string;
  dir: string;
  child: Deno.ChildProcess;
}

/** Patroni's configuration of node `name` with cairn at `hosts`. */
function config(name: string, hosts: string[], apiPort: number, pgPort: number, dir: string) {
  return `scope: cairn-acceptance
name: ${name}
restapi:
  listen: 127.0.0.1:${apiPort}
  connect_address: 127.0.0.1:${apiPort}
etcd3:
  hosts: ${hosts.join(",")}
bootstrap:
  dcs:
    ttl: ${TTL_S}
    loop_wait: 2
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
  initdb:
  - encoding: UTF8
  pg_hba:
  - host replication replicator 127.0.0.1/32 trust
  - host all all 127.0.0.1/32 trust
  - local all all trust
postgresql:
  listen: 127.0.0.1:${pgPort}
  connect_address: 127.0.0.1:${pgPort}
  data_dir: ${dir}/data
  bin_dir: ${PG_BIN}
  pgpass: ${dir}/pgpass
  authentication:
    replication: {username: replicator, password: rep}
    superuser: {username: postgres, password: pw}
  parameters:
    unix_socket_directories: ${dir}
`;
}

async function startNode(name: string, hosts: string[], root: string): Promise<PatroniNode> {
  const [apiPort, pgPort] = allocatePorts(2);
  const dir = `${root}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/patroni.yml`, config(name, hosts, apiPort, pgPort, dir));
  await new Deno.Command("chown", { args: ["-R", "postgres:postgres", root] }).output();
  // Its own process group, so that Patroni and its PostgreSQL die together.
  const child = new Deno.Command("setsid", {
    args: [
      "su",
      "postgres",
      "-s",
      "/bin/sh",
      "-c",
      `cd ${dir} && exec patroni ${dir}/patroni.yml >>${dir}/patroni.log 2>&1`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { name, api: `http://127.0.0.1:${apiPort}`, dir, child };
}

/** Kill a node's Patroni and PostgreSQL with SIGKILL. */
async function killNode(node: PatroniNode): Promise<void> {
  await new Deno.Command("pkill", { args: ["-9", "-f", node.dir] }).output();
  try {
    Deno.kill(-node.child.pid, "SIGKILL");
  } catch { /* gone already */ }
  await node.child.status;
}

/** A node's role as its REST API reports it ("master"/"primary", "replica"), or undefined. */
async function role(node: PatroniNode): Promise<string | undefined> {
  try {
    const res = await fetch(`${node.api}/patroni`, { signal: AbortSignal.timeout(1000) });
    const body = await res.json() as { role?: string; state?: string };
    return body.state === "running" ? body.role : undefined;
  } catch {
    return undefined;
  }
}

/** Replication as the leader's REST API reports it. */
async function streaming(leader: PatroniNode): Promise<boolean> {
  try {
    const res = await fetch(`${leader.api}/patroni`, { signal: AbortSignal.timeout(1000) });
    const body = await res.json() as { replication?: { state?: string }[] };
    return (body.replication ?? []).some((r) => r.state === "streaming");
  } catch {
    return false;
  }
}

const isLeader = (r: string | undefined) => r === "master" || r === "primary";

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < Math.ceil(timeoutMs / POLL_MS); i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

async function failoverScenario(hosts: string[]): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "cairn-patroni-" });
  const nodes: PatroniNode[] = [];
  try {
    nodes.push(await startNode("pg1", hosts, root));
    nodes.push(await startNode("pg2", hosts, root));
    let leader: PatroniNode | undefined;
    let replica: PatroniNode | undefined;
    await until("a leader and a streaming replica", SETTLE_MS, async () => {
      const roles = await Promise.all(nodes.map(role));
      const l = nodes.findIndex((_, i) => isLeader(roles[i]));
      if (l < 0 || roles[1 - l] !== "replica") return false;
      leader = nodes[l];
      replica = nodes[1 - l];
      return await streaming(leader);
    });
    await killNode(leader!);
    await until("the replica takes over", FAILOVER_MS, async () => isLeader(await role(replica!)));
    assert.ok(isLeader(await role(replica!)));
  } catch (err) {
    const logs = await Promise.all(
      nodes.map(async (n) =>
        `--- ${n.name}\n${
          (await Deno.readTextFile(`${n.dir}/patroni.log`).catch(() => "")).split("\n").slice(-15)
            .join("\n")
        }`
      ),
    );
    throw new Error(`${err}\n${logs.join("\n")}`);
  } finally {
    for (const n of nodes) await killNode(n);
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "patroni: two PostgreSQL nodes elect a leader, replicate and fail over on one cairn member",
  ignore: !HAVE_PATRONI,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cairn-patroni-store-" });
    const cairn = await startCairn(dir);
    try {
      await failoverScenario([cairn.endpoint]);
    } finally {
      await cairn.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "patroni: the same on a 3-member cairn cluster",
  ignore: !HAVE_PATRONI,
  fn: async () => {
    const cluster = await startCluster({ kind: "cairn", size: 3 });
    try {
      await failoverScenario(cluster.members.map((m) => new URL(m.clientUrl).host));
    } finally {
      await cluster.close();
    }
  },
});
