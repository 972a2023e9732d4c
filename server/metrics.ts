/**
 * The member's Prometheus metrics, with etcd 3.4's names, types, labels,
 * help texts and histogram buckets (so etcd's Grafana dashboards and alerts
 * work unchanged), kept with prom-client.
 *
 * Each thread has its own registry ({@linkcode metrics}): the main thread
 * counts what it runs (Raft, the WAL, the applier, the peer transport, the
 * process), each HTTP worker what it serves (gRPC and gateway calls, reads,
 * watch streams). Counting is local and costs no message; a scrape gathers
 * every thread's values ({@linkcode Registry.getMetricsAsJSON}) and merges
 * them with {@linkcode mergeMetrics} (prom-client's `AggregatorRegistry`:
 * the same series on several threads add up).
 *
 * @module
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from "prom-client";
import type { MvccOps } from "../core/mvcc/view.ts";
import process from "node:process";
import { invariant } from "../core/invariant.ts";
import { GrpcCode } from "../core/errors.ts";

/** gRPC's status code names by number, as Go's `codes.Code.String()` spells them. */
const GRPC_CODE_NAMES: readonly string[] = Object.entries(GrpcCode)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/** The content type of the text exposition format, as etcd's /metrics sends it. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One thread's metric values, as {@linkcode Registry.getMetricsAsJSON} gives them. */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/** etcd's buckets for fsync and commit latencies: 1 ms doubling 14 times (up to 8.192 s). */
const DISK_BUCKETS = exponentialBuckets(0.001, 2, 14);
/** etcd's buckets for peer round trips: 0.1 ms doubling 16 times (up to 3.2768 s). */
const RTT_BUCKETS = exponentialBuckets(0.0001, 2, 16);

/** Prometheus' ExponentialBuckets(start, factor, count), as etcd declares its buckets. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  invariant(
    start > 0 && factor > 1 && count >= 1,
    "exponential buckets grow from a positive start",
  );
  const buckets: number[] = [];
  for (let i = 0, b = start; i < count; i++, b *= factor) buckets.push(Number(b.toPrecision(12)));
  return buckets;
}

/**
 * What the main thread reads at scrape time from the member it runs (the
 * gauges etcd keeps current as its Raft loop and backend change).
 */
export interface MemberSource {
  /** Raft's commit index. */
  committedIndex(): number;
  /** The index of the last entry applied. */
  appliedIndex(): number;
  /** Proposals of this member waiting for their entry to be applied. */
  pendingProposals(): number;
  /** The LMDB environment's file size and the bytes of its pages in use. */
  dbSize(): { dbSize: number; dbSizeInUse: number };
  /** Live keys (not deleted). */
  keys(): number;
  /** The current revision. */
  currentRevision(): number;
  /** The revision of the last compaction (-1: never compacted, as etcd). */
  compactRevision(): number;
  /** Whether this member is a learner. */
  isLearner(): boolean;
}

/** What a thread's watch service reports at scrape time. */
export interface WatchSource {
  /** Watchers registered on this thread. */
  watchers(): number;
  /** Watch streams open on this thread. */
  streams(): number;
}

/** Labels of a gRPC method in grpc_server_* metrics (go-grpc-prometheus'). */
export interface GrpcMethodLabels {
  /** e.g. `etcdserverpb.KV`. */
  grpc_service: string;
  /** e.g. `Range`. */
  grpc_method: string;
  /** `unary`, `client_stream`, `server_stream` or `bidi_stream`. */
  grpc_type: "unary" | "client_stream" | "server_stream" | "bidi_stream";
}

/**
 * The counters of one gRPC method, as go-grpc-prometheus keeps them
 * (started, messages received and sent, handled by status code). A call
 * only adds to plain numbers here; {@linkcode EtcdMetrics} moves them into
 * its prom-client counters when it is scraped.
 */
export class GrpcMethodMetrics {
  /** The method's labels. */
  readonly labels: GrpcMethodLabels;
  /** Calls started, not yet moved into the counters. */
  startedCount = 0;
  /** Messages received, not yet moved. */
  receivedCount = 0;
  /** Messages sent, not yet moved. */
  sentCount = 0;
  /** Calls handled by status code (0–16), not yet moved. */
  readonly handledCounts: number[] = new Array(GRPC_CODE_NAMES.length).fill(0);
  /** Request bytes received, not yet moved. */
  receivedBytes = 0;
  /** Response bytes sent, not yet moved. */
  sentBytes = 0;

  constructor(labels: GrpcMethodLabels) {
    this.labels = labels;
  }

  /** A call began. */
  started(): void {
    this.startedCount++;
  }

  /** A request message of `bytes` bytes (its protobuf size) arrived. */
  received(bytes: number): void {
    this.receivedCount++;
    this.receivedBytes += bytes;
  }

  /** A response message of `bytes` bytes went out (-1: size not measured). */
  sent(bytes: number): void {
    this.sentCount++;
    if (bytes > 0) this.sentBytes += bytes;
  }

  /** The call ended with gRPC status `code` (0 OK … 16 Unauthenticated). */
  handled(code: number): void {
    this.handledCounts[code >= 0 && code < this.handledCounts.length ? code : GrpcCode.Unknown]++;
  }
}

/** The name go-grpc-prometheus gives a status code (`OK`, `NotFound`, …). */
export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? "Unknown";
}

/** The labels of a gRPC method path such as `/etcdserverpb.KV/Range`. */
export function grpcMethodLabels(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
): GrpcMethodLabels {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  invariant(m !== null, `a gRPC method path is /service/method: ${path}`);
  return {
    grpc_service: m[1],
    grpc_method: m[2],
    grpc_type: requestStream
      ? (responseStream ? "bidi_stream" : "client_stream")
      : (responseStream ? "server_stream" : "unary"),
  };
}

/**
 * etcd's metrics on one registry. Every thread declares them all (a series
 * a thread never touches stays at zero, or absent for labelled ones), so
 * the merged scrape has each once.
 */
export class EtcdMetrics {
  /** The registry the metrics are kept in. */
  readonly registry: Registry = new Registry();
  #member: MemberSource | undefined;
  #watch: WatchSource | undefined;
  #processMetrics = false;
  readonly #grpcMethods = new Map<string, GrpcMethodMetrics>();
  readonly #grpcInitialized = new Set<string>();

  // --- etcd_server_* ---
  /** 1 while a leader is known. */
  readonly hasLeader: Gauge;
  /** 1 while this member leads. */
  readonly isLeader: Gauge;
  /** Leader changes seen (each time a leader other than the last one is known). */
  readonly leaderChanges: Counter;
  /** Proposals that failed (no leader, leader changed, timed out, storage failure). */
  readonly proposalsFailed: Counter;
  /** ReadIndex requests that failed. */
  readonly readIndexesFailed: Counter;
  /** `server_id` label: this member's ID in hex. */
  readonly serverId: Gauge<"server_id">;
  /** `server_version` label: the etcd version served. */
  readonly serverVersion: Gauge<"server_version">;
  /** `cluster_version` label. */
  readonly clusterVersion: Gauge<"cluster_version">;
  /** --quota-backend-bytes in effect, in bytes. */
  readonly quotaBackendBytes: Gauge;

  // --- etcd_disk_* ---
  /** Seconds per WAL fdatasync. */
  readonly walFsync: Histogram;
  /** Seconds per LMDB commit (until the commit is visible). */
  readonly backendCommit: Histogram;
  /** Bytes written to the WAL (a gauge in etcd, despite its name). */
  readonly walWriteBytes: Gauge;

  // --- etcd_mvcc_* and their etcd_debugging_mvcc_* twins ---
  readonly #ranges: Counter[];
  readonly #puts: Counter[];
  readonly #deletes: Counter[];
  readonly #txns: Counter[];

  // --- etcd_network_* ---
  /** Bytes sent to each peer (`To`: member ID in hex). */
  readonly peerSentBytes: Counter<"To">;
  /** Bytes received from each peer (`From`: member ID in hex). */
  readonly peerReceivedBytes: Counter<"From">;
  /** Failed sends to each peer. */
  readonly peerSentFailures: Counter<"To">;
  /** Failed receives from each peer. */
  readonly peerReceivedFailures: Counter<"From">;
  /** Seconds per round trip to each peer (a probe every PEER_PROBE_INTERVAL_MS). */
  readonly peerRoundTrip: Histogram<"To">;
  /** 1 per connected peer (`Local`, `Remote`: member IDs in hex). */
  readonly activePeers: Gauge<"Local" | "Remote">;
  /** Bytes of gRPC requests received from clients (protobuf size). */
  readonly clientGrpcReceivedBytes: Counter;
  /** Bytes of gRPC responses sent to clients (protobuf size). */
  readonly clientGrpcSentBytes: Counter;

  // --- grpc_server_* (go-grpc-prometheus) ---
  /** Calls started. */
  readonly grpcStarted: Counter<"grpc_service" | "grpc_method" | "grpc_type">;
  /** Calls completed, by status code. */
  readonly grpcHandled: Counter<"grpc_service" | "grpc_method" | "grpc_type" | "grpc_code">;
  /** Request messages received. */
  readonly grpcMsgReceived: Counter<"grpc_service" | "grpc_method" | "grpc_type">;
  /** Response messages sent. */
  readonly grpcMsgSent: Counter<"grpc_service" | "grpc_method" | "grpc_type">;

  constructor() {
    const registers = [this.registry];
    const gauge = <L extends string = string>(
      name: string,
      help: string,
      labelNames: L[] = [],
      collect?: (g: Gauge<L>) => void,
    ) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect: collect
          ? function (this: Gauge<L>) {
            collect(this);
          }
          : undefined,
      });
    const counter = <L extends string = string>(name: string, help: string, labelNames: L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers });
    // A value that cannot be read now (the store is closed for a moment
    // while defragmentation swaps its file) keeps the gauge's last value.
    const member =
      <T>(read: (m: MemberSource) => T, set: (g: Gauge, v: T) => void) => (g: Gauge) => {
        const m = this.#member;
        if (m === undefined) return;
        let v: T;
        try {
          v = read(m);
        } catch {
          return;
        }
        set(g, v);
      };

    this.hasLeader = gauge(
      "etcd_server_has_leader",
      "Whether or not a leader exists. 1 is existence, 0 is not.",
    );
    this.isLeader = gauge(
      "etcd_server_is_leader",
      "Whether or not this member is a leader. 1 if is, 0 otherwise.",
    );
    gauge(
      "etcd_server_is_learner",
      "Whether or not this member is a learner. 1 if is, 0 otherwise.",
      [],
      member((m) => m.isLearner(), (g, v) => g.set(v ? 1 : 0)),
    );
    this.leaderChanges = counter(
      "etcd_server_leader_changes_seen_total",
      "The number of leader changes seen.",
    );
    // etcd declares these two as gauges (set from the Raft loop).
    gauge(
      "etcd_server_proposals_committed_total",
      "The total number of consensus proposals committed.",
      [],
      member((m) => m.committedIndex(), (g, v) => g.set(v)),
    );
    gauge(
      "etcd_server_proposals_applied_total",
      "The total number of consensus proposals applied.",
      [],
      member((m) => m.appliedIndex(), (g, v) => g.set(v)),
    );
    gauge(
      "etcd_server_proposals_pending",
      "The current number of pending proposals to commit.",
      [],
      member((m) => m.pendingProposals(), (g, v) => g.set(v)),
    );
    this.proposalsFailed = counter(
      "etcd_server_proposals_failed_total",
      "The total number of failed proposals seen.",
    );
    this.readIndexesFailed = counter(
      "etcd_server_read_indexes_failed_total",
      "The total number of failed read indexes seen.",
    );
    this.serverId = gauge(
      "etcd_server_id",
      "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      ["server_id"],
    );
    this.serverVersion = gauge(
      "etcd_server_version",
      "Which version is running. 1 for 'server_version' label with current version.",
      ["server_version"],
    );
    this.clusterVersion = gauge(
      "etcd_cluster_version",
      "Which version is running. 1 for 'cluster_version' label with current cluster version",
      ["cluster_version"],
    );
    this.quotaBackendBytes = gauge(
      "etcd_server_quota_backend_bytes",
      "Current backend storage quota size in bytes.",
    );

    this.walFsync = new Histogram({
      name: "etcd_disk_wal_fsync_duration_seconds",
      help: "The latency distributions of fsync called by WAL.",
      buckets: DISK_BUCKETS,
      registers,
    });
    this.backendCommit = new Histogram({
      name: "etcd_disk_backend_commit_duration_seconds",
      help: "The latency distributions of commit called by backend.",
      buckets: DISK_BUCKETS,
      registers,
    });
    this.walWriteBytes = gauge(
      "etcd_disk_wal_write_bytes_total",
      "Total number of bytes written in WAL.",
    );

    const dbSize = member((m) => m.dbSize(), (g, v) => g.set(v.dbSize));
    gauge(
      "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      [],
      dbSize,
    );
    gauge(
      "etcd_debugging_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      [],
      dbSize,
    );
    gauge(
      "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
      [],
      member((m) => m.dbSize(), (g, v) => g.set(v.dbSizeInUse)),
    );
    gauge(
      "etcd_debugging_mvcc_keys_total",
      "Total number of keys.",
      [],
      member((m) => m.keys(), (g, v) => g.set(v)),
    );
    gauge(
      "etcd_debugging_mvcc_current_revision",
      "The current revision of store.",
      [],
      member((m) => m.currentRevision(), (g, v) => g.set(v)),
    );
    gauge(
      "etcd_debugging_mvcc_compact_revision",
      "The revision of the last compaction in store.",
      [],
      member((m) => m.compactRevision(), (g, v) => g.set(v)),
    );
    const twin = (name: string, help: string) => [
      counter(`etcd_mvcc_${name}`, help),
      counter(`etcd_debugging_mvcc_${name}`, help),
    ];
    this.#ranges = twin("range_total", "Total number of ranges seen by this member.");
    this.#puts = twin("put_total", "Total number of puts seen by this member.");
    this.#deletes = twin("delete_total", "Total number of deletes seen by this member.");
    this.#txns = twin("txn_total", "Total number of txns seen by this member.");
    gauge(
      "etcd_debugging_mvcc_watcher_total",
      "Total number of watchers.",
      [],
      (g) => this.#watch && g.set(this.#watch.watchers()),
    );
    gauge(
      "etcd_debugging_mvcc_watch_stream_total",
      "Total number of watch streams.",
      [],
      (g) => this.#watch && g.set(this.#watch.streams()),
    );

    this.peerSentBytes = counter(
      "etcd_network_peer_sent_bytes_total",
      "The total number of bytes sent to peers.",
      ["To"],
    );
    this.peerReceivedBytes = counter(
      "etcd_network_peer_received_bytes_total",
      "The total number of bytes received from peers.",
      ["From"],
    );
    this.peerSentFailures = counter(
      "etcd_network_peer_sent_failures_total",
      "The total number of send failures from peers.",
      ["To"],
    );
    this.peerReceivedFailures = counter(
      "etcd_network_peer_received_failures_total",
      "The total number of receive failures from peers.",
      ["From"],
    );
    this.peerRoundTrip = new Histogram({
      name: "etcd_network_peer_round_trip_time_seconds",
      help: "Round-Trip-Time histogram between peers",
      labelNames: ["To"],
      buckets: RTT_BUCKETS,
      registers,
    });
    this.activePeers = gauge(
      "etcd_network_active_peers",
      "The current number of active peer connections.",
      ["Local", "Remote"],
    );
    this.clientGrpcReceivedBytes = new Counter({
      name: "etcd_network_client_grpc_received_bytes_total",
      help: "The total number of bytes received from grpc clients.",
      registers,
      collect: () => this.#flushGrpc(),
    });
    this.clientGrpcSentBytes = new Counter({
      name: "etcd_network_client_grpc_sent_bytes_total",
      help: "The total number of bytes sent to grpc clients.",
      registers,
      collect: () => this.#flushGrpc(),
    });

    // The gRPC counters are kept as plain numbers per method and moved
    // into these when any of them is read (see GrpcMethodMetrics).
    const grpcLabels = ["grpc_service", "grpc_method", "grpc_type"] as const;
    const flush = () => this.#flushGrpc();
    const grpcCounter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers, collect: flush });
    this.grpcStarted = grpcCounter(
      "grpc_server_started_total",
      "Total number of RPCs started on the server.",
      [...grpcLabels],
    );
    this.grpcHandled = grpcCounter(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
      [...grpcLabels, "grpc_code"],
    );
    this.grpcMsgReceived = grpcCounter(
      "grpc_server_msg_received_total",
      "Total number of RPC stream messages received on the server.",
      [...grpcLabels],
    );
    this.grpcMsgSent = grpcCounter(
      "grpc_server_msg_sent_total",
      "Total number of gRPC stream messages sent by the server.",
      [...grpcLabels],
    );
  }

  /**
   * Read the member's gauges from `source` at scrape time, and record its
   * identity: `etcd_server_id`, the versions, the quota (bytes).
   */
  bindMember(
    source: MemberSource,
    identity: {
      memberId: bigint;
      serverVersion: string;
      clusterVersion: string;
      quotaBytes: number;
    },
  ): void {
    this.#member = source;
    this.serverId.reset();
    this.serverId.set({ server_id: identity.memberId.toString(16) }, 1);
    this.serverVersion.reset();
    this.serverVersion.set({ server_version: identity.serverVersion }, 1);
    this.clusterVersion.reset();
    this.clusterVersion.set({ cluster_version: identity.clusterVersion }, 1);
    this.quotaBackendBytes.set(identity.quotaBytes);
  }

  /** Read this thread's watcher and stream counts from `source` at scrape time. */
  bindWatch(source: WatchSource): void {
    this.#watch = source;
  }

  /**
   * Add prom-client's process metrics (process_cpu_seconds_total,
   * process_resident_memory_bytes, process_start_time_seconds, and
   * process_open_fds, process_max_fds, process_virtual_memory_bytes when
   * /proc/self is readable) and its runtime ones (nodejs_*). Once per
   * process, on the main thread: they describe the whole process.
   *
   * Deno lets a process read /proc/self only with --allow-all; without it
   * the metrics read from there are left out (rather than reported as 0),
   * and the resident memory comes from `process.memoryUsage()`.
   */
  collectProcessMetrics(): void {
    if (this.#processMetrics) return;
    this.#processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
    // prom-client's, read from /proc/self/status: replaced by one that needs no /proc.
    this.registry.removeSingleMetric("process_resident_memory_bytes");
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      registers: [this.registry],
      collect() {
        this.set(process.memoryUsage().rss);
      },
    });
    if (!procReadable()) {
      for (
        const name of [
          "process_open_fds",
          "process_max_fds",
          "process_virtual_memory_bytes",
          "process_heap_bytes",
        ]
      ) this.registry.removeSingleMetric(name);
    }
  }

  /** Add the operations a view ran (see {@linkcode MvccOps}) to the mvcc counters. */
  countMvcc(ops: MvccOps): void {
    if (ops.ranges > 0) { for (const c of this.#ranges) c.inc(ops.ranges); }
    if (ops.puts > 0) { for (const c of this.#puts) c.inc(ops.puts); }
    if (ops.deletes > 0) { for (const c of this.#deletes) c.inc(ops.deletes); }
    if (ops.txns > 0) { for (const c of this.#txns) c.inc(ops.txns); }
  }

  /**
   * The counters of a gRPC method, created on first use; `initialize`
   * also sets every series of the method to zero (every status code), as
   * go-grpc-prometheus does for the methods a server registers.
   */
  grpcMethod(labels: GrpcMethodLabels, initialize = false): GrpcMethodMetrics {
    const key = `${labels.grpc_service}/${labels.grpc_method}`;
    let m = this.#grpcMethods.get(key);
    if (m === undefined) {
      m = new GrpcMethodMetrics(labels);
      this.#grpcMethods.set(key, m);
    }
    if (initialize && !this.#grpcInitialized.has(key)) {
      this.#grpcInitialized.add(key);
      this.grpcStarted.inc(labels, 0);
      this.grpcMsgReceived.inc(labels, 0);
      this.grpcMsgSent.inc(labels, 0);
      for (const code of GRPC_CODE_NAMES) this.grpcHandled.inc({ ...labels, grpc_code: code }, 0);
    }
    return m;
  }

  /** Move every gRPC method's counts into the prom-client counters. */
  #flushGrpc(): void {
    let received = 0;
    let sent = 0;
    for (const m of this.#grpcMethods.values()) {
      const labels = m.labels;
      if (m.startedCount > 0) this.grpcStarted.inc(labels, m.startedCount);
      if (m.receivedCount > 0) this.grpcMsgReceived.inc(labels, m.receivedCount);
      if (m.sentCount > 0) this.grpcMsgSent.inc(labels, m.sentCount);
      for (const [code, n] of m.handledCounts.entries()) {
        if (n > 0) this.grpcHandled.inc({ ...labels, grpc_code: GRPC_CODE_NAMES[code] }, n);
        m.handledCounts[code] = 0;
      }
      received += m.receivedBytes;
      sent += m.sentBytes;
      m.startedCount =
        m.receivedCount =
        m.sentCount =
        m.receivedBytes =
        m.sentBytes =
          0;
    }
    if (received > 0) this.clientGrpcReceivedBytes.inc(received);
    if (sent > 0) this.clientGrpcSentBytes.inc(sent);
  }

  /** This thread's values, for {@linkcode mergeMetrics}. */
  snapshot(): Promise<MetricsSnapshot> {
    return this.registry.getMetricsAsJSON();
  }
}

/** Whether this process may read /proc/self (Deno allows it only with --allow-all). */
function procReadable(): boolean {
  const path = "/proc/self/status";
  // Never a permission prompt: only try when reading is granted already.
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return false;
  try {
    Deno.readTextFileSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Merge the values of several threads into one text exposition: series
 * present on several threads add up (counters, histograms, and the gauges,
 * each of which only one thread sets or which are per-thread parts of a
 * total, such as watchers).
 */
export async function mergeMetrics(snapshots: MetricsSnapshot[]): Promise<string> {
  // prom-client leaves some process metrics out of a merge (they describe
  // one process in its cluster mode); here all threads are one process and
  // only the main thread has them.
  const all = snapshots.map((metrics) =>
    metrics.map((m) => ({ ...m, aggregator: "sum" as const }))
  );
  return await AggregatorRegistry.aggregate(all).metrics();
}

/** This thread's metrics. */
export const metrics: EtcdMetrics = new EtcdMetrics();
