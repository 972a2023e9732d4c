/**
 * /metrics against a running member (HTTP workers on, so a scrape merges
 * every thread's values) and a 3-member cluster: etcd 3.4's metric names,
 * types and labels, counters that move with requests, and, against the real
 * etcd 3.4, the same counter deltas for the same requests and every metric
 * etcd's Grafana dashboard queries present on both.
 *
 * @module
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { parser as promql } from "@prometheus-io/lezer-promql";
import {
  freePort,
  HAVE_ETCD,
  ROOT,
  type ServerProcess,
  startCairn,
  startEtcd,
} from "../servers.ts";
import { type ClusterKind, startCluster } from "./cluster_harness.ts";

/** A metric family as parse-prometheus-text-format gives it. */
interface Family {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}

/** Scrape `url` + path and parse it with a Prometheus text-format parser. */
async function scrape(url: string, path = "/metrics"): Promise<Map<string, Family>> {
  const res = await fetch(url + path);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
  texts.set(families, text);
  return families;
}

/** The text each parsed scrape came from. */
const texts = new WeakMap<Map<string, Family>, string>();

/**
 * The `_count` of a labelled histogram's series, read from the scrape's
 * text: parse-prometheus-text-format merges the series of a histogram with
 * labels into one (it keeps the buckets of the last and drops the labels).
 */
function histogramCount(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string>,
): number {
  for (const line of texts.get(families)!.split("\n")) {
    if (!line.startsWith(`${name}_count{`)) continue;
    const inner = line.slice(line.indexOf("{") + 1, line.lastIndexOf("}"));
    if (Object.entries(labels).every(([k, v]) => inner.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

/** The value of the series of `name` whose labels include `labels` (0 when absent). */
function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name);
  if (family === undefined) return 0;
  if (family.type === "HISTOGRAM" && Object.keys(labels).length > 0) {
    return histogramCount(families, name, labels);
  }
  const series = family.metrics.find((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  );
  if (series === undefined) return 0;
  return Number(series.value ?? series.count);
}

/**
 * The metrics cairn must expose with etcd 3.4's type (as `curl
 * localhost:2379/metrics` on etcd 3.4.23 shows them).
 */
const REQUIRED: Record<string, Family["type"]> = {
  etcd_server_has_leader: "GAUGE",
  etcd_server_is_leader: "GAUGE",
  etcd_server_is_learner: "GAUGE",
  etcd_server_leader_changes_seen_total: "COUNTER",
  etcd_server_proposals_committed_total: "GAUGE",
  etcd_server_proposals_applied_total: "GAUGE",
  etcd_server_proposals_pending: "GAUGE",
  etcd_server_proposals_failed_total: "COUNTER",
  etcd_server_id: "GAUGE",
  etcd_server_version: "GAUGE",
  etcd_cluster_version: "GAUGE",
  etcd_server_quota_backend_bytes: "GAUGE",
  etcd_disk_wal_fsync_duration_seconds: "HISTOGRAM",
  etcd_disk_backend_commit_duration_seconds: "HISTOGRAM",
  etcd_disk_wal_write_bytes_total: "GAUGE",
  etcd_mvcc_db_total_size_in_bytes: "GAUGE",
  etcd_mvcc_db_total_size_in_use_in_bytes: "GAUGE",
  etcd_mvcc_put_total: "COUNTER",
  etcd_mvcc_delete_total: "COUNTER",
  etcd_mvcc_range_total: "COUNTER",
  etcd_mvcc_txn_total: "COUNTER",
  etcd_debugging_mvcc_keys_total: "GAUGE",
  etcd_debugging_mvcc_watcher_total: "GAUGE",
  etcd_debugging_mvcc_watch_stream_total: "GAUGE",
  etcd_network_client_grpc_received_bytes_total: "COUNTER",
  etcd_network_client_grpc_sent_bytes_total: "COUNTER",
  grpc_server_started_total: "COUNTER",
  grpc_server_handled_total: "COUNTER",
  grpc_server_msg_received_total: "COUNTER",
  grpc_server_msg_sent_total: "COUNTER",
  process_cpu_seconds_total: "COUNTER",
  process_resident_memory_bytes: "GAUGE",
  process_start_time_seconds: "GAUGE",
  process_open_fds: "GAUGE",
  process_max_fds: "GAUGE",
};

/** etcd's buckets of the WAL fsync and backend commit histograms. */
const DISK_BUCKETS = [
  "0.001",
  "0.002",
  "0.004",
  "0.008",
  "0.016",
  "0.032",
  "0.064",
  "0.128",
  "0.256",
  "0.512",
  "1.024",
  "2.048",
  "4.096",
  "8.192",
  "+Inf",
];

const b64 = (s: string) => btoa(s);

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

async function etcdctl(endpoint: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("etcdctl", {
    args: ["--endpoints", endpoint, ...args],
    env: { ETCDCTL_API: "3" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return text;
}

const HAVE_ETCDCTL = await (async () => {
  try {
    return (await new Deno.Command("etcdctl", { args: ["version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "metrics: a member's /metrics has etcd's names, types and buckets, merged over its threads",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cairn-metrics-" });
    const metricsPort = freePort();
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    const server = await startCairn(dir, [
      "--http-workers",
      "2",
      "--listen-metrics-urls",
      metricsUrl,
    ]);
    try {
      // A member that answers /health serves its metrics URLs too.
      assert.equal(value(await scrape(metricsUrl), "etcd_server_has_leader"), 1);
      const status = await post(server.url, "/v3/maintenance/status", {});
      const memberHex = BigInt((status.header as { member_id: string }).member_id).toString(16);
      let m = await scrape(server.url);
      for (const [name, type] of Object.entries(REQUIRED)) {
        assert.equal(m.get(name)?.type, type, `${name} is a ${type}`);
      }
      assert.equal(value(m, "etcd_server_has_leader"), 1);
      assert.equal(value(m, "etcd_server_is_leader"), 1);
      assert.ok(value(m, "etcd_server_leader_changes_seen_total") >= 1);
      assert.equal(value(m, "etcd_server_quota_backend_bytes"), 2 * 1024 ** 3);
      assert.equal(value(m, "etcd_server_id", { server_id: memberHex }), 1);
      assert.equal(value(m, "etcd_server_version", { server_version: "3.4.0" }), 1);
      assert.ok(value(m, "etcd_mvcc_db_total_size_in_bytes") > 0);
      assert.ok(value(m, "process_resident_memory_bytes") > 0);
      assert.ok(value(m, "process_open_fds") > 0);
      for (
        const name of [
          "etcd_disk_wal_fsync_duration_seconds",
          "etcd_disk_backend_commit_duration_seconds",
        ]
      ) {
        assert.deepEqual(Object.keys(m.get(name)!.metrics[0].buckets!), DISK_BUCKETS, name);
      }
      // Every gRPC method cairn registers starts at zero for every code, as etcd's.
      assert.equal(
        m.get("grpc_server_handled_total")!.metrics.filter((s) =>
          s.labels?.grpc_service === "etcdserverpb.Watch"
        ).length,
        17,
      );

      // A put through the gateway and one through gRPC: both are gRPC calls to etcd.
      const before = m;
      await post(server.url, "/v3/kv/put", { key: b64("k1"), value: b64("v1") });
      if (HAVE_ETCDCTL) await etcdctl(server.endpoint, "put", "k2", "v2");
      await post(server.url, "/v3/kv/range", { key: b64("k1") });
      const puts = HAVE_ETCDCTL ? 2 : 1;
      m = await scrape(server.url);
      const delta = (name: string, labels?: Record<string, string>) =>
        value(m, name, labels) - value(before, name, labels);
      assert.equal(delta("etcd_mvcc_put_total"), puts);
      assert.equal(delta("etcd_mvcc_range_total"), 1);
      assert.equal(delta("etcd_debugging_mvcc_keys_total"), puts);
      const put = { grpc_method: "Put", grpc_service: "etcdserverpb.KV", grpc_type: "unary" };
      assert.equal(delta("grpc_server_started_total", put), puts);
      assert.equal(delta("grpc_server_handled_total", { ...put, grpc_code: "OK" }), puts);
      assert.equal(delta("grpc_server_msg_received_total", put), puts);
      assert.ok(delta("etcd_server_proposals_applied_total") >= puts);
      assert.ok(delta("etcd_server_proposals_committed_total") >= puts);
      assert.ok(delta("etcd_disk_wal_fsync_duration_seconds") >= 1);
      assert.ok(delta("etcd_network_client_grpc_received_bytes_total") > 0);

      // A refused request counts under its code.
      const bad = await fetch(server.url + "/v3/kv/put", {
        method: "POST",
        body: JSON.stringify({ key: "" }),
      });
      await bad.body?.cancel();
      assert.equal(bad.status, 400);
      const m2 = await scrape(server.url);
      assert.equal(
        value(m2, "grpc_server_handled_total", { ...put, grpc_code: "InvalidArgument" }) -
          value(m, "grpc_server_handled_total", { ...put, grpc_code: "InvalidArgument" }),
        1,
      );

      // A watch stream on one worker shows in a scrape answered by any.
      const ac = new AbortController();
      const watch = await fetch(server.url + "/v3/watch", {
        method: "POST",
        body: JSON.stringify({ create_request: { key: b64("k1") } }),
        signal: ac.signal,
      });
      const reader = watch.body!.getReader();
      await reader.read(); // created
      for (let i = 0; i < 4; i++) {
        const w = await scrape(server.url);
        assert.equal(value(w, "etcd_debugging_mvcc_watcher_total"), 1);
        assert.equal(value(w, "etcd_debugging_mvcc_watch_stream_total"), 1);
      }
      ac.abort();
      await reader.cancel().catch(() => {});
      let after = 1;
      for (let i = 0; i < 100 && after !== 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = value(await scrape(server.url), "etcd_debugging_mvcc_watcher_total");
      }
      assert.equal(after, 0);

      // --listen-metrics-urls: /metrics and /health only, as etcd.
      const extra = await scrape(metricsUrl);
      assert.equal(value(extra, "etcd_server_has_leader"), 1);
      assert.ok(value(extra, "etcd_mvcc_put_total") >= puts);
      const health = await fetch(metricsUrl + "/health");
      assert.equal(health.status, 200);
      assert.equal(await health.text(), `{"health":"true"}`);
      const version = await fetch(metricsUrl + "/version");
      assert.equal(version.status, 404);
      assert.equal(await version.text(), "404 page not found\n");
      const range = await fetch(metricsUrl + "/v3/kv/range", { method: "POST", body: "{}" });
      assert.equal(range.status, 404);
      await range.body?.cancel();
    } finally {
      await server.terminate();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** The requests whose counter deltas must equal etcd's. */
async function workload(url: string): Promise<void> {
  await post(url, "/v3/kv/put", { key: b64("a"), value: b64("1") });
  await post(url, "/v3/kv/put", { key: b64("a"), value: b64("2"), prev_kv: true });
  await post(url, "/v3/kv/put", { key: b64("b"), value: b64("3") });
  await post(url, "/v3/kv/range", { key: b64("a") });
  await post(url, "/v3/kv/range", { key: b64("a"), range_end: b64("c") });
  // A write txn: one compare, two puts (etcd counts its read and write parts apart).
  await post(url, "/v3/kv/txn", {
    compare: [{ key: b64("a"), target: "VERSION", result: "EQUAL", version: "2" }],
    success: [
      { request_put: { key: b64("c"), value: b64("4") } },
      { request_put: { key: b64("d"), value: b64("5") } },
    ],
  });
  // One compare and one put: neither part runs two operations, so no txn counts on etcd.
  await post(url, "/v3/kv/txn", {
    compare: [{ key: b64("a"), target: "VERSION", result: "EQUAL", version: "2" }],
    success: [{ request_put: { key: b64("f"), value: b64("7") } }],
  });
  // A failing compare chooses the failure branch: one delete.
  await post(url, "/v3/kv/txn", {
    compare: [{ key: b64("a"), target: "VALUE", result: "EQUAL", value: b64("x") }],
    success: [{ request_put: { key: b64("e"), value: b64("6") } }],
    failure: [{ request_delete_range: { key: b64("d"), prev_kv: true } }],
  });
  // A read-only txn: served locally.
  await post(url, "/v3/kv/txn", {
    compare: [{ key: b64("b"), target: "CREATE", result: "GREATER", create_revision: "0" }],
    success: [{ request_range: { key: b64("a") } }, { request_range: { key: b64("b") } }],
  });
  await post(url, "/v3/kv/deleterange", { key: b64("a"), range_end: b64("c") });
  await post(url, "/v3/kv/deleterange", { key: b64("zz") });
}

Deno.test({
  name: "metrics: the same requests move the mvcc and gRPC counters as on etcd 3.4",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const counters = [
      "etcd_mvcc_put_total",
      "etcd_mvcc_range_total",
      "etcd_mvcc_delete_total",
      "etcd_mvcc_txn_total",
      "etcd_debugging_mvcc_keys_total",
    ];
    const methods = ["Put", "Range", "Txn", "DeleteRange"];
    const deltas = async (server: ServerProcess) => {
      const before = await scrape(server.url);
      await workload(server.url);
      const after = await scrape(server.url);
      const out: Record<string, number> = {};
      for (const name of counters) out[name] = value(after, name) - value(before, name);
      for (const grpc_method of methods) {
        const labels = { grpc_method, grpc_code: "OK", grpc_type: "unary" };
        out[`handled ${grpc_method}`] = value(after, "grpc_server_handled_total", labels) -
          value(before, "grpc_server_handled_total", labels);
      }
      return out;
    };
    const run = async (start: typeof startEtcd) => {
      const dir = await Deno.makeTempDir({ prefix: "cairn-metrics-diff-" });
      const server = await start(dir);
      try {
        return await deltas(server);
      } finally {
        await server.terminate();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    };
    const etcd = await run(startEtcd);
    const cairn = await run(startCairn);
    assert.deepEqual(cairn, etcd);
    assert.ok(etcd.etcd_mvcc_put_total > 0 && etcd.etcd_mvcc_txn_total > 0);
  },
});

/**
 * Every metric selector of etcd 3.4's Grafana dashboard
 * (Documentation/op-guide/grafana.json): the metric name and its label
 * matchers (Prometheus' own `job` and `instance` left out: the scraper adds
 * them).
 */
function dashboardSelectors(): { name: string; matchers: [string, string, string][] }[] {
  const dashboard = JSON.parse(
    Deno.readTextFileSync(`${ROOT}tests/fixtures/etcd_3.4_grafana.json`),
  );
  const exprs: string[] = [];
  const walk = (o: unknown) => {
    if (Array.isArray(o)) o.forEach(walk);
    else if (o !== null && typeof o === "object") {
      for (const [k, v] of Object.entries(o)) {
        if (k === "expr" && typeof v === "string") exprs.push(v);
        else walk(v);
      }
    }
  };
  walk(dashboard);
  const selectors: { name: string; matchers: [string, string, string][] }[] = [];
  for (const expr of exprs) {
    const tree = promql.parse(expr);
    tree.iterate({
      enter(node) {
        if (node.name !== "VectorSelector") return;
        const name = node.node.getChild("Identifier");
        if (name === null) return false;
        const matchers: [string, string, string][] = [];
        const list = node.node.getChild("LabelMatchers");
        for (const m of list?.getChildren("UnquotedLabelMatcher") ?? []) {
          const text = (n: typeof m | null) => n === null ? "" : expr.slice(n.from, n.to);
          const label = text(m.getChild("LabelName"));
          const op = text(m.getChild("MatchOp"));
          const literal = JSON.parse(text(m.getChild("StringLiteral")));
          if (label !== "job" && label !== "instance") matchers.push([label, op, literal]);
        }
        selectors.push({ name: expr.slice(name.from, name.to), matchers });
        return false;
      },
    });
  }
  return selectors;
}

/** The family a sample name belongs to (`x_bucket` → `x` for a histogram). */
function familyOf(families: Map<string, Family>, sample: string): Family | undefined {
  const direct = families.get(sample);
  if (direct !== undefined) return direct;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  const family = m === null ? undefined : families.get(m[1]);
  return family?.type === "HISTOGRAM" ? family : undefined;
}

/** The selectors (of `selectors`) that no series in `families` satisfies. */
function unmatched(
  families: Map<string, Family>,
  selectors: ReturnType<typeof dashboardSelectors>,
): string[] {
  const missing: string[] = [];
  for (const { name, matchers } of selectors) {
    const family = familyOf(families, name);
    const ok = family !== undefined &&
      family.metrics.some((s) =>
        matchers.every(([label, op, want]) => {
          const got = s.labels?.[label] ?? "";
          if (op === "=") return got === want;
          if (op === "!=") return got !== want;
          if (op === "=~") return new RegExp(`^(?:${want})$`).test(got);
          return !new RegExp(`^(?:${want})$`).test(got);
        })
      );
    if (!ok) missing.push(`${name}{${matchers.map((m) => m.join("")).join(",")}}`);
  }
  return missing;
}

/**
 * Scrape every member of a 3-member cluster of `kind` once each has
 * measured a round trip to its peers (etcd's mixin dashboard and alerts
 * query etcd_network_peer_round_trip_time_seconds too).
 */
async function clusterScrapes(kind: ClusterKind): Promise<Map<string, Family>[]> {
  const cluster = await startCluster({ kind, size: 3 });
  try {
    const leader = await cluster.leader();
    await post(leader.clientUrl, "/v3/kv/put", { key: b64("k"), value: b64("v") });
    let scrapes: Map<string, Family>[] = [];
    for (let i = 0; i < 150; i++) {
      scrapes = await Promise.all(cluster.members.map((m) => scrape(m.clientUrl)));
      const measured = (s: Map<string, Family>) =>
        texts.get(s)!.split("\n").filter((l) =>
          l.startsWith("etcd_network_peer_round_trip_time_seconds_count{")
        ).length >= 2;
      if (scrapes.every(measured)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return scrapes;
  } finally {
    await cluster.close();
  }
}

Deno.test({
  name:
    "metrics: a 3-member cluster: one leader, peer traffic and round trips by member ID, every metric of etcd's Grafana dashboard",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const selectors = dashboardSelectors();
    assert.ok(selectors.length >= 18, `the dashboard's selectors were found (${selectors.length})`);
    selectors.push({ name: "etcd_network_peer_round_trip_time_seconds_bucket", matchers: [] });
    const scrapes = await clusterScrapes("cairn");
    assert.equal(scrapes.length, 3);
    const ids = scrapes.map((m) => m.get("etcd_server_id")!.metrics[0].labels!.server_id);
    assert.equal(new Set(ids).size, 3);
    assert.equal(scrapes.filter((m) => value(m, "etcd_server_is_leader") === 1).length, 1);
    for (const [i, m] of scrapes.entries()) {
      assert.equal(value(m, "etcd_server_has_leader"), 1);
      assert.ok(value(m, "etcd_server_leader_changes_seen_total") >= 1);
      // Raft traffic goes between the leader and each follower.
      const leader = ids[scrapes.findIndex((s) => value(s, "etcd_server_is_leader") === 1)];
      const peers = ids[i] === leader ? ids.filter((id) => id !== leader) : [leader];
      for (const peer of peers) {
        assert.ok(value(m, "etcd_network_peer_sent_bytes_total", { To: peer }) > 0, `to ${peer}`);
        assert.ok(value(m, "etcd_network_peer_received_bytes_total", { From: peer }) > 0);
        assert.equal(value(m, "etcd_network_active_peers", { Local: ids[i], Remote: peer }), 1);
      }
      for (const peer of ids.filter((id) => id !== ids[i])) {
        assert.ok(value(m, "etcd_network_peer_round_trip_time_seconds", { To: peer }) >= 1);
      }
      assert.deepEqual(unmatched(m, selectors), [], `member ${i} serves every dashboard query`);
    }
    if (HAVE_ETCD) {
      // The same queries find etcd 3.4's own metrics: the check is etcd's dashboard, not ours.
      for (const [i, m] of (await clusterScrapes("etcd")).entries()) {
        assert.deepEqual(unmatched(m, selectors), [], `etcd member ${i}`);
      }
    }
  },
});
