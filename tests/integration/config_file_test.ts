/**
 * --config-file: etcd 3.4 and cairn start from the same YAML file (the
 * other flags on their command lines are ignored, as etcd ignores them)
 * and serve with its settings.
 */
import assert from "node:assert/strict";
import { freePort, HAVE_ETCD, startCairnAt, startEtcdAt } from "../servers.ts";

Deno.test({
  name: "--config-file: etcd 3.4 and cairn start from the same YAML file and use its settings",
  ignore: !HAVE_ETCD,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cairn-config-file-" });
    try {
      const seen: Record<string, unknown> = {};
      for (const kind of ["etcd", "cairn"] as const) {
        const client = `http://127.0.0.1:${freePort()}`;
        const peer = `http://127.0.0.1:${freePort()}`;
        const file = `${dir}/${kind}.yml`;
        await Deno.writeTextFile(
          file,
          [
            `name: 'from-file'`,
            `data-dir: ${dir}/${kind}-data`,
            `wal-dir: ${dir}/${kind}-wal`,
            `listen-client-urls: ${client}`,
            `advertise-client-urls: ${client}`,
            `listen-peer-urls: ${peer}`,
            `initial-advertise-peer-urls: ${peer}`,
            `initial-cluster: from-file=${peer}`,
            `initial-cluster-token: 'file-token'`,
            `max-txn-ops: 3`,
            `strict-reconfig-check: true`,
            `grpc-keepalive-timeout: 20000000000`,
            `log-outputs: [stderr]`,
            // etcd 3.4 serves the JSON gateway from a file only when asked
            // (cairn always serves it).
            `enable-grpc-gateway: true`,
            `client-transport-security:`,
            `  client-cert-auth: false`,
            "",
          ].join("\n"),
        );
        // The URL and data dir the helper passes as flags are ignored.
        const start = kind === "etcd" ? startEtcdAt : startCairnAt;
        const server = await start(`${dir}/${kind}-ignored`, client, ["--config-file", file]);
        try {
          const members = await (await fetch(`${client}/v3/cluster/member/list`, {
            method: "POST",
            body: "{}",
          })).json();
          const put = (key: string) => ({ request_put: { key: btoa(key), value: btoa("v") } });
          const txn = await (await fetch(`${client}/v3/kv/txn`, {
            method: "POST",
            body: JSON.stringify({ success: ["a", "b", "c", "d"].map(put) }),
          })).json();
          seen[kind] = {
            names: members.members.map((m: { name: string }) => m.name),
            txnError: txn.error,
            wal: [...Deno.readDirSync(`${dir}/${kind}-wal`)].length > 0,
            ignoredDataDir: (() => {
              try {
                Deno.statSync(`${dir}/${kind}-ignored`);
                return "created";
              } catch {
                return "absent";
              }
            })(),
          };
        } finally {
          await server.kill();
        }
      }
      assert.deepEqual(seen.cairn, seen.etcd);
      assert.deepEqual(seen.cairn, {
        names: ["from-file"],
        txnError: "etcdserver: too many operations in txn request",
        wal: true,
        ignoredDataDir: "absent",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
