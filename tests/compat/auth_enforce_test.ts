/**
 * Permission enforcement, differentially: one long sequence of requests,
 * each made as a named identity (root, alice, bob, carol, nobody, a garbage
 * token), is run against a real etcd 3.4 — the reference, whose answer to
 * every step is also checked against what the step expects — and then
 * against cairn, whose answers must be byte-equal to etcd's once tokens,
 * member and cluster IDs, terms and the values that only describe a
 * member's storage (status, hash) are masked — but for the deliberate
 * deviations listed below.
 *
 * The sequence: root user and role, users alice/bob/carol, roles with READ
 * on a key, WRITE on a prefix, READWRITE on a range and from a key, and
 * overlapping and adjacent READ grants (etcd merges them into one range);
 * auth enable; then allowed and denied ranges, puts (with prev_kv and with a
 * lease holding a key the user cannot write), deletes, txns (compares on
 * unreadable keys, a forbidden op in an untaken or nested branch), watch
 * creation, lease grant/revoke/time-to-live, compaction, maintenance,
 * members, auth administration as a non-root user (own user and own role
 * are readable), lock and election keys, anonymous and garbage tokens,
 * tokens of a deleted user and after a password change, a revoked
 * permission, and auth disabled again. The same kind of sequence then runs
 * over gRPC (token in the `token` metadata).
 *
 * One etcd and one cairn serve the whole file; the JSON sequence runs first,
 * and leaves auth disabled for the gRPC one. A step that lets through a
 * write etcd refuses moves every later revision, so a failure lists the
 * steps whose outcome differs before those that differ only in the body.
 *
 * What the steps record of etcd 3.4.23 (where it checks less, or otherwise,
 * than one might guess):
 * - compaction, lease grant, lease time-to-live (keys included), status,
 *   alarm list/deactivate and member list are not checked: any user, and
 *   anyone without a token, gets an answer; leader transfer answers with its
 *   own error (`bad leader transferee`);
 * - hash, defragment and snapshot need root, and are refused with the auth
 *   store's error, gRPC code Unknown / HTTP 500: `auth: permission denied`,
 *   `auth: user name is empty`;
 * - inside a txn, a put is checked for write only (its prev_kv and lease are
 *   not), and a nested txn is not looked into: its compares and ops run
 *   unchecked, so a write to a key the user cannot write goes through;
 * - a denied watch is created and canceled at once (`watch_id` -1), the
 *   cancel reason being the gRPC error's text
 *   (`rpc error: code = PermissionDenied desc = etcdserver: permission denied`);
 * - lock and election refusals come with code Unknown / HTTP 500;
 * - with auth disabled a request that still carries a token (valid before,
 *   or garbage) is refused as `invalid auth token`.
 *
 * Where cairn deliberately checks more than etcd 3.4.23 (holes later etcd
 * releases closed: etcd PRs #21677, #21688 and #21689, CVE-2023-32082), a
 * step carries a `cairn` field: cairn's outcome, compared byte for byte with
 * etcd's own answer to another step that ends the same way, and, where etcd
 * let a write through, a request that cairn alone then runs as root so that
 * later revisions agree. The deliberate deviations:
 * - a nested txn is checked as the outer one is: READ on its compares' keys
 *   and each op's permission, in taken and untaken branches
 *   (`etcdserver: permission denied`, HTTP 403 / gRPC code 7);
 * - a put inside a txn is checked as a top-level put is: with prev_kv it
 *   needs READ on its key as well, with a lease WRITE on every key already
 *   attached to the lease;
 * - lease time-to-live with auth enabled needs a user (anonymous:
 *   `etcdserver: user name is empty`, HTTP 400 / gRPC code 3) and READ on
 *   every key attached to the lease, whether or not `keys` is asked.
 *
 * @module
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { b64, compatName, HAVE_ETCD } from "./harness.ts";
import { type ServerProcess, startCairn, startEtcd } from "../servers.ts";
import { type Msg, TestClient } from "../grpc_client.ts";

// ---------------------------------------------------------------------------
// Steps

/** What etcd 3.4 answers a step with: success, or an error's message. */
const OK = "ok";
const EMPTY = "etcdserver: user name is empty";
const DENIED = "etcdserver: permission denied";
const INVALID = "etcdserver: invalid auth token";
const AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password";
/** etcd 3.4's admin check in the Maintenance service: an auth store error, not an etcdserver one. */
const ADMIN_DENIED = "auth: permission denied";
/** A watch's cancel reason wraps the gRPC error (etcd 3.4 puts the error's String() in it). */
const WATCH_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
const WATCH_EMPTY = "rpc error: code = InvalidArgument desc = etcdserver: user name is empty";
const WATCH_INVALID = "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token";

/**
 * A token nobody was given, shaped as etcd's simple tokens are
 * (16 letters, a dot, an index).
 */
const GARBAGE_TOKEN = "nxGUUvhFmxRqkwdY.38";

/** Who sends a request: a saved token's name, nobody, or a garbage token. */
type Who = "anon" | "garbage" | string;

/**
 * How cairn deliberately answers a step otherwise than etcd 3.4.23: it
 * checks what a later etcd checks (see the module doc).
 */
interface Deviation<Sync> {
  /** cairn's outcome, in the terms of the step's `expect`. */
  expect: string;
  /**
   * The write etcd 3.4.23 let through, made on cairn alone, as root, right
   * after the step, so that later revisions agree. It must succeed; its
   * answer is not compared.
   */
  sync?: Sync;
}

/** One JSON gateway request of the sequence. */
interface JsonStep {
  /** Unique; names the step in a failure. */
  name: string;
  as: Who;
  path: string;
  body: unknown;
  /** etcd 3.4's answer: {@linkcode OK} or the error message (for a watch: the cancel reason). */
  expect: string;
  /** Save the answer's `token` under this name. */
  save?: string;
  /** A streaming endpoint (watch, snapshot): read only its first message. */
  stream?: boolean;
  /** Field names whose values are masked in this step's answer. */
  mask?: string[];
  /** Put this before the token in `Authorization` (a scheme etcd does not take). */
  scheme?: string;
  /** Where cairn deliberately answers otherwise than etcd 3.4.23. */
  cairn?: Deviation<{ path: string; body: unknown }>;
}

/** Values that describe one member's storage, not auth: masked in status/hash answers. */
const STATUS_FIELDS = [
  "version",
  "dbSize",
  "dbSizeInUse",
  "leader",
  "raftIndex",
  "raftTerm",
  "raftAppliedIndex",
];

/**
 * Values of a member list that depend on how the member was started (its ID, its peer URL:
 * the harness gives etcd a peer port and leaves cairn's default), not on auth.
 */
const MEMBER_FIELDS = ["ID", "peerURLs"];

/** Leases with fixed IDs, so lock and election keys (`name/<lease hex>`) match on both. */
const LEASE_SECRET = "4096"; // 0x1000: holds secret/leased, which alice cannot write
const LEASE_ALICE = "8192"; // 0x2000: granted by alice, holds w/leased
const LEASE_ALICE_READ = "8448"; // 0x2100: granted by alice, holds m/leased, which she can read
const LEASE_LOCK = "12288"; // 0x3000: alice's lock and campaign lease

const range = (key: string, end?: string) => ({
  key: b64(key),
  ...(end === undefined ? {} : { range_end: b64(end) }),
});
const put = (key: string, value: string, extra: Record<string, unknown> = {}) => ({
  key: b64(key),
  value: b64(value),
  ...extra,
});
const perm = (permType: string, key: string, end?: string) => ({
  permType,
  ...range(key, end),
});

/** The JSON gateway sequence. */
// deno-fmt-ignore: one step a line reads as a table
const JSON_STEPS: JsonStep[] = [
  // Setup while auth is off: anyone may do it.
  { name: "add root", as: "anon", path: "/v3/auth/user/add", body: { name: "root", password: "rootpw" }, expect: OK },
  { name: "add root role", as: "anon", path: "/v3/auth/role/add", body: { name: "root" }, expect: OK },
  { name: "grant root root", as: "anon", path: "/v3/auth/user/grant", body: { user: "root", role: "root" }, expect: OK },
  { name: "add alice", as: "anon", path: "/v3/auth/user/add", body: { name: "alice", password: "pw-a" }, expect: OK },
  { name: "add bob", as: "anon", path: "/v3/auth/user/add", body: { name: "bob", password: "pw-b" }, expect: OK },
  { name: "add carol", as: "anon", path: "/v3/auth/user/add", body: { name: "carol", password: "pw-c" }, expect: OK },
  { name: "add role reader", as: "anon", path: "/v3/auth/role/add", body: { name: "reader" }, expect: OK },
  { name: "add role writer", as: "anon", path: "/v3/auth/role/add", body: { name: "writer" }, expect: OK },
  { name: "add role rw", as: "anon", path: "/v3/auth/role/add", body: { name: "rw" }, expect: OK },
  { name: "add role merge", as: "anon", path: "/v3/auth/role/add", body: { name: "merge" }, expect: OK },
  { name: "reader: READ r/key", as: "anon", path: "/v3/auth/role/grant", body: { name: "reader", perm: perm("READ", "r/key") }, expect: OK },
  { name: "writer: WRITE prefix w/", as: "anon", path: "/v3/auth/role/grant", body: { name: "writer", perm: perm("WRITE", "w/", "w0") }, expect: OK },
  { name: "rw: READWRITE [m/a, m/m)", as: "anon", path: "/v3/auth/role/grant", body: { name: "rw", perm: perm("READWRITE", "m/a", "m/m") }, expect: OK },
  { name: "rw: READWRITE from z", as: "anon", path: "/v3/auth/role/grant", body: { name: "rw", perm: perm("READWRITE", "z", "\0") }, expect: OK },
  { name: "merge: READ [o/a, o/c)", as: "anon", path: "/v3/auth/role/grant", body: { name: "merge", perm: perm("READ", "o/a", "o/c") }, expect: OK },
  { name: "merge: READ [o/b, o/e) overlaps", as: "anon", path: "/v3/auth/role/grant", body: { name: "merge", perm: perm("READ", "o/b", "o/e") }, expect: OK },
  { name: "merge: READ [o/e, o/g) adjacent", as: "anon", path: "/v3/auth/role/grant", body: { name: "merge", perm: perm("READ", "o/e", "o/g") }, expect: OK },
  { name: "role get merge", as: "anon", path: "/v3/auth/role/get", body: { role: "merge" }, expect: OK },
  ...["reader", "writer", "rw", "merge"].map((role) => ({
    name: `grant alice ${role}`,
    as: "anon",
    path: "/v3/auth/user/grant",
    body: { user: "alice", role },
    expect: OK,
  })),
  { name: "grant bob reader", as: "anon", path: "/v3/auth/user/grant", body: { user: "bob", role: "reader" }, expect: OK },
  { name: "grant carol writer", as: "anon", path: "/v3/auth/user/grant", body: { user: "carol", role: "writer" }, expect: OK },
  // Data, and a lease holding a key only root may write.
  ...["r/key", "w/a", "m/b", "m/x", "z1", "o/a", "o/f", "secret/x"].map((key) => ({
    name: `seed ${key}`,
    as: "anon",
    path: "/v3/kv/put",
    body: put(key, `v-${key}`),
    expect: OK,
  })),
  { name: "seed lease", as: "anon", path: "/v3/lease/grant", body: { TTL: 600, ID: LEASE_SECRET }, expect: OK },
  { name: "seed leased key", as: "anon", path: "/v3/kv/put", body: put("secret/leased", "l", { lease: LEASE_SECRET }), expect: OK },
  { name: "enable", as: "anon", path: "/v3/auth/enable", body: {}, expect: OK },

  // Authenticate.
  { name: "authenticate wrong password", as: "anon", path: "/v3/auth/authenticate", body: { name: "alice", password: "nope" }, expect: AUTH_FAILED },
  { name: "authenticate unknown user", as: "anon", path: "/v3/auth/authenticate", body: { name: "mallory", password: "x" }, expect: AUTH_FAILED },
  ...[["root", "rootpw"], ["alice", "pw-a"], ["bob", "pw-b"], ["carol", "pw-c"]].map(
    ([name, password]) => ({
      name: `authenticate ${name}`,
      as: "anon",
      path: "/v3/auth/authenticate",
      body: { name, password },
      expect: OK,
      save: name,
    }),
  ),

  // Who is asking.
  { name: "range anonymous", as: "anon", path: "/v3/kv/range", body: range("r/key"), expect: EMPTY },
  { name: "range garbage token", as: "garbage", path: "/v3/kv/range", body: range("r/key"), expect: INVALID },
  { name: "put anonymous", as: "anon", path: "/v3/kv/put", body: put("w/anon", "x"), expect: EMPTY },
  { name: "put garbage token", as: "garbage", path: "/v3/kv/put", body: put("w/anon", "x"), expect: INVALID },
  { name: "range alice Bearer scheme", as: "alice", scheme: "Bearer ", path: "/v3/kv/range", body: range("r/key"), expect: INVALID },
  { name: "range root", as: "root", path: "/v3/kv/range", body: range("secret/x"), expect: OK },

  // Range.
  { name: "range alice READ key", as: "alice", path: "/v3/kv/range", body: range("r/key"), expect: OK },
  { name: "range bob READ key", as: "bob", path: "/v3/kv/range", body: range("r/key"), expect: OK },
  { name: "range alice no grant", as: "alice", path: "/v3/kv/range", body: range("secret/x"), expect: DENIED },
  { name: "range alice key's range", as: "alice", path: "/v3/kv/range", body: range("r/key", "r/kez"), expect: DENIED },
  { name: "range alice WRITE-only key", as: "alice", path: "/v3/kv/range", body: range("w/a"), expect: DENIED },
  { name: "range alice WRITE-only prefix", as: "alice", path: "/v3/kv/range", body: range("w/", "w0"), expect: DENIED },
  { name: "range alice inside READWRITE range", as: "alice", path: "/v3/kv/range", body: range("m/b", "m/k"), expect: OK },
  { name: "range alice whole READWRITE range", as: "alice", path: "/v3/kv/range", body: range("m/a", "m/m"), expect: OK },
  { name: "range alice straddling range end", as: "alice", path: "/v3/kv/range", body: range("m/b", "m/z"), expect: DENIED },
  { name: "range alice straddling range start", as: "alice", path: "/v3/kv/range", body: range("l", "m/c"), expect: DENIED },
  { name: "range alice beyond range", as: "alice", path: "/v3/kv/range", body: range("m/x"), expect: DENIED },
  { name: "range alice from z", as: "alice", path: "/v3/kv/range", body: range("z", "\0"), expect: OK },
  { name: "range alice from z1", as: "alice", path: "/v3/kv/range", body: range("z1", "\0"), expect: OK },
  { name: "range alice from y", as: "alice", path: "/v3/kv/range", body: range("y", "\0"), expect: DENIED },
  { name: "range alice all keys", as: "alice", path: "/v3/kv/range", body: range("\0", "\0"), expect: DENIED },
  { name: "range alice merged [o/a, o/g)", as: "alice", path: "/v3/kv/range", body: range("o/a", "o/g"), expect: OK },
  { name: "range alice merged [o/c, o/f)", as: "alice", path: "/v3/kv/range", body: range("o/c", "o/f"), expect: OK },
  { name: "range alice past merged [o/a, o/h)", as: "alice", path: "/v3/kv/range", body: range("o/a", "o/h"), expect: DENIED },
  { name: "range bob merged", as: "bob", path: "/v3/kv/range", body: range("o/a", "o/g"), expect: DENIED },
  { name: "range alice serializable denied", as: "alice", path: "/v3/kv/range", body: { ...range("secret/x"), serializable: true }, expect: DENIED },
  { name: "range alice count_only denied", as: "alice", path: "/v3/kv/range", body: { ...range("secret/x"), count_only: true }, expect: DENIED },

  // Put.
  { name: "put alice WRITE prefix", as: "alice", path: "/v3/kv/put", body: put("w/x", "1"), expect: OK },
  { name: "put alice READ-only key", as: "alice", path: "/v3/kv/put", body: put("r/key", "1"), expect: DENIED },
  { name: "put alice no grant", as: "alice", path: "/v3/kv/put", body: put("secret/x", "1"), expect: DENIED },
  { name: "put alice WRITE prefix prev_kv", as: "alice", path: "/v3/kv/put", body: put("w/x", "2", { prev_kv: true }), expect: DENIED },
  { name: "put alice READWRITE prev_kv", as: "alice", path: "/v3/kv/put", body: put("m/b", "2", { prev_kv: true }), expect: OK },
  { name: "put alice from-key grant", as: "alice", path: "/v3/kv/put", body: put("zz", "1"), expect: OK },
  { name: "put bob WRITE prefix", as: "bob", path: "/v3/kv/put", body: put("w/x", "3"), expect: DENIED },
  { name: "put alice with root's lease", as: "alice", path: "/v3/kv/put", body: put("w/l", "1", { lease: LEASE_SECRET }), expect: DENIED },
  { name: "put alice ignore_value denied", as: "alice", path: "/v3/kv/put", body: { key: b64("r/key"), ignore_value: true }, expect: DENIED },

  // Delete.
  { name: "delete alice WRITE prefix key", as: "alice", path: "/v3/kv/deleterange", body: range("w/x"), expect: OK },
  { name: "delete alice WRITE prefix prev_kv", as: "alice", path: "/v3/kv/deleterange", body: { ...range("w/a"), prev_kv: true }, expect: DENIED },
  { name: "delete alice READWRITE prev_kv", as: "alice", path: "/v3/kv/deleterange", body: { ...range("m/b"), prev_kv: true }, expect: OK },
  { name: "delete alice READ-only key", as: "alice", path: "/v3/kv/deleterange", body: range("r/key"), expect: DENIED },
  { name: "delete alice straddling prefix", as: "alice", path: "/v3/kv/deleterange", body: range("w/", "x"), expect: DENIED },
  { name: "put alice w/y", as: "alice", path: "/v3/kv/put", body: put("w/y", "1"), expect: OK },
  { name: "delete alice whole prefix", as: "alice", path: "/v3/kv/deleterange", body: range("w/y", "w0"), expect: OK },
  { name: "range root after deletes", as: "root", path: "/v3/kv/range", body: range("\0", "\0"), expect: OK },

  // Txn.
  {
    name: "txn alice allowed",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("r/key"), target: "VERSION", result: "GREATER", version: "0" }],
      success: [{ request_put: put("w/t", "1") }, { request_range: range("m/a", "m/m") }],
      failure: [{ request_range: range("r/key") }],
    },
    expect: OK,
  },
  {
    name: "txn alice compare on unreadable key",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("secret/x"), target: "VERSION", result: "GREATER", version: "0" }],
      success: [{ request_put: put("w/t", "2") }],
    },
    expect: DENIED,
  },
  {
    name: "txn alice compare on WRITE-only key",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("w/t"), target: "VALUE", result: "EQUAL", value: b64("1") }],
      success: [{ request_put: put("w/t", "2") }],
    },
    expect: DENIED,
  },
  {
    name: "txn alice compare on a range straddling a grant",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      compare: [{ ...range("m/a", "m/z"), target: "MOD", result: "GREATER", mod_revision: "0" }],
      success: [{ request_put: put("w/t", "3") }],
    },
    expect: DENIED,
  },
  {
    name: "txn alice forbidden put in untaken failure",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      compare: [{ key: b64("r/key"), target: "VERSION", result: "GREATER", version: "0" }],
      success: [{ request_put: put("w/t", "4") }],
      failure: [{ request_put: put("secret/x", "pwned") }],
    },
    expect: DENIED,
  },
  { name: "txn alice forbidden range in success", as: "alice", path: "/v3/kv/txn", body: { success: [{ request_range: range("w/", "w0") }] }, expect: DENIED },
  { name: "txn alice delete prev_kv on WRITE-only key", as: "alice", path: "/v3/kv/txn", body: { success: [{ request_delete_range: { ...range("w/t"), prev_kv: true } }] }, expect: DENIED },
  // etcd 3.4.23 checks a put inside a txn for write only: not prev_kv (a read), not the lease;
  // cairn checks it as a top-level put.
  { name: "txn alice put prev_kv on WRITE-only key", as: "alice", path: "/v3/kv/txn", body: { success: [{ request_put: put("w/t", "5", { prev_kv: true }) }] }, expect: OK,
    cairn: { expect: DENIED, sync: { path: "/v3/kv/put", body: put("w/t", "5") } } },
  { name: "txn alice put with root's lease", as: "alice", path: "/v3/kv/txn", body: { success: [{ request_put: put("w/tl", "1", { lease: LEASE_SECRET }) }] }, expect: OK,
    cairn: { expect: DENIED, sync: { path: "/v3/kv/put", body: put("w/tl", "1", { lease: LEASE_SECRET }) } } },
  {
    name: "txn alice nested allowed",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      success: [{
        request_txn: {
          compare: [{ key: b64("z1"), target: "CREATE", result: "EQUAL", create_revision: "0" }],
          success: [{ request_put: put("m/c", "n") }],
          failure: [{ request_range: range("z1") }],
        },
      }],
    },
    expect: OK,
  },
  {
    // etcd 3.4.23 checks only the outer txn's compares and ops: a nested txn is not looked into;
    // cairn checks a nested txn as the outer one.
    name: "txn alice nested forbidden put in failure",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      success: [{
        request_txn: {
          compare: [{ key: b64("m/c"), target: "VERSION", result: "GREATER", version: "0" }],
          success: [{ request_put: put("m/d", "n") }],
          failure: [{ request_put: put("secret/x", "pwned") }],
        },
      }],
    },
    expect: OK,
    cairn: { expect: DENIED, sync: { path: "/v3/kv/put", body: put("secret/x", "pwned") } },
  },
  {
    name: "txn alice nested forbidden compare",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      failure: [{
        request_txn: {
          compare: [{ key: b64("secret/x"), target: "VALUE", result: "EQUAL", value: b64("x") }],
          success: [{ request_put: put("m/d", "n") }],
        },
      }],
    },
    expect: OK,
    // The nested txn is in the untaken branch: etcd writes nothing.
    cairn: { expect: DENIED },
  },
  {
    name: "txn alice nested forbidden put in the taken branch",
    as: "alice",
    path: "/v3/kv/txn",
    body: {
      success: [{ request_txn: { success: [{ request_put: put("secret/nested", "pwned") }] } }],
    },
    expect: OK,
    cairn: { expect: DENIED, sync: { path: "/v3/kv/put", body: put("secret/nested", "pwned") } },
  },
  { name: "range root secret/ after txns", as: "root", path: "/v3/kv/range", body: range("secret/", "secret0"), expect: OK },

  // Watch creation.
  { name: "watch alice READ key", as: "alice", path: "/v3/watch", body: { create_request: range("r/key") }, expect: OK, stream: true },
  { name: "watch alice READWRITE range", as: "alice", path: "/v3/watch", body: { create_request: range("m/a", "m/m") }, expect: OK, stream: true },
  { name: "watch alice no grant", as: "alice", path: "/v3/watch", body: { create_request: range("secret/x") }, expect: WATCH_DENIED, stream: true },
  { name: "watch alice WRITE-only prefix", as: "alice", path: "/v3/watch", body: { create_request: range("w/", "w0") }, expect: WATCH_DENIED, stream: true },
  { name: "watch alice straddling", as: "alice", path: "/v3/watch", body: { create_request: range("m/a", "m/z") }, expect: WATCH_DENIED, stream: true },
  { name: "watch alice denied with watch_id", as: "alice", path: "/v3/watch", body: { create_request: { ...range("secret/x"), watch_id: "7" } }, expect: WATCH_DENIED, stream: true },
  { name: "watch anonymous", as: "anon", path: "/v3/watch", body: { create_request: range("r/key") }, expect: WATCH_EMPTY, stream: true },
  { name: "watch garbage token", as: "garbage", path: "/v3/watch", body: { create_request: range("r/key") }, expect: WATCH_INVALID, stream: true },

  // Leases.
  { name: "lease grant anonymous", as: "anon", path: "/v3/lease/grant", body: { TTL: 600, ID: "1" }, expect: OK },
  { name: "lease revoke anonymous root's lease", as: "anon", path: "/v3/lease/revoke", body: { ID: LEASE_SECRET }, expect: EMPTY },
  { name: "lease revoke anonymous empty lease", as: "anon", path: "/v3/lease/revoke", body: { ID: "1" }, expect: OK },
  { name: "lease grant alice", as: "alice", path: "/v3/lease/grant", body: { TTL: 600, ID: LEASE_ALICE }, expect: OK },
  { name: "put alice with own lease", as: "alice", path: "/v3/kv/put", body: put("w/leased", "1", { lease: LEASE_ALICE }), expect: OK },
  { name: "lease grant alice readable", as: "alice", path: "/v3/lease/grant", body: { TTL: 600, ID: LEASE_ALICE_READ }, expect: OK },
  { name: "put alice readable key with own lease", as: "alice", path: "/v3/kv/put", body: put("m/leased", "1", { lease: LEASE_ALICE_READ }), expect: OK },
  // etcd 3.4.23 checks no time-to-live; cairn wants a user who may read every key on the lease.
  { name: "lease timetolive alice own lease readable key", as: "alice", path: "/v3/lease/timetolive", body: { ID: LEASE_ALICE_READ, keys: true }, expect: OK, mask: ["TTL"] },
  { name: "lease revoke alice readable lease", as: "alice", path: "/v3/lease/revoke", body: { ID: LEASE_ALICE_READ }, expect: OK },
  { name: "lease timetolive alice own lease keys", as: "alice", path: "/v3/lease/timetolive", body: { ID: LEASE_ALICE, keys: true }, expect: OK, mask: ["TTL"], cairn: { expect: DENIED } },
  { name: "lease timetolive alice own lease without keys", as: "alice", path: "/v3/lease/timetolive", body: { ID: LEASE_ALICE }, expect: OK, mask: ["TTL"], cairn: { expect: DENIED } },
  { name: "lease timetolive alice root's lease keys", as: "alice", path: "/v3/lease/timetolive", body: { ID: LEASE_SECRET, keys: true }, expect: OK, mask: ["TTL"], cairn: { expect: DENIED } },
  { name: "lease timetolive anonymous", as: "anon", path: "/v3/lease/timetolive", body: { ID: LEASE_SECRET, keys: true }, expect: OK, mask: ["TTL"], cairn: { expect: EMPTY } },
  { name: "lease leases alice", as: "alice", path: "/v3/lease/leases", body: {}, expect: OK },
  // After the time-to-live steps: etcd 3.4 lists a lease's keys in no set order.
  { name: "put root with root's lease", as: "root", path: "/v3/kv/put", body: put("w/l", "1", { lease: LEASE_SECRET }), expect: OK },
  { name: "lease revoke alice root's lease", as: "alice", path: "/v3/lease/revoke", body: { ID: LEASE_SECRET }, expect: DENIED },
  { name: "lease revoke bob alice's lease", as: "bob", path: "/v3/lease/revoke", body: { ID: LEASE_ALICE }, expect: DENIED },
  { name: "lease revoke alice own lease", as: "alice", path: "/v3/lease/revoke", body: { ID: LEASE_ALICE }, expect: OK },
  { name: "lease revoke alice unknown lease", as: "alice", path: "/v3/lease/revoke", body: { ID: "5" }, expect: "etcdserver: requested lease not found" },
  { name: "range root w/ after revoke", as: "root", path: "/v3/kv/range", body: range("w/", "w0"), expect: OK },

  // Compaction.
  // etcd 3.4 checks no permission for compaction: anyone, even without a token, may compact.
  { name: "compaction anonymous", as: "anon", path: "/v3/kv/compaction", body: { revision: "3" }, expect: OK },
  { name: "compaction bob", as: "bob", path: "/v3/kv/compaction", body: { revision: "4" }, expect: OK },
  { name: "compaction garbage token", as: "garbage", path: "/v3/kv/compaction", body: { revision: "5" }, expect: INVALID },
  { name: "compaction root", as: "root", path: "/v3/kv/compaction", body: { revision: "6" }, expect: OK },

  // Maintenance and members.
  { name: "status alice", as: "alice", path: "/v3/maintenance/status", body: {}, expect: OK, mask: STATUS_FIELDS },
  { name: "status anonymous", as: "anon", path: "/v3/maintenance/status", body: {}, expect: OK, mask: STATUS_FIELDS },
  // Hash, defragment (and snapshot) need root: etcd 3.4 answers with the auth store's own error.
  { name: "hash alice", as: "alice", path: "/v3/maintenance/hash", body: {}, expect: ADMIN_DENIED, mask: ["hash"] },
  { name: "hash anonymous", as: "anon", path: "/v3/maintenance/hash", body: {}, expect: "auth: user name is empty", mask: ["hash"] },
  { name: "hash root", as: "root", path: "/v3/maintenance/hash", body: {}, expect: OK, mask: ["hash"] },
  { name: "defragment alice", as: "alice", path: "/v3/maintenance/defragment", body: {}, expect: ADMIN_DENIED },
  { name: "snapshot alice", as: "alice", path: "/v3/maintenance/snapshot", body: {}, expect: ADMIN_DENIED, stream: true },
  { name: "defragment root", as: "root", path: "/v3/maintenance/defragment", body: {}, expect: OK },
  // Alarms and leader transfer are not checked by etcd 3.4.
  { name: "alarm list alice", as: "alice", path: "/v3/maintenance/alarm", body: { action: "GET" }, expect: OK },
  { name: "alarm list anonymous", as: "anon", path: "/v3/maintenance/alarm", body: { action: "GET" }, expect: OK },
  { name: "alarm list root", as: "root", path: "/v3/maintenance/alarm", body: { action: "GET" }, expect: OK },
  { name: "alarm deactivate alice", as: "alice", path: "/v3/maintenance/alarm", body: { action: "DEACTIVATE", alarm: "NOSPACE" }, expect: OK },
  { name: "move leader alice", as: "alice", path: "/v3/maintenance/transfer-leadership", body: { targetID: "1" }, expect: "etcdserver: bad leader transferee" },
  { name: "member list alice", as: "alice", path: "/v3/cluster/member/list", body: {}, expect: OK, mask: MEMBER_FIELDS },
  { name: "member list anonymous", as: "anon", path: "/v3/cluster/member/list", body: {}, expect: OK, mask: MEMBER_FIELDS },
  { name: "member remove alice", as: "alice", path: "/v3/cluster/member/remove", body: { ID: "1" }, expect: DENIED },
  { name: "member remove root", as: "root", path: "/v3/cluster/member/remove", body: { ID: "1" }, expect: "etcdserver: member not found" },
  { name: "member update alice", as: "alice", path: "/v3/cluster/member/update", body: { ID: "1", peerURLs: ["http://127.0.0.1:1"] }, expect: DENIED },

  // Auth administration as a non-root user.
  { name: "user list alice", as: "alice", path: "/v3/auth/user/list", body: {}, expect: DENIED },
  { name: "role list alice", as: "alice", path: "/v3/auth/role/list", body: {}, expect: DENIED },
  { name: "user get alice self", as: "alice", path: "/v3/auth/user/get", body: { name: "alice" }, expect: OK },
  { name: "user get alice bob", as: "alice", path: "/v3/auth/user/get", body: { name: "bob" }, expect: DENIED },
  { name: "role get alice own role", as: "alice", path: "/v3/auth/role/get", body: { role: "rw" }, expect: OK },
  { name: "role get alice root role", as: "alice", path: "/v3/auth/role/get", body: { role: "root" }, expect: DENIED },
  { name: "role get bob alice's role", as: "bob", path: "/v3/auth/role/get", body: { role: "rw" }, expect: DENIED },
  { name: "user add alice", as: "alice", path: "/v3/auth/user/add", body: { name: "eve", password: "x" }, expect: DENIED },
  { name: "user grant alice root", as: "alice", path: "/v3/auth/user/grant", body: { user: "alice", role: "root" }, expect: DENIED },
  { name: "role grant alice", as: "alice", path: "/v3/auth/role/grant", body: { name: "reader", perm: perm("READWRITE", "\0", "\0") }, expect: DENIED },
  { name: "changepw alice self", as: "alice", path: "/v3/auth/user/changepw", body: { name: "alice", password: "x" }, expect: DENIED },
  { name: "disable alice", as: "alice", path: "/v3/auth/disable", body: {}, expect: DENIED },
  { name: "enable alice", as: "alice", path: "/v3/auth/enable", body: {}, expect: DENIED },
  { name: "user list anonymous", as: "anon", path: "/v3/auth/user/list", body: {}, expect: EMPTY },
  { name: "user list root", as: "root", path: "/v3/auth/user/list", body: {}, expect: OK },

  // Lock and election keys.
  { name: "lease grant for lock", as: "alice", path: "/v3/lease/grant", body: { TTL: 600, ID: LEASE_LOCK }, expect: OK },
  { name: "lock alice READWRITE name", as: "alice", path: "/v3/lock/lock", body: { name: b64("m/lock"), lease: LEASE_LOCK }, expect: OK },
  { name: "unlock alice", as: "alice", path: "/v3/lock/unlock", body: { key: b64("m/lock/3000") }, expect: OK },
  { name: "lock alice no grant", as: "alice", path: "/v3/lock/lock", body: { name: b64("secret/lock"), lease: LEASE_LOCK }, expect: DENIED },
  { name: "lock alice WRITE-only name", as: "alice", path: "/v3/lock/lock", body: { name: b64("w/lock"), lease: LEASE_LOCK }, expect: DENIED },
  { name: "lock anonymous", as: "anon", path: "/v3/lock/lock", body: { name: b64("m/lock"), lease: LEASE_LOCK }, expect: EMPTY },
  { name: "campaign alice READWRITE name", as: "alice", path: "/v3/election/campaign", body: { name: b64("m/elect"), lease: LEASE_LOCK, value: b64("me") }, expect: OK },
  { name: "leader alice", as: "alice", path: "/v3/election/leader", body: { name: b64("m/elect") }, expect: OK },
  { name: "leader bob", as: "bob", path: "/v3/election/leader", body: { name: b64("m/elect") }, expect: DENIED },
  { name: "campaign alice no grant", as: "alice", path: "/v3/election/campaign", body: { name: b64("secret/elect"), lease: LEASE_LOCK, value: b64("me") }, expect: DENIED },
  { name: "resign alice", as: "alice", path: "/v3/election/resign", body: { leader: { name: b64("m/elect"), key: b64("m/elect/3000"), rev: "0", lease: LEASE_LOCK } }, expect: OK },

  // Tokens of a deleted user, and after a password change.
  { name: "put carol before delete", as: "carol", path: "/v3/kv/put", body: put("w/c", "1"), expect: OK },
  { name: "delete carol", as: "root", path: "/v3/auth/user/delete", body: { name: "carol" }, expect: OK },
  { name: "put carol after delete", as: "carol", path: "/v3/kv/put", body: put("w/c", "2"), expect: INVALID },
  { name: "authenticate carol after delete", as: "anon", path: "/v3/auth/authenticate", body: { name: "carol", password: "pw-c" }, expect: AUTH_FAILED },
  { name: "changepw bob", as: "root", path: "/v3/auth/user/changepw", body: { name: "bob", password: "pw-b2" }, expect: OK },
  { name: "range bob after changepw", as: "bob", path: "/v3/kv/range", body: range("r/key"), expect: INVALID },
  { name: "authenticate bob old password", as: "anon", path: "/v3/auth/authenticate", body: { name: "bob", password: "pw-b" }, expect: AUTH_FAILED },
  { name: "authenticate bob new password", as: "anon", path: "/v3/auth/authenticate", body: { name: "bob", password: "pw-b2" }, expect: OK, save: "bob" },
  { name: "range bob new token", as: "bob", path: "/v3/kv/range", body: range("r/key"), expect: OK },

  // A revoked permission, a revoked role, a deleted role: the same token, new answers.
  { name: "revoke reader r/key", as: "root", path: "/v3/auth/role/revoke", body: { role: "reader", key: b64("r/key") }, expect: OK },
  { name: "range alice after revoke", as: "alice", path: "/v3/kv/range", body: range("r/key"), expect: DENIED },
  { name: "range bob after revoke", as: "bob", path: "/v3/kv/range", body: range("r/key"), expect: DENIED },
  { name: "revoke merge [o/b, o/e)", as: "root", path: "/v3/auth/role/revoke", body: { role: "merge", ...range("o/b", "o/e") }, expect: OK },
  { name: "range alice merged after revoke", as: "alice", path: "/v3/kv/range", body: range("o/a", "o/g"), expect: DENIED },
  { name: "range alice [o/a, o/c) after revoke", as: "alice", path: "/v3/kv/range", body: range("o/a", "o/c"), expect: OK },
  { name: "revoke alice rw", as: "root", path: "/v3/auth/user/revoke", body: { name: "alice", role: "rw" }, expect: OK },
  { name: "range alice after role revoke", as: "alice", path: "/v3/kv/range", body: range("m/a", "m/m"), expect: DENIED },
  { name: "delete role writer", as: "root", path: "/v3/auth/role/delete", body: { role: "writer" }, expect: OK },
  { name: "put alice after role delete", as: "alice", path: "/v3/kv/put", body: put("w/z", "1"), expect: DENIED },
  { name: "grant reader r/key again", as: "root", path: "/v3/auth/role/grant", body: { name: "reader", perm: perm("READ", "r/key") }, expect: OK },
  { name: "range alice after grant again", as: "alice", path: "/v3/kv/range", body: range("r/key"), expect: OK },

  // Disabled: requests flow again, and a token is no longer needed.
  { name: "disable root", as: "root", path: "/v3/auth/disable", body: {}, expect: OK },
  { name: "range anonymous after disable", as: "anon", path: "/v3/kv/range", body: range("secret/x"), expect: OK },
  { name: "put anonymous after disable", as: "anon", path: "/v3/kv/put", body: put("secret/x", "free"), expect: OK },
  // A token sent while auth is off is still looked up, and none is known any more.
  { name: "range alice token after disable", as: "alice", path: "/v3/kv/range", body: range("secret/x"), expect: INVALID },
  { name: "range garbage token after disable", as: "garbage", path: "/v3/kv/range", body: range("secret/x"), expect: INVALID },
  { name: "user list anonymous after disable", as: "anon", path: "/v3/auth/user/list", body: {}, expect: OK },
  { name: "authenticate after disable", as: "anon", path: "/v3/auth/authenticate", body: { name: "root", password: "rootpw" }, expect: "etcdserver: authentication is not enabled" },
];

// ---------------------------------------------------------------------------
// Running the JSON sequence

/** A step's answer as compared. */
interface Answer {
  step: string;
  status: number;
  /** Body text with the masks applied (for a watch: its first message). */
  body: string;
}

/** Masks what legitimately differs between two servers in `text`, plus `fields`. */
function maskText(text: string, fields: string[] = []): string {
  let out = text
    .replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"*"')
    .replace(/"token":"[A-Za-z]{16}\.\d+"/g, '"token":"<token>"')
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:*");
  for (const f of fields) {
    out = out.replace(new RegExp(`"${f}":(\\[[^\\]]*\\]|"[^"]*"|\\d+)`, "g"), `"${f}":"*"`);
  }
  return out;
}

/** Milliseconds to wait for a stream's first message. */
const STREAM_FIRST_MESSAGE_MS = 5000;

/** The first line of a streaming response to `body` (the stream is then closed). */
async function firstStreamMessage(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<Answer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), STREAM_FIRST_MESSAGE_MS);
  try {
    const res = await fetch(url, { method: "POST", headers, body, signal: abort.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    try {
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
    } catch {
      text += "<no message in time>";
    }
    return { step: "", status: res.status, body: text.split("\n")[0] };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** The answers of one run of a sequence. */
interface Run {
  /** The answer to each step, in order. */
  answers: Answer[];
  /** The answers to the sync requests of the steps' deviations (cairn's run only), in order. */
  syncs: Answer[];
}

/** Sends one JSON request with `token` (if any); the answer, unmasked. */
async function requestJson(
  server: ServerProcess,
  step: Pick<JsonStep, "name" | "path" | "body" | "stream" | "scheme">,
  token: string | undefined,
): Promise<Answer> {
  const headers: Record<string, string> = token === undefined
    ? {}
    : { Authorization: `${step.scheme ?? ""}${token}` };
  const text = JSON.stringify(step.body);
  try {
    if (step.stream) {
      const first = await firstStreamMessage(`${server.url}${step.path}`, headers, text);
      return { ...first, step: step.name };
    }
    const res = await fetch(`${server.url}${step.path}`, { method: "POST", headers, body: text });
    return { step: step.name, status: res.status, body: await res.text() };
  } catch (err) {
    // A dropped connection is an answer too (status 0), so the sequence goes on.
    return { step: step.name, status: 0, body: `connection failed: ${err}` };
  }
}

/**
 * Runs the JSON sequence against `server`; with `isCairn`, each step's
 * deviation sync request follows the step.
 */
async function runJson(server: ServerProcess, steps: JsonStep[], isCairn: boolean): Promise<Run> {
  const tokens = new Map<string, string>([["garbage", GARBAGE_TOKEN]]);
  const run: Run = { answers: [], syncs: [] };
  for (const step of steps) {
    const token = tokens.get(step.as);
    assert(step.as === "anon" || token !== undefined, `${step.name}: no token for ${step.as}`);
    const answer = await requestJson(server, step, token);
    if (step.save !== undefined && answer.status === 200) {
      tokens.set(step.save, (JSON.parse(answer.body) as { token: string }).token);
    }
    run.answers.push({ ...answer, body: maskText(answer.body, step.mask) });
    const sync = step.cairn?.sync;
    if (isCairn && sync !== undefined) {
      const root = tokens.get("root");
      assert(root !== undefined, `${step.name}: sync before root authenticated`);
      run.syncs.push(await requestJson(server, { name: `${step.name} (sync)`, ...sync }, root));
    }
  }
  return run;
}

/** What an answer says, in the terms of {@linkcode JsonStep.expect}. */
function outcome(answer: Answer, stream: boolean): string {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return `unparsable: ${answer.body}`;
  }
  if (stream) {
    const result = (parsed.result ?? {}) as { canceled?: boolean; cancel_reason?: string };
    // A stream's error comes as {"error":{grpc_code, http_code, message, http_status}}.
    const error = parsed.error as { message?: string } | undefined;
    if (error !== undefined) return error.message ?? JSON.stringify(error);
    return result.canceled ? result.cancel_reason ?? "canceled" : OK;
  }
  if (answer.status === 200 && parsed.error === undefined) return OK;
  return String(parsed.error ?? parsed.message);
}

// ---------------------------------------------------------------------------
// The gRPC sequence

/** One gRPC call of the sequence. */
interface GrpcStep {
  name: string;
  as: Who;
  /** e.g. `/etcdserverpb.KV/Range`; `/etcdserverpb.Watch/Watch` opens a stream, reads one message. */
  method: string;
  req: Msg;
  /** etcd 3.4's answer: {@linkcode OK} or the error's details (for a watch: the cancel reason). */
  expect: string;
  /** Save the answer's `token` under this name. */
  save?: string;
  /** Field names whose values are masked in this step's answer. */
  mask?: string[];
  /** The metadata key of the token: `token`, or `authorization`, which etcd also reads. */
  metadata?: "token" | "authorization";
  /** Where cairn deliberately answers otherwise than etcd 3.4.23. */
  cairn?: Deviation<{ method: string; req: Msg }>;
}

const KV = "/etcdserverpb.KV";
const AUTH = "/etcdserverpb.Auth";
const WATCH = "/etcdserverpb.Watch/Watch";
const bytes = (s: string) => Buffer.from(s);

/** The gRPC sequence; it starts with auth disabled, and root and its role present. */
// deno-fmt-ignore: one step a line reads as a table
const GRPC_STEPS: GrpcStep[] = [
  { name: "add gina", as: "anon", method: `${AUTH}/UserAdd`, req: { name: "gina", password: "pw-g" }, expect: OK },
  { name: "add role g", as: "anon", method: `${AUTH}/RoleAdd`, req: { name: "g" }, expect: OK },
  { name: "g: READWRITE prefix g/", as: "anon", method: `${AUTH}/RoleGrantPermission`, req: { name: "g", perm: { permType: "READWRITE", key: bytes("g/"), range_end: bytes("g0") } }, expect: OK },
  { name: "g: READ h", as: "anon", method: `${AUTH}/RoleGrantPermission`, req: { name: "g", perm: { permType: "READ", key: bytes("h") } }, expect: OK },
  { name: "grant gina g", as: "anon", method: `${AUTH}/UserGrantRole`, req: { user: "gina", role: "g" }, expect: OK },
  { name: "seed h", as: "anon", method: `${KV}/Put`, req: { key: bytes("h"), value: bytes("1") }, expect: OK },
  { name: "enable", as: "anon", method: `${AUTH}/AuthEnable`, req: {}, expect: OK },
  { name: "authenticate wrong password", as: "anon", method: `${AUTH}/Authenticate`, req: { name: "gina", password: "x" }, expect: AUTH_FAILED },
  { name: "authenticate root", as: "anon", method: `${AUTH}/Authenticate`, req: { name: "root", password: "rootpw" }, expect: OK, save: "root" },
  { name: "authenticate gina", as: "anon", method: `${AUTH}/Authenticate`, req: { name: "gina", password: "pw-g" }, expect: OK, save: "gina" },
  { name: "range anonymous", as: "anon", method: `${KV}/Range`, req: { key: bytes("h") }, expect: EMPTY },
  { name: "range garbage token", as: "garbage", method: `${KV}/Range`, req: { key: bytes("h") }, expect: INVALID },
  { name: "range gina READ key", as: "gina", method: `${KV}/Range`, req: { key: bytes("h") }, expect: OK },
  { name: "range gina token in authorization metadata", as: "gina", metadata: "authorization", method: `${KV}/Range`, req: { key: bytes("h") }, expect: OK },
  { name: "range garbage in authorization metadata", as: "garbage", metadata: "authorization", method: `${KV}/Range`, req: { key: bytes("h") }, expect: INVALID },
  { name: "range gina prefix", as: "gina", method: `${KV}/Range`, req: { key: bytes("g/"), range_end: bytes("g0") }, expect: OK },
  { name: "range gina straddling", as: "gina", method: `${KV}/Range`, req: { key: bytes("g/"), range_end: bytes("h") }, expect: DENIED },
  { name: "range gina no grant", as: "gina", method: `${KV}/Range`, req: { key: bytes("secret/x") }, expect: DENIED },
  { name: "put gina prefix", as: "gina", method: `${KV}/Put`, req: { key: bytes("g/1"), value: bytes("a") }, expect: OK },
  { name: "put gina prefix prev_kv", as: "gina", method: `${KV}/Put`, req: { key: bytes("g/1"), value: bytes("b"), prev_kv: true }, expect: OK },
  { name: "put gina READ-only key", as: "gina", method: `${KV}/Put`, req: { key: bytes("h"), value: bytes("x") }, expect: DENIED },
  { name: "put anonymous", as: "anon", method: `${KV}/Put`, req: { key: bytes("g/1"), value: bytes("x") }, expect: EMPTY },
  { name: "delete gina READ-only key", as: "gina", method: `${KV}/DeleteRange`, req: { key: bytes("h") }, expect: DENIED },
  {
    name: "txn gina allowed",
    as: "gina",
    method: `${KV}/Txn`,
    req: {
      compare: [{ key: bytes("h"), target: "VERSION", result: "GREATER", version: "0" }],
      success: [{ request_put: { key: bytes("g/2"), value: bytes("t") } }],
    },
    expect: OK,
  },
  {
    name: "txn gina compare on unreadable key",
    as: "gina",
    method: `${KV}/Txn`,
    req: {
      compare: [{ key: bytes("secret/x"), target: "VERSION", result: "GREATER", version: "0" }],
      success: [{ request_put: { key: bytes("g/2"), value: bytes("t") } }],
    },
    expect: DENIED,
  },
  {
    name: "txn gina forbidden failure op",
    as: "gina",
    method: `${KV}/Txn`,
    req: {
      success: [{ request_range: { key: bytes("g/2") } }],
      failure: [{ request_delete_range: { key: bytes("h") } }],
    },
    expect: DENIED,
  },
  {
    name: "txn gina nested forbidden put",
    as: "gina",
    method: `${KV}/Txn`,
    req: {
      success: [{
        request_txn: { failure: [{ request_put: { key: bytes("secret/x"), value: bytes("p") } }] },
      }],
    },
    expect: OK,
    // Only the nested txn's untaken branch holds the put: etcd writes nothing.
    cairn: { expect: DENIED },
  },
  { name: "watch gina prefix", as: "gina", method: WATCH, req: { create_request: { key: bytes("g/"), range_end: bytes("g0") } }, expect: OK },
  { name: "watch gina no grant", as: "gina", method: WATCH, req: { create_request: { key: bytes("secret/x") } }, expect: WATCH_DENIED },
  { name: "watch gina straddling", as: "gina", method: WATCH, req: { create_request: { key: bytes("g/"), range_end: bytes("h0") } }, expect: WATCH_DENIED },
  { name: "watch anonymous", as: "anon", method: WATCH, req: { create_request: { key: bytes("h") } }, expect: WATCH_EMPTY },
  { name: "user list gina", as: "gina", method: `${AUTH}/UserList`, req: {}, expect: DENIED },
  { name: "user get gina self", as: "gina", method: `${AUTH}/UserGet`, req: { name: "gina" }, expect: OK },
  { name: "role get gina own role", as: "gina", method: `${AUTH}/RoleGet`, req: { role: "g" }, expect: OK },
  { name: "status gina", as: "gina", method: "/etcdserverpb.Maintenance/Status", req: {}, expect: OK, mask: STATUS_FIELDS },
  { name: "hash gina", as: "gina", method: "/etcdserverpb.Maintenance/Hash", req: {}, expect: ADMIN_DENIED },
  { name: "alarm list gina", as: "gina", method: "/etcdserverpb.Maintenance/Alarm", req: { action: "GET" }, expect: OK },
  { name: "member list gina", as: "gina", method: "/etcdserverpb.Cluster/MemberList", req: {}, expect: OK, mask: MEMBER_FIELDS },
  { name: "member remove gina", as: "gina", method: "/etcdserverpb.Cluster/MemberRemove", req: { ID: "1" }, expect: DENIED },
  { name: "lease grant gina", as: "gina", method: "/etcdserverpb.Lease/LeaseGrant", req: { TTL: "600", ID: "16384" }, expect: OK },
  { name: "put gina with lease", as: "gina", method: `${KV}/Put`, req: { key: bytes("g/l"), value: bytes("1"), lease: "16384" }, expect: OK },
  { name: "lease timetolive gina readable key", as: "gina", method: "/etcdserverpb.Lease/LeaseTimeToLive", req: { ID: "16384", keys: true }, expect: OK, mask: ["TTL"] },
  { name: "lease timetolive anonymous", as: "anon", method: "/etcdserverpb.Lease/LeaseTimeToLive", req: { ID: "16384", keys: true }, expect: OK, mask: ["TTL"], cairn: { expect: EMPTY } },
  { name: "lease revoke anonymous", as: "anon", method: "/etcdserverpb.Lease/LeaseRevoke", req: { ID: "16384" }, expect: EMPTY },
  { name: "lease revoke gina", as: "gina", method: "/etcdserverpb.Lease/LeaseRevoke", req: { ID: "16384" }, expect: OK },
  { name: "defragment gina", as: "gina", method: "/etcdserverpb.Maintenance/Defragment", req: {}, expect: ADMIN_DENIED },
  { name: "compact gina", as: "gina", method: `${KV}/Compact`, req: { revision: "7" }, expect: OK },
  { name: "disable gina", as: "gina", method: `${AUTH}/AuthDisable`, req: {}, expect: DENIED },
  { name: "disable root", as: "root", method: `${AUTH}/AuthDisable`, req: {}, expect: OK },
  { name: "range anonymous after disable", as: "anon", method: `${KV}/Range`, req: { key: bytes("secret/x") }, expect: OK },
];

/** `m` as JSON, bytes as base64, with the header's cluster/member IDs and term masked. */
function showMsg(m: unknown, fields?: string[]): string {
  return maskText(
    JSON.stringify(m, (_k, v) => {
      if (v !== null && typeof v === "object" && v.type === "Buffer" && Array.isArray(v.data)) {
        return Buffer.from(v.data).toString("base64");
      }
      return v;
    }),
    fields,
  );
}

/** Time to wait for a gRPC watch's first message, in ms. */
const GRPC_WATCH_FIRST_MESSAGE_MS = 5000;

/**
 * Makes one gRPC call with `md` (a watch: opens the stream, reads one
 * message); the answer, with `step.mask` applied, and the decoded response
 * of a unary call that succeeded.
 */
async function callGrpc(
  client: TestClient,
  step: Pick<GrpcStep, "name" | "method" | "req" | "mask">,
  md: grpc.Metadata,
): Promise<{ answer: Answer; res?: Msg }> {
  if (step.method === WATCH) {
    const stream = client.bidi(WATCH, md);
    try {
      stream.write(step.req);
      const first = await stream.next(GRPC_WATCH_FIRST_MESSAGE_MS).catch((e) => ({
        timeout: `${e}`,
      }));
      const error = stream.error === undefined
        ? undefined
        : { code: stream.error.code, details: stream.error.details };
      const body = showMsg(first ?? error ?? { ended: "no message" });
      return { answer: { step: step.name, status: error?.code ?? 0, body } };
    } finally {
      stream.cancel();
    }
  }
  try {
    const res = await client.unary(step.method, step.req, md);
    return { answer: { step: step.name, status: 0, body: showMsg(res, step.mask) }, res };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { answer: { step: step.name, status: e.code, body: showMsg({ details: e.details }) } };
  }
}

/**
 * Runs the gRPC sequence against `server`; with `isCairn`, each step's
 * deviation sync call follows the step.
 */
async function runGrpc(server: ServerProcess, steps: GrpcStep[], isCairn: boolean): Promise<Run> {
  const client = new TestClient(server.endpoint);
  const tokens = new Map<string, string>([["garbage", GARBAGE_TOKEN]]);
  const run: Run = { answers: [], syncs: [] };
  try {
    for (const step of steps) {
      const md = new grpc.Metadata();
      const token = tokens.get(step.as);
      assert(step.as === "anon" || token !== undefined, `${step.name}: no token for ${step.as}`);
      if (token !== undefined) md.set(step.metadata ?? "token", token);
      const { answer, res } = await callGrpc(client, step, md);
      if (step.save !== undefined && res !== undefined) tokens.set(step.save, res.token);
      run.answers.push(answer);
      const sync = step.cairn?.sync;
      if (isCairn && sync !== undefined) {
        const root = tokens.get("root");
        assert(root !== undefined, `${step.name}: sync before root authenticated`);
        const rootMd = new grpc.Metadata();
        rootMd.set("token", root);
        run.syncs.push(
          (await callGrpc(client, { name: `${step.name} (sync)`, ...sync }, rootMd)).answer,
        );
      }
    }
  } finally {
    client.close();
  }
  return run;
}

/** What a gRPC answer says, in the terms of {@linkcode GrpcStep.expect}. */
function grpcOutcome(answer: Answer): string {
  const parsed = JSON.parse(answer.body) as {
    details?: string;
    canceled?: boolean;
    cancel_reason?: string;
  };
  if (parsed.details !== undefined) return parsed.details;
  if (parsed.canceled) return parsed.cancel_reason ?? "canceled";
  return OK;
}

// ---------------------------------------------------------------------------
// Comparing

/** An error's answer: not HTTP 200, not gRPC OK (a canceled watch is answered with those). */
const isError = (a: Answer) => a.status !== 200 && a.status !== 0;

/**
 * What cairn's answer to each step is compared with: etcd's answer to the
 * step; for a step with a deviation, etcd's answer to the first step without
 * one that etcd refused with the deviation's outcome (an error's answer
 * holds no revision, so it reads the same wherever it is given), or none if
 * etcd refused no step so.
 */
function references<S extends { name: string; cairn?: { expect: string } }>(
  steps: S[],
  etcd: Answer[],
  said: (a: Answer) => string,
): (Answer | undefined)[] {
  return steps.map((s, i) => {
    if (s.cairn === undefined) return etcd[i];
    const expect = s.cairn.expect;
    return etcd.find((e, j) => steps[j].cairn === undefined && isError(e) && said(e) === expect);
  });
}

/**
 * The steps whose cairn answer is not as it should be, each with the answer
 * it was compared with: first those whose outcome differs (HTTP status or
 * gRPC code, or the error or cancel reason; for a step with a deviation, the
 * outcome is the deviation's), then those that differ only in the rest of
 * the body (often a revision moved by an earlier step's write that etcd
 * refused).
 */
function differences<S extends { name: string; cairn?: { expect: string } }>(
  steps: S[],
  etcd: Answer[],
  cairn: Answer[],
  said: (a: Answer) => string,
): string[] {
  const refs = references(steps, etcd, said);
  const outcome: string[] = [];
  const body: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const e = refs[i];
    const c = cairn[i];
    if (e !== undefined && c !== undefined && c.status === e.status && c.body === e.body) continue;
    const expect = s.cairn?.expect;
    const theirs = expect === undefined
      ? "etcd: "
      : `etcd, step "${e?.step ?? `none refused with ${expect}`}":`;
    const shown = `  ${theirs} ${e?.status} ${e?.body.slice(0, 400)}\n  cairn: ${c?.status} ${
      c?.body.slice(0, 400)
    }`;
    const deviation = expect === undefined ? "" : ` (deliberately: ${expect})`;
    if (
      c === undefined || (expect !== undefined && said(c) !== expect) ||
      e === undefined || c.status !== e.status || said(c) !== said(e)
    ) {
      outcome.push(`step "${s.name}"${deviation}: outcome differs\n${shown}`);
    } else {
      body.push(`step "${s.name}"${deviation}: body differs\n${shown}`);
    }
  }
  return [...outcome, ...body];
}

/** The sync requests that did not succeed, each with its answer. */
function failedSyncs(syncs: Answer[], said: (a: Answer) => string): string[] {
  return syncs.flatMap((a) =>
    said(a) === OK ? [] : [`step "${a.step}": failed\n  cairn: ${a.status} ${a.body.slice(0, 400)}`]
  );
}

/** The steps whose etcd answer is not what the step expects. */
function unexpected<S extends { name: string; expect: string }>(
  steps: S[],
  answers: Answer[],
  said: (s: S, a: Answer) => string,
): string[] {
  return steps.flatMap((s, i) => {
    const got = said(s, answers[i]);
    return got === s.expect ? [] : [`step "${s.name}": expected ${s.expect}, etcd said ${got}`];
  });
}

Deno.test({
  name: compatName("compat: auth enforcement answers as etcd 3.4 (JSON gateway and gRPC)"),
  ignore: !HAVE_ETCD,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    const [etcd, cairn] = await Promise.all([
      startEtcd(dirs[0]),
      startCairn(dirs[1], ["--bcrypt-cost", "4"]),
    ]);
    try {
      let etcdJson: Answer[] = [];
      await t.step("JSON sequence: etcd 3.4 answers as each step expects", async () => {
        etcdJson = (await runJson(etcd, JSON_STEPS, false)).answers;
        assertEquals(unexpected(JSON_STEPS, etcdJson, (s, a) => outcome(a, !!s.stream)), []);
      });
      await t.step(
        "JSON sequence: cairn answers each step as etcd 3.4, or as it deviates",
        async () => {
          const run = await runJson(cairn, JSON_STEPS, true);
          const streams = new Set(JSON_STEPS.filter((s) => s.stream).map((s) => s.name));
          const said = (a: Answer) => outcome(a, streams.has(a.step));
          const diffs = differences(JSON_STEPS, etcdJson, run.answers, said);
          const failed = failedSyncs(run.syncs, said);
          const all = [...diffs, ...failed];
          assert(
            all.length === 0,
            `${diffs.length} steps differ, ${failed.length} syncs failed:\n${all.join("\n")}`,
          );
        },
      );
      let etcdGrpc: Answer[] = [];
      await t.step("gRPC sequence: etcd 3.4 answers as each step expects", async () => {
        etcdGrpc = (await runGrpc(etcd, GRPC_STEPS, false)).answers;
        assertEquals(unexpected(GRPC_STEPS, etcdGrpc, (_s, a) => grpcOutcome(a)), []);
      });
      await t.step(
        "gRPC sequence: cairn answers each step as etcd 3.4, or as it deviates",
        async () => {
          const run = await runGrpc(cairn, GRPC_STEPS, true);
          const diffs = differences(GRPC_STEPS, etcdGrpc, run.answers, grpcOutcome);
          const failed = failedSyncs(run.syncs, grpcOutcome);
          const all = [...diffs, ...failed];
          assert(
            all.length === 0,
            `${diffs.length} steps differ, ${failed.length} syncs failed:\n${all.join("\n")}`,
          );
        },
      );
    } finally {
      await Promise.allSettled([etcd.kill(), cairn.kill()]);
      for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
