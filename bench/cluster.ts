/**
 * Load on a 3-member cluster of real etcd 3.4 or of cairn, on loopback with
 * default heartbeat and election timeouts (the cluster harness of
 * tests/integration starts it):
 *
 * - durable puts (bench/wrk.lua, 256 B values over 1000 keys), then
 *   linearizable single-key ranges, each from {@linkcode CONNECTIONS} wrk
 *   connections spread over the three members' client URLs (one wrk process
 *   per member, run at once), for `seconds` each;
 * - failover: a writer per follower puts in a loop while the leader is
 *   killed with SIGKILL; reported is the time from the kill to the first
 *   acknowledged put sent after it. The killed member is restarted between
 *   rounds.
 *
 * With `--peer-tls`, the members talk over https peer URLs with
 * --peer-client-cert-auth (a CA and a member certificate made with openssl
 * at start, tests/certs.ts).
 *
 * Usage: deno run -A bench/cluster.ts etcd|cairn [seconds per load run, default 10] [--peer-tls]
 *
 * @module
 */

import {
  type Cluster,
  type ClusterKind,
  type Member,
  put,
  RequestError,
  startCluster,
} from "../tests/integration/cluster_harness.ts";
import { makeCa, makeCert, tlsClient } from "../tests/certs.ts";

/** wrk connections in all, split over the members. */
const CONNECTIONS = 64;
/** Seconds of the warm-up that creates the keys the ranges read. */
const WARMUP_SECONDS = 2;
/** Failover rounds. */
const FAILOVER_ROUNDS = 3;
/** Time the writers write before the kill, in ms. */
const BEFORE_KILL_MS = 500;
/** Time allowed for one put of the failover writers, in ms. */
const FAILOVER_PUT_TIMEOUT_MS = 250;
/** Time allowed for writes to succeed again after the kill, in ms. */
const FAILOVER_MAX_MS = 30_000;
/** Upper bound on one failover writer's puts in a round. */
const MAX_FAILOVER_PUTS = 100_000;
/** Time allowed for a wrk run beyond its duration, in ms. */
const WRK_GRACE_MS = 20_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One wrk run's figures. */
interface WrkResult {
  rps: number;
  /** Non-2xx answers plus socket errors. */
  errors: number;
}

async function wrk(url: string, mode: "put" | "get", conns: number, seconds: number) {
  const child = new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${conns}`,
      `-d${seconds}s`,
      "-s",
      new URL("./wrk.lua", import.meta.url).pathname,
      url,
      "--",
      mode,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), seconds * 1000 + WRK_GRACE_MS);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, errors: non2xx + socketErrors } as WrkResult;
}

/** `mode` load from {@linkcode CONNECTIONS} connections split over every member at once. */
async function spread(cluster: Cluster, mode: "put" | "get", seconds: number) {
  const n = cluster.members.length;
  const runs = await Promise.all(cluster.members.map((m, i) => {
    const conns = Math.floor(CONNECTIONS / n) + (i < CONNECTIONS % n ? 1 : 0);
    return wrk(m.clientUrl, mode, conns, seconds);
  }));
  return {
    rps: runs.reduce((a, r) => a + r.rps, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
  };
}

/** Kill the leader while a writer per follower puts; ms from the kill to the first ack after it. */
async function failover(cluster: Cluster, round: number): Promise<number> {
  const leader = await cluster.leader();
  const followers = cluster.others(leader);
  let killedAt = Infinity;
  let recoveredAt = Infinity;
  let stop = false;
  const writers = followers.map(async (m: Member, w) => {
    for (let i = 0; i < MAX_FAILOVER_PUTS && !stop; i++) {
      const call = performance.now();
      try {
        await put(m, `failover/${round}/${w}/${i}`, "x", FAILOVER_PUT_TIMEOUT_MS);
        if (call > killedAt) {
          recoveredAt = Math.min(recoveredAt, performance.now());
          stop = true;
        }
      } catch (err) {
        if (!(err instanceof RequestError)) throw err;
      }
      if (performance.now() - killedAt > FAILOVER_MAX_MS) stop = true;
    }
  });
  await sleep(BEFORE_KILL_MS);
  killedAt = performance.now();
  await cluster.kill(leader, "SIGKILL");
  await Promise.all(writers);
  await cluster.restart(leader);
  await cluster.waitReady();
  return recoveredAt - killedAt;
}

async function main(): Promise<void> {
  const kind = Deno.args[0] as ClusterKind;
  if (kind !== "etcd" && kind !== "cairn") {
    console.error("usage: deno run -A bench/cluster.ts etcd|cairn [seconds]");
    Deno.exit(2);
  }
  const peerTls = Deno.args.includes("--peer-tls");
  const seconds = Number(Deno.args.filter((a) => !a.startsWith("--"))[1] ?? 10);
  const certDir = await Deno.makeTempDir({ prefix: "cairn-bench-certs-" });
  const ca = await makeCa(certDir, "ca");
  const member = await makeCert(certDir, ca, "member");
  const peerClient = tlsClient(ca, member);
  const cluster = await startCluster({
    kind,
    size: 3,
    ...(peerTls
      ? {
        peerScheme: "https" as const,
        peerClient,
        flags: [
          "--peer-cert-file",
          member.cert,
          "--peer-key-file",
          member.key,
          "--peer-trusted-ca-file",
          ca.cert,
          "--peer-client-cert-auth",
        ],
      }
      : {}),
  });
  try {
    await wrk(cluster.members[0].clientUrl, "put", 8, WARMUP_SECONDS); // creates the 1000 keys
    const puts = await spread(cluster, "put", seconds);
    const gets = await spread(cluster, "get", seconds);
    const failovers: number[] = [];
    for (let r = 1; r <= FAILOVER_ROUNDS; r++) failovers.push(await failover(cluster, r));
    const fmt = (x: number) => Number.isFinite(x) ? x.toFixed(0) : "none";
    console.log(
      [
        `| 3-member ${kind}${
          peerTls ? ", peer TLS" : ""
        }, loopback, ${seconds} s per run | req/s | errors |`,
        "|---|---|---|",
        `| durable put, 256 B, 1000 keys, ${CONNECTIONS} conns over 3 members | ${
          fmt(puts.rps)
        } | ${puts.errors} |`,
        `| linearizable single-key range, ${CONNECTIONS} conns over 3 members | ${
          fmt(gets.rps)
        } | ${gets.errors} |`,
        "",
        "| failover (kill -9 of the leader) | ms until a put is acknowledged again |",
        "|---|---|",
        ...failovers.map((ms, i) => `| round ${i + 1} | ${fmt(ms)} |`),
      ].join("\n"),
    );
  } finally {
    await cluster.close();
    peerClient.close();
    await Deno.remove(certDir, { recursive: true });
  }
}

if (import.meta.main) await main();
