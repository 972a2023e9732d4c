import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { AuthStore, type Permission } from "../../core/auth/mod.ts";
import { bcryptCost, checkPassword, hashPassword } from "../../core/auth/password.ts";
import { SimpleTokens } from "../../core/auth/simple_token.ts";
import { Errors, type EtcdError } from "../../core/errors.ts";
import { Meta } from "../../core/mvcc/view.ts";
import { openBackend } from "../../native/lmdb.ts";
import { Applier } from "../../server/raftnode/applier.ts";
import { encodeRequest, entryData, type InternalRequest } from "../../server/raftnode/request.ts";
import { proposalSize } from "../../server/etcdserver/proposal.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const perm = (permType: Permission["permType"], key: string, end = ""): Permission => ({
  permType,
  key: bytes(key),
  range_end: bytes(end),
});
const fails = (f: () => void, expected: () => EtcdError) =>
  throws(f, (e: EtcdError) => e.message === expected().message && e.code === expected().code);

Deno.test("auth store: users and roles with etcd's errors", () => {
  const s = new AuthStore();
  assertEquals(s.revision, 1);
  s.apply({ op: "user_add", name: "alice", hashedPassword: "h1", noPassword: false });
  fails(
    () => s.apply({ op: "user_add", name: "alice", hashedPassword: "h", noPassword: false }),
    Errors.UserAlreadyExist,
  );
  fails(
    () => s.apply({ op: "user_add", name: "", hashedPassword: "h", noPassword: false }),
    Errors.UserEmpty,
  );
  fails(() => s.apply({ op: "user_grant_role", user: "alice", role: "r" }), Errors.RoleNotFound);
  fails(() => s.apply({ op: "user_grant_role", user: "bob", role: "r" }), Errors.UserNotFound);
  s.apply({ op: "role_add", name: "r" });
  fails(() => s.apply({ op: "role_add", name: "r" }), Errors.RoleAlreadyExist);
  fails(() => s.apply({ op: "role_add", name: "" }), Errors.RoleEmpty);
  s.apply({ op: "user_grant_role", user: "alice", role: "r" });
  s.apply({ op: "role_add", name: "a" });
  s.apply({ op: "user_grant_role", user: "alice", role: "a" });
  assertEquals(s.userGet("alice"), ["a", "r"]);
  const rev = s.revision;
  // Granting a role again changes nothing, not even the revision.
  s.apply({ op: "user_grant_role", user: "alice", role: "r" });
  assertEquals(s.revision, rev);
  fails(() => s.apply({ op: "user_revoke_role", name: "alice", role: "x" }), Errors.RoleNotGranted);
  s.apply({ op: "user_revoke_role", name: "alice", role: "a" });
  assertEquals(s.userGet("alice"), ["r"]);
  s.apply({ op: "role_delete", role: "r" });
  assertEquals(s.userGet("alice"), []);
  assertEquals(s.roleList(), ["a"]);
  fails(() => s.roleGet("r"), Errors.RoleNotFound);
  s.apply({ op: "user_change_password", name: "alice", hashedPassword: "h2" });
  assertEquals(s.user("alice")?.password, "h2");
  s.apply({ op: "user_delete", name: "alice" });
  fails(() => s.userGet("alice"), Errors.UserNotFound);
  assertEquals(s.userList(), []);
});

Deno.test("auth store: permissions in key order, updated in place, revoked by exact range", () => {
  const s = new AuthStore();
  s.apply({ op: "role_add", name: "r" });
  s.apply({ op: "role_grant_permission", name: "r", perm: perm("READ", "m") });
  s.apply({ op: "role_grant_permission", name: "r", perm: perm("WRITE", "a", "c") });
  s.apply({ op: "role_grant_permission", name: "r", perm: perm("READWRITE", "m") });
  assertEquals(s.roleGet("r"), [perm("WRITE", "a", "c"), perm("READWRITE", "m")]);
  fails(
    () =>
      s.apply({ op: "role_revoke_permission", role: "r", key: bytes("a"), range_end: bytes("") }),
    Errors.PermissionNotGranted,
  );
  s.apply({ op: "role_revoke_permission", role: "r", key: bytes("a"), range_end: bytes("c") });
  assertEquals(s.roleGet("r"), [perm("READWRITE", "m")]);
});

Deno.test("auth store: enable needs root with the root role; root is then protected", () => {
  const s = new AuthStore();
  fails(() => s.apply({ op: "enable" }), Errors.RootUserNotExist);
  s.apply({ op: "user_add", name: "root", hashedPassword: "h", noPassword: false });
  fails(() => s.apply({ op: "enable" }), Errors.RootRoleNotExist);
  // The root role need not be added to be granted.
  s.apply({ op: "user_grant_role", user: "root", role: "root" });
  const rev = s.revision;
  s.apply({ op: "enable" });
  assert(s.enabled);
  assertEquals(s.revision, rev);
  fails(() => s.apply({ op: "user_delete", name: "root" }), Errors.InvalidAuthMgmt);
  fails(
    () => s.apply({ op: "user_revoke_role", name: "root", role: "root" }),
    Errors.InvalidAuthMgmt,
  );
  fails(() => s.apply({ op: "role_delete", role: "root" }), Errors.InvalidAuthMgmt);
  s.apply({ op: "disable" });
  assert(!s.enabled);
  assertEquals(s.revision, rev + 1);
  s.apply({ op: "user_revoke_role", name: "root", role: "root" });
});

Deno.test("auth store: survives encoding", () => {
  const s = new AuthStore();
  s.apply({ op: "user_add", name: "root", hashedPassword: "h", noPassword: false });
  s.apply({ op: "user_add", name: "np", hashedPassword: "x", noPassword: true });
  s.apply({ op: "user_grant_role", user: "root", role: "root" });
  s.apply({ op: "role_add", name: "r" });
  s.apply({ op: "role_grant_permission", name: "r", perm: perm("READ", "\x00\xff", "\x00") });
  s.apply({ op: "enable" });
  const t = AuthStore.decode(s.encode());
  assertEquals(t.encode(), s.encode());
  assert(t.enabled);
  assertEquals(t.revision, s.revision);
  assertEquals(t.user("np"), { name: "np", password: "", roles: [], noPassword: true });
  assertEquals(t.roleGet("r"), [perm("READ", "\x00\xff", "\x00")]);
  assertEquals(AuthStore.decode(undefined).revision, 1);
});

Deno.test("auth store: checkRange merges the ranges of every role", () => {
  const s = new AuthStore();
  for (const name of ["root", "u"]) {
    s.apply({ op: "user_add", name, hashedPassword: "h", noPassword: false });
  }
  s.apply({ op: "user_grant_role", user: "root", role: "root" });
  s.apply({ op: "role_add", name: "r1" });
  s.apply({ op: "role_add", name: "r2" });
  s.apply({ op: "user_grant_role", user: "u", role: "r1" });
  s.apply({ op: "user_grant_role", user: "u", role: "r2" });
  s.apply({ op: "role_grant_permission", name: "r1", perm: perm("READ", "a", "c") });
  s.apply({ op: "role_grant_permission", name: "r2", perm: perm("READWRITE", "c", "e") });
  s.apply({ op: "role_grant_permission", name: "r2", perm: perm("WRITE", "k") });
  s.apply({ op: "role_grant_permission", name: "r1", perm: perm("READ", "x", "\x00") });
  const can = (k: string, end: string, t: "READ" | "WRITE", user = "u") =>
    s.checkRange(user, bytes(k), bytes(end), t);
  // Disabled: everything is allowed.
  assert(can("zz", "", "WRITE"));
  s.apply({ op: "enable" });
  assert(can("a", "", "READ"));
  assert(can("a", "e", "READ")); // [a,c) and [c,e) merge
  assert(!can("a", "e\x00", "READ"));
  assert(!can("a", "c", "WRITE"));
  assert(can("c", "e", "WRITE"));
  assert(can("k", "", "WRITE"));
  assert(!can("k", "", "READ"));
  assert(!can("k", "k\x00\x00", "WRITE"));
  assert(can("x", "\x00", "READ")); // from-key within from-key
  assert(can("y", "zzz", "READ"));
  assert(!can("w", "\x00", "READ"));
  assert(!can("a", "\x00", "READ"));
  assert(can("anything", "\x00", "WRITE", "root"));
  assert(!can("a", "", "READ", "nobody"));
});

Deno.test("passwords: bcrypt hashes at the given cost, checked by compare", async () => {
  const hash = await hashPassword("secret", 4);
  assert(hash.startsWith("$2b$04$"), hash);
  assert(await checkPassword("secret", hash));
  assert(!(await checkPassword("Secret", hash)));
  assert(!(await checkPassword("secret", "")));
  assert(!(await checkPassword("secret", "not-a-hash")));
  assertEquals(bcryptCost(3), 10);
  assertEquals(bcryptCost(32), 10);
  assertEquals(bcryptCost(12), 12);
  assertEquals(bcryptCost(undefined), 10);
});

Deno.test("applier: auth changes apply in log order, refusals change nothing, reopening keeps them", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-auth-apply-" });
  try {
    const backend = openBackend(dir);
    const applier = new Applier(backend);
    const requests: InternalRequest[] = [
      { type: "auth", auth: { op: "enable" } },
      {
        type: "auth",
        auth: { op: "user_add", name: "root", hashedPassword: "h", noPassword: false },
      },
      { type: "auth", auth: { op: "user_grant_role", user: "root", role: "root" } },
      { type: "auth", auth: { op: "role_add", name: "r" } },
      { type: "auth", auth: { op: "role_add", name: "r" } },
      { type: "auth", auth: { op: "enable" } },
      { type: "put", put: { key: bytes("k"), value: bytes("v") } },
    ];
    const batch = applier.apply(requests.map((req, i) => ({
      term: 1,
      index: i + 1,
      type: "normal" as const,
      data: entryData(i + 1, encodeRequest(req)),
    })));
    await batch.committed;
    const error = (id: number) => {
      const r = batch.results.get(id);
      return r !== undefined && "error" in r ? r.error.message : undefined;
    };
    const revision = (id: number) => {
      const r = batch.results.get(id);
      return r !== undefined && "ok" in r ? r.ok.header?.revision : undefined;
    };
    assertEquals(
      error(1),
      Errors.RootUserNotExist().message,
    );
    assertEquals(
      error(5),
      Errors.RoleAlreadyExist().message,
    );
    // An auth change answers a header at the current KV revision.
    assertEquals(revision(4), 1);
    assert(applier.auth.enabled);
    assertEquals(applier.auth.roleList(), ["r"]);
    backend.close();
    const reopened = openBackend(dir);
    const again = new Applier(reopened);
    assert(again.auth.enabled);
    assertEquals(again.auth.userGet("root"), ["root"]);
    assertEquals(again.auth.encode(), applier.auth.encode());
    assert(typeof reopened.getMeta(Meta.auth) === "string");
    reopened.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("proposal size: auth changes count as etcd's Auth requests", () => {
  const base = proposalSize({ type: "auth", auth: { op: "enable" } }, 1n);
  assertEquals(proposalSize({ type: "auth", auth: { op: "role_add", name: "abc" } }, 1n), base + 5);
  assertEquals(
    proposalSize({
      type: "auth",
      auth: { op: "role_grant_permission", name: "r", perm: perm("READ", "a", "b") },
    }, 1n),
    base + 3 + 2 + 6,
  );
});

Deno.test("simple tokens: etcd's form, valid until unused for the TTL, bounded", () => {
  let now = 0;
  let r = 0;
  const tokens = new SimpleTokens({
    ttlSeconds: 300,
    now: () => now,
    random: (n) => Uint8Array.from({ length: n }, () => r++),
    maxTokens: 2,
  });
  const a = tokens.assign({ user: "alice", revision: 3 });
  assert(/^[a-zA-Z]{16}\.1$/.test(a), a);
  assertEquals(tokens.info(a), { user: "alice" });
  now = 299_000;
  assertEquals(tokens.info(a)?.user, "alice"); // use extends it
  now = 598_999;
  assert(tokens.info(a) !== undefined);
  now = 898_999 + 1;
  assertEquals(tokens.info(a), undefined);
  assertEquals(tokens.info("nope.1"), undefined);
  const b = tokens.assign({ user: "bob", revision: 1 });
  const c = tokens.assign({ user: "carol", revision: 1 });
  tokens.info(b);
  const d = tokens.assign({ user: "dave", revision: 1 });
  assertEquals(tokens.size, 2);
  assertEquals(tokens.info(c), undefined); // least recently used, dropped
  assert(tokens.info(d) !== undefined && tokens.info(b) !== undefined);
  tokens.invalidateUser("bob");
  assertEquals(tokens.info(b), undefined);
});
