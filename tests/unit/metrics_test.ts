import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import {
  EtcdMetrics,
  exponentialBuckets,
  grpcCodeName,
  grpcMethodLabels,
  mergeMetrics,
} from "../../server/metrics.ts";
import { openBackend } from "../../native/lmdb.ts";
import { ReadView, WriteView } from "../../core/mvcc/view.ts";
import { applyPut, applyRange, applyTxn } from "../../core/mvcc/apply.ts";

const b = (s: string) => new TextEncoder().encode(s);

Deno.test("metrics: etcd's exponential buckets", () => {
  assert.deepEqual(exponentialBuckets(0.001, 2, 14), [
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    0.128,
    0.256,
    0.512,
    1.024,
    2.048,
    4.096,
    8.192,
  ]);
  assert.equal(exponentialBuckets(0.0001, 2, 16).at(-1), 3.2768);
});

Deno.test("metrics: gRPC labels and code names as go-grpc-prometheus gives them", () => {
  assert.deepEqual(grpcMethodLabels("/etcdserverpb.Watch/Watch", true, true), {
    grpc_service: "etcdserverpb.Watch",
    grpc_method: "Watch",
    grpc_type: "bidi_stream",
  });
  assert.equal(
    grpcMethodLabels("/etcdserverpb.Maintenance/Snapshot", false, true).grpc_type,
    "server_stream",
  );
  assert.equal(grpcCodeName(0), "OK");
  assert.equal(grpcCodeName(1), "Canceled");
  assert.equal(grpcCodeName(16), "Unauthenticated");
});

Deno.test("metrics: a scrape adds up the threads' series", async () => {
  const a = new EtcdMetrics();
  const b2 = new EtcdMetrics();
  a.countMvcc({ ranges: 2, puts: 1, deletes: 0, txns: 0 });
  b2.countMvcc({ ranges: 3, puts: 0, deletes: 1, txns: 1 });
  a.walFsync.observe(0.003);
  b2.walFsync.observe(0.5);
  a.hasLeader.set(1);
  const labels = grpcMethodLabels("/etcdserverpb.KV/Put", false, false);
  a.grpcMethod(labels, true).started();
  b2.grpcMethod(labels, true).handled(3);
  const text = await mergeMetrics([await a.snapshot(), await b2.snapshot()]);
  interface Series {
    value?: string;
    count?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
  }
  const families = new Map(
    (parsePrometheusTextFormat(text) as { name: string; type: string; metrics: Series[] }[])
      .map((f) => [f.name, f]),
  );
  const one = (name: string) => Number(families.get(name)!.metrics[0].value);
  assert.equal(one("etcd_mvcc_range_total"), 5);
  assert.equal(one("etcd_debugging_mvcc_range_total"), 5);
  assert.equal(one("etcd_mvcc_put_total"), 1);
  assert.equal(one("etcd_mvcc_delete_total"), 1);
  assert.equal(one("etcd_mvcc_txn_total"), 1);
  assert.equal(one("etcd_server_has_leader"), 1);
  const fsync = families.get("etcd_disk_wal_fsync_duration_seconds")!.metrics[0];
  assert.equal(fsync.count, "2");
  assert.equal(fsync.buckets!["0.004"], "1");
  assert.equal(fsync.buckets!["0.512"], "2");
  const handled = families.get("grpc_server_handled_total")!.metrics;
  assert.equal(handled.length, 17);
  assert.equal(handled.find((m) => m.labels?.grpc_code === "InvalidArgument")?.value, "1");
  assert.equal(
    Number(families.get("grpc_server_started_total")!.metrics[0].value),
    1,
  );
});

Deno.test("metrics: a view counts operations as etcd's metricsTxnWrite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-metrics-unit-" });
  const backend = openBackend(dir);
  try {
    await backend.write(() => {
      const w = new WriteView(backend, { revision: 1, compactRevision: 0 });
      applyPut(w, { key: b("a"), value: b("1") }, () => false);
      applyPut(w, { key: b("a"), value: b("2"), prev_kv: true }, () => false);
      w.endTxn();
      // two puts (one reading the previous value): one txn of three operations
      assert.deepEqual(w.ops, { ranges: 1, puts: 2, deletes: 0, txns: 1 });
      w.deleteRange(b("a"), undefined);
      w.endTxn();
      // a delete alone: no range counted for the keys it finds, no txn
      assert.deepEqual(w.ops, { ranges: 1, puts: 2, deletes: 1, txns: 1 });
      w.end();
    });
    const r = new ReadView(backend);
    applyRange(r, { key: b("a") });
    r.endTxn();
    assert.deepEqual(r.ops, { ranges: 1, puts: 0, deletes: 0, txns: 0 });
    // a read-only txn: its compare and both ranges are one etcd transaction
    applyTxn(r, {
      compare: [{ key: b("a"), target: "VERSION", result: "EQUAL", version: 0 }],
      success: [{ request_range: { key: b("a") } }, { request_range: { key: b("b") } }],
      failure: [],
    }, () => false);
    r.endTxn();
    assert.deepEqual(r.ops, { ranges: 4, puts: 0, deletes: 0, txns: 1 });
  } finally {
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
