/**
 * What the metrics cost: the counting a JSON gateway put or range adds to
 * its request (a gRPC method's counters and the mvcc counters), and a
 * scrape that merges three threads' values. `deno task bench` runs it.
 *
 * @module
 */
import { EtcdMetrics, grpcMethodLabels, mergeMetrics } from "../server/metrics.ts";

const m = new EtcdMetrics();
const put = m.grpcMethod(grpcMethodLabels("/etcdserverpb.KV/Put", false, false), true);
const ops = { ranges: 0, puts: 1, deletes: 0, txns: 0 };

Deno.bench("metrics: the counting of one gateway put (gRPC method counters + mvcc)", () => {
  put.started();
  put.received(300);
  put.sent(-1);
  put.handled(0);
  m.countMvcc(ops);
});

Deno.bench("metrics: a scrape merging three threads' values", async () => {
  await mergeMetrics([await m.snapshot(), await m.snapshot(), await m.snapshot()]);
});
