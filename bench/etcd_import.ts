/**
 * Migration from etcd, measured: etcd 3.4 is loaded with `--keys` keys of
 * `--value-bytes` random bytes (puts in txns of 100, then every tenth key
 * overwritten once), `etcdctl snapshot save` takes the snapshot, and the
 * same file is restored by `etcdctl snapshot restore` (etcd's own restore)
 * and imported into a fresh cairn store by server/snapshot/etcd_import.ts.
 * Prints a markdown table: seconds and MB/s of the snapshot file for each.
 *
 *     deno run -A bench/etcd_import.ts --keys 200000 --value-bytes 256
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openBackend } from "../native/lmdb.ts";
import { importEtcdSnapshot } from "../server/snapshot/etcd_import.ts";
import { b64, etcdctl, etcdSnapshot, must } from "../tests/etcd_snapshot.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "200000" },
    "value-bytes": { type: "string", default: "256" },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values["value-bytes"]);
const TXN_OPS = 100;

const dir = Deno.makeTempDirSync({ prefix: "cairn-bench-etcd-import-" });
try {
  const { file } = await etcdSnapshot(dir, async (etcd) => {
    const value = () => b64(crypto.getRandomValues(new Uint8Array(valueBytes)));
    const key = (i: number) => b64(`bench/${String(i).padStart(8, "0")}`);
    for (let start = 0; start < keys; start += TXN_OPS) {
      const success = [];
      for (let i = start; i < Math.min(keys, start + TXN_OPS); i++) {
        success.push({ request_put: { key: key(i), value: value() } });
      }
      await must(etcd, "/v3/kv/txn", { success });
    }
    for (let start = 0; start < keys; start += TXN_OPS * 10) {
      const success = [];
      for (let i = start; i < Math.min(keys, start + TXN_OPS * 10); i += 10) {
        success.push({ request_put: { key: key(i), value: value() } });
      }
      await must(etcd, "/v3/kv/txn", { success });
    }
  }, async () => {});
  const size = (await Deno.stat(file)).size;
  const mb = size / 1e6;

  let t = performance.now();
  await etcdctl([
    "snapshot",
    "restore",
    file,
    "--data-dir",
    `${dir}/etcd-restored`,
    "--name",
    "default",
    "--initial-cluster",
    "default=http://127.0.0.1:2380",
    "--initial-advertise-peer-urls",
    "http://127.0.0.1:2380",
  ]);
  const etcdSeconds = (performance.now() - t) / 1000;

  const backend = openBackend(`${dir}/cairn/member`);
  let hashed = 0;
  t = performance.now();
  const result = await importEtcdSnapshot(file, backend, {
    onProgress: (p) => {
      if (p.keys === 0) hashed = performance.now();
    },
  });
  const cairnSeconds = (performance.now() - t) / 1000;
  const hashSeconds = (hashed - t) / 1000;
  const { dbSize } = backend.size();
  await backend.close();

  console.log(
    `etcd snapshot: ${keys} keys of ${valueBytes} B (+${Math.ceil(keys / 10)} overwrites), ` +
      `${mb.toFixed(1)} MB; cairn store after import: ${(dbSize / 1e6).toFixed(1)} MB, ` +
      `revision ${result.revision}, ${result.keys} keys`,
  );
  console.log("");
  console.log("| restore of the same etcd 3.4 snapshot | seconds | MB/s of the snapshot |");
  console.log("| ------------------------------------- | ------- | -------------------- |");
  console.log(
    `| etcdctl 3.4 snapshot restore          | ${etcdSeconds.toFixed(2)} | ${
      (mb / etcdSeconds).toFixed(0)
    } |`,
  );
  console.log(
    `| cairn import (SHA-256 check included) | ${cairnSeconds.toFixed(2)} | ${
      (mb / cairnSeconds).toFixed(0)
    } |`,
  );
  console.log(
    `| of which the SHA-256 check            | ${hashSeconds.toFixed(2)} | ${
      (mb / hashSeconds).toFixed(0)
    } |`,
  );
} finally {
  Deno.removeSync(dir, { recursive: true });
}
