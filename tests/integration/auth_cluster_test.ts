/**
 * Auth in a 3-member cluster, the same on etcd 3.4 and on cairn: users and
 * roles added through the leader are on every member, auth enabled there is
 * on everywhere, and Authenticate on a follower answers a `simple` token
 * (issued by, and valid on, that follower), or etcd's error for a wrong
 * password.
 */
import assert from "node:assert/strict";
import { HAVE_ETCD } from "../servers.ts";
import {
  type Cluster,
  type ClusterKind,
  postJson,
  RequestError,
  startCluster,
} from "./cluster_harness.ts";

const KINDS: { kind: ClusterKind; ignore: boolean }[] = [
  { kind: "etcd", ignore: !HAVE_ETCD },
  { kind: "cairn", ignore: false },
];

for (const { kind, ignore } of KINDS) {
  Deno.test({
    name: `auth cluster[${kind}]: changes through the leader, authenticate on followers`,
    ignore,
    async fn() {
      const flags = kind === "cairn" ? ["--bcrypt-cost", "4"] : [];
      const cluster: Cluster = await startCluster({ kind, size: 3, flags });
      try {
        const leader = await cluster.leader();
        const at = leader.clientUrl;
        await postJson(at, "/v3/auth/user/add", { name: "root", password: "rootpw" });
        await postJson(at, "/v3/auth/user/add", { name: "alice", password: "pw" });
        await postJson(at, "/v3/auth/role/add", { name: "r" });
        await postJson(at, "/v3/auth/user/grant", { user: "alice", role: "r" });
        // Every member has them (linearizable reads).
        for (const m of cluster.members) {
          assert.deepEqual(
            (await postJson(m.clientUrl, "/v3/auth/user/list", {})).users,
            ["alice", "root"],
          );
          assert.deepEqual(
            (await postJson(m.clientUrl, "/v3/auth/user/get", { name: "alice" })).roles,
            ["r"],
          );
        }
        await postJson(at, "/v3/auth/user/grant", { user: "root", role: "root" });
        await postJson(at, "/v3/auth/enable", {});
        for (const m of cluster.others(leader)) {
          const answer = await postJson(m.clientUrl, "/v3/auth/authenticate", {
            name: "alice",
            password: "pw",
          });
          assert.match(String(answer.token), /^[A-Za-z]{16}\.\d+$/);
          await assert.rejects(
            postJson(m.clientUrl, "/v3/auth/authenticate", { name: "alice", password: "no" }),
            (err: RequestError) =>
              err.message.includes("400") &&
              err.message.includes("authentication failed, invalid user ID or password"),
          );
        }
      } finally {
        await cluster.close();
      }
    },
  });
}
