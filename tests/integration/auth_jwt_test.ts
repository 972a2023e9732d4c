/**
 * `--auth-token jwt` served end to end, differentially: etcd 3.4 and cairn
 * started with the same RS256 key pair get the same JSON gateway requests
 * and must give byte-equal answers once IDs, terms and tokens are masked:
 * authenticate hands out a JWT; a request with it is served; one with its
 * signature or payload changed is refused as an invalid token; a token
 * issued before an auth change is refused as old, and a new one works.
 * Then cairn alone: a JWT signed by cairn is taken by etcd and one signed
 * by etcd by cairn (they share the key), so members of either verify the
 * other's tokens.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { HAVE_ETCD, type ServerProcess, startCairn, startEtcd } from "../servers.ts";
import { type Answer, masked, post } from "../auth_http.ts";
import { openssl } from "../certs.ts";

/** `token` with one character of its part `part` (0 header, 1 payload, 2 signature) changed. */
function tampered(token: string, part: number): string {
  const parts = token.split(".");
  const p = parts[part];
  const i = Math.floor(p.length / 2);
  parts[part] = p.slice(0, i) + (p[i] === "A" ? "B" : "A") + p.slice(i + 1);
  return parts.join(".");
}

const b64 = (s: string) => btoa(s);

Deno.test({
  name: "auth: jwt tokens are issued, checked and refused as etcd 3.4 does",
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const keys = await Deno.makeTempDir({ prefix: "cairn-jwt-keys-" });
    await openssl([
      "genpkey",
      "-algorithm",
      "RSA",
      "-pkeyopt",
      "rsa_keygen_bits:2048",
      "-out",
      "k.pem",
    ], keys);
    await openssl(["pkey", "-in", "k.pem", "-pubout", "-out", "k.pub"], keys);
    const flag = `jwt,pub-key=${keys}/k.pub,priv-key=${keys}/k.pem,sign-method=RS256,ttl=10m`;
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    const [etcd, cairn] = await Promise.all([
      startEtcd(dirs[0], ["--auth-token", flag]),
      startCairn(dirs[1], ["--auth-token", flag, "--bcrypt-cost", "4"]),
    ]);
    try {
      const tokens = new Map<ServerProcess, Map<string, string>>([[etcd, new Map()], [
        cairn,
        new Map(),
      ]]);
      /** The same step on both; `as` names a saved token; `save` keeps the answer's token. */
      const both = async (
        what: string,
        path: string,
        body: unknown,
        opts: { as?: string; token?: (t: string) => string; save?: string; status?: number } = {},
      ) => {
        const answers: Answer[] = [];
        for (const server of [etcd, cairn]) {
          let token = opts.as === undefined ? undefined : tokens.get(server)!.get(opts.as);
          if (token !== undefined && opts.token !== undefined) token = opts.token(token);
          const a = await post(server, path, body, token);
          if (opts.save !== undefined) {
            tokens.get(server)!.set(opts.save, JSON.parse(a.text).token);
          }
          answers.push(a);
        }
        const [e, c] = answers.map(masked);
        assertEquals(c, e, `${what}: cairn answered otherwise than etcd`);
        if (opts.status !== undefined) {
          assertEquals(e.status, opts.status, `${what}: etcd's status`);
        }
      };
      await both("add root", "/v3/auth/user/add", { name: "root", password: "pw" }, {
        status: 200,
      });
      await both("grant root", "/v3/auth/user/grant", { user: "root", role: "root" });
      await both("add alice", "/v3/auth/user/add", { name: "alice", password: "pa" });
      await both("add role", "/v3/auth/role/add", { name: "r" });
      await both("grant role", "/v3/auth/role/grant", {
        name: "r",
        perm: { permType: "READWRITE", key: b64("a/"), range_end: b64("a0") },
      });
      await both("alice gets role", "/v3/auth/user/grant", { user: "alice", role: "r" });
      await both("enable", "/v3/auth/enable", {}, { status: 200 });
      await both("root authenticates", "/v3/auth/authenticate", { name: "root", password: "pw" }, {
        save: "root",
        status: 200,
      });
      await both(
        "alice authenticates",
        "/v3/auth/authenticate",
        { name: "alice", password: "pa" },
        {
          save: "alice",
        },
      );
      for (const server of [etcd, cairn]) {
        assertEquals(tokens.get(server)!.get("alice")!.split(".").length, 3, "a JWT");
      }
      await both("alice puts", "/v3/kv/put", { key: b64("a/1"), value: b64("v") }, {
        as: "alice",
        status: 200,
      });
      await both("alice reads outside", "/v3/kv/range", { key: b64("b") }, {
        as: "alice",
        status: 403,
      });
      await both("tampered payload", "/v3/kv/range", { key: b64("a/1") }, {
        as: "alice",
        token: (t) => tampered(t, 1),
        status: 401,
      });
      await both("tampered signature", "/v3/kv/range", { key: b64("a/1") }, {
        as: "alice",
        token: (t) => tampered(t, 2),
        status: 401,
      });
      // An auth change: tokens issued before it are old.
      await both("root adds a role", "/v3/auth/role/add", { name: "other" }, {
        as: "root",
        status: 200,
      });
      await both("alice's old token", "/v3/kv/range", { key: b64("a/1") }, {
        as: "alice",
        status: 400,
      });
      await both("alice again", "/v3/auth/authenticate", { name: "alice", password: "pa" }, {
        save: "alice",
      });
      await both("alice's new token", "/v3/kv/range", { key: b64("a/1") }, {
        as: "alice",
        status: 200,
      });
      // Either member takes the other's token: the claims and signatures are the same.
      const fromCairn = tokens.get(cairn)!.get("alice")!;
      const fromEtcd = tokens.get(etcd)!.get("alice")!;
      assertEquals((await post(etcd, "/v3/kv/range", { key: b64("a/1") }, fromCairn)).status, 200);
      assertEquals((await post(cairn, "/v3/kv/range", { key: b64("a/1") }, fromEtcd)).status, 200);
    } finally {
      await Promise.allSettled([etcd.kill(), cairn.kill()]);
      for (const d of [...dirs, keys]) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
