/**
 * The Auth service, differentially: the same JSON gateway requests go to a
 * real etcd 3.4 and to cairn, and their answers must be byte-equal once
 * member IDs, terms and tokens are masked: users and roles added, refused
 * duplicates and unknown names, permissions on a key, a range, a prefix and
 * from a key, get and list, revokes, auth enable refused without a root
 * user and without the root role, enabled, authenticate (refused, then a
 * token), disabled, deletes. Then what only cairn is asked: the auth store
 * is the same after a restart.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { HAVE_ETCD, type ServerProcess, startCairn, startEtcd } from "../servers.ts";
import { type Answer, masked, post } from "../auth_http.ts";

const b64 = (s: string) => btoa(s);

Deno.test({
  name: "auth: users, roles, permissions, enable, authenticate and disable answer as etcd's",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    const etcd = await startEtcd(dirs[0]);
    let cairn = await startCairn(dirs[1], ["--bcrypt-cost", "4"]);
    try {
      const tokens = new Map<ServerProcess, string>();
      /** The same request to both; their masked answers must be byte-equal. */
      const both = async (path: string, body: unknown, what = path): Promise<Answer> => {
        const e = await post(etcd, path, body, tokens.get(etcd));
        const c = await post(cairn, path, body, tokens.get(cairn));
        assertEquals(masked(c), masked(e), `${what} ${JSON.stringify(body)}`);
        return masked(e);
      };
      const error = (text: string) => (JSON.parse(text) as { error?: string }).error;

      // Users.
      await both("/v3/auth/user/add", { name: "alice", password: "pw-a" });
      const dup = await both("/v3/auth/user/add", { name: "alice", password: "x" });
      assertEquals(error(dup.text), "etcdserver: user name already exists");
      await both("/v3/auth/user/add", { name: "", password: "x" });
      await both("/v3/auth/user/add", { name: "nopw", options: { no_password: true } });
      await both("/v3/auth/user/get", { name: "bob" });
      await both("/v3/auth/user/changepw", { name: "bob", password: "x" });
      await both("/v3/auth/user/changepw", { name: "alice", password: "pw-a2" });

      // Roles and their permissions: a key, a range, a prefix, from a key.
      await both("/v3/auth/role/add", { name: "r1" });
      await both("/v3/auth/role/add", { name: "r1" });
      await both("/v3/auth/role/add", { name: "" });
      await both("/v3/auth/role/add", { name: "r0" });
      const grant = (name: string, permType: string | undefined, key: string, end?: string) =>
        both("/v3/auth/role/grant", {
          name,
          perm: {
            ...(permType === undefined ? {} : { permType }),
            key: b64(key),
            ...(end === undefined ? {} : { range_end: b64(end) }),
          },
        });
      await grant("r1", undefined, "foo");
      await grant("r1", "WRITE", "a", "c");
      await grant("r1", "READWRITE", "p/", "p0");
      await grant("r1", "READ", "z", "\0");
      await grant("r1", "WRITE", "foo"); // the same range: its type changes
      await grant("nope", "READ", "k");
      const got = await both("/v3/auth/role/get", { role: "r1" });
      assert(got.text.includes('"perm":['), got.text);
      await both("/v3/auth/role/get", { role: "nope" });
      await both("/v3/auth/role/list", {});
      await both("/v3/auth/role/revoke", { role: "r1", key: b64("foo") });
      await both("/v3/auth/role/revoke", { role: "r1", key: b64("foo") });
      await both("/v3/auth/role/revoke", { role: "r1", key: b64("a") });
      await both("/v3/auth/role/revoke", { role: "nope", key: b64("a") });
      await both("/v3/auth/role/get", { role: "r1" });

      // Users get roles.
      await both("/v3/auth/user/grant", { user: "alice", role: "r1" });
      await both("/v3/auth/user/grant", { user: "alice", role: "r0" });
      await both("/v3/auth/user/grant", { user: "alice", role: "r1" });
      await both("/v3/auth/user/grant", { user: "alice", role: "nope" });
      await both("/v3/auth/user/grant", { user: "bob", role: "r1" });
      await both("/v3/auth/user/get", { name: "alice" });
      await both("/v3/auth/user/revoke", { name: "alice", role: "r0" });
      await both("/v3/auth/user/revoke", { name: "alice", role: "r0" });
      await both("/v3/auth/user/revoke", { name: "bob", role: "r0" });
      await both("/v3/auth/user/list", {});

      // Enable: refused without root, then without its role; authenticate refused while off.
      const noRoot = await both("/v3/auth/enable", {});
      assertEquals(error(noRoot.text), "etcdserver: root user does not exist");
      await both("/v3/auth/authenticate", { name: "alice", password: "pw-a2" });
      await both("/v3/auth/user/add", { name: "root", password: "rootpw" });
      const noRole = await both("/v3/auth/enable", {});
      assertEquals(error(noRole.text), "etcdserver: root user does not have root role");
      await both("/v3/auth/user/grant", { user: "root", role: "root" });
      await both("/v3/auth/user/get", { name: "root" });
      assertEquals((await both("/v3/auth/enable", {})).status, 200);

      // Authenticate: wrong password, unknown user, a user without password, then tokens.
      await both("/v3/auth/authenticate", { name: "alice", password: "pw-a" });
      await both("/v3/auth/authenticate", { name: "carol", password: "x" });
      await both("/v3/auth/authenticate", { name: "nopw", password: "" });
      const alice = await both("/v3/auth/authenticate", { name: "alice", password: "pw-a2" });
      assert(alice.text.includes('"token":"<token>"'), alice.text);
      for (const s of [etcd, cairn]) {
        const a = await post(s, "/v3/auth/authenticate", { name: "root", password: "rootpw" });
        tokens.set(s, (JSON.parse(a.text) as { token: string }).token);
      }
      // Enabled again: nothing changes. Disable. (With root's token, which etcd asks for.)
      await both("/v3/auth/enable", {});
      assertEquals((await both("/v3/auth/disable", {})).status, 200);
      tokens.clear();
      await both("/v3/auth/disable", {});
      await both("/v3/auth/authenticate", { name: "root", password: "rootpw" });

      // Deletes: a role goes from its users too.
      await both("/v3/auth/role/delete", { role: "r1" });
      await both("/v3/auth/role/delete", { role: "r1" });
      await both("/v3/auth/user/get", { name: "alice" });
      await both("/v3/auth/user/delete", { name: "nopw" });
      await both("/v3/auth/user/delete", { name: "nopw" });
      await both("/v3/auth/role/add", { name: "r2" });
      await grant("r2", "READ", "q/", "q0");
      await both("/v3/auth/user/grant", { user: "alice", role: "r2" });

      // cairn keeps all of it across a restart.
      await cairn.terminate();
      cairn = await startCairn(dirs[1], ["--bcrypt-cost", "4"]);
      await both("/v3/auth/user/list", {}, "users after restart");
      await both("/v3/auth/role/list", {}, "roles after restart");
      await both("/v3/auth/user/get", { name: "alice" }, "alice after restart");
      await both("/v3/auth/role/get", { role: "r2" }, "r2 after restart");
      await both("/v3/auth/user/grant", { user: "root", role: "root" }, "root after restart");
      assertEquals((await both("/v3/auth/enable", {}, "enable after restart")).status, 200);
      const root = await both("/v3/auth/authenticate", { name: "root", password: "rootpw" });
      assert(root.text.includes('"token":"<token>"'), root.text);
    } finally {
      await etcd.kill();
      await cairn.kill();
      for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
