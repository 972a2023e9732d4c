/**
 * The gRPC API, differentially: the same calls go to a real etcd 3.4 and to
 * cairn (each a fresh one-member cluster, same sequence, so revisions
 * match), through a gRPC client whose messages protobufjs encodes from the
 * project's .proto files; the decoded answers and errors must be equal once
 * the member-specific header fields are masked. Plus what only cairn can be
 * asked: the JSON gateway on the same port, the snapshot's digest.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { HAVE_ETCD, type ServerProcess, startCairn, startEtcd } from "../servers.ts";
import { encodeRequest, type Msg, TestClient } from "../grpc_client.ts";

const enc = (s: string) => Buffer.from(s);

/**
 * Masks what legitimately differs between two members: their cluster and
 * member IDs (seeded by their URLs, which differ by port) and the Raft term
 * in headers.
 */
function mask(m: unknown): unknown {
  if (Array.isArray(m)) return m.map(mask);
  if (m === null || typeof m !== "object" || Buffer.isBuffer(m)) return m;
  const out: Msg = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === "header") {
      const { cluster_id: _c, member_id: _m, raft_term: _t, ...rest } = v as Msg;
      out[k] = rest;
    } else out[k] = mask(v);
  }
  return out;
}

interface Pair {
  etcd: TestClient;
  cairn: TestClient;
  cairnServer: ServerProcess;
}

/** Both answers of a unary call, masked, must be equal; returns cairn's. */
async function same(p: Pair, path: string, req: Msg, what = path): Promise<Msg> {
  const [e, c] = await Promise.all([
    p.etcd.unary(path, req).then(mask, (err) => ({ error: err.code, details: err.details })),
    p.cairn.unary(path, req).then(mask, (err) => ({ error: err.code, details: err.details })),
  ]);
  assert.deepEqual(c, e, what);
  return c as Msg;
}

/** Both errors of a unary call must be equal; returns cairn's. */
async function sameError(p: Pair, path: string, req: Msg | Buffer, what = path) {
  const [e, c] = await Promise.all([p.etcd.error(path, req), p.cairn.error(path, req)]);
  assert.deepEqual(c, e, what);
  return c;
}

Deno.test({
  name: "gRPC: etcdserverpb, v3lock and v3election answer as etcd 3.4's",
  ignore: !HAVE_ETCD,
  async fn(t) {
    const etcdDir = Deno.makeTempDirSync({ prefix: "grpc-etcd-" });
    const cairnDir = Deno.makeTempDirSync({ prefix: "grpc-cairn-" });
    const [etcdServer, cairnServer] = await Promise.all([
      startEtcd(etcdDir),
      startCairn(cairnDir),
    ]);
    const p: Pair = {
      etcd: new TestClient(etcdServer.endpoint),
      cairn: new TestClient(cairnServer.endpoint),
      cairnServer,
    };
    try {
      await t.step("KV: put, range, txn, delete, compact", async () => {
        await same(p, "/etcdserverpb.KV/Put", { key: enc("a/1"), value: enc("one") });
        await same(p, "/etcdserverpb.KV/Put", { key: enc("a/2"), value: enc("two") });
        await same(p, "/etcdserverpb.KV/Put", {
          key: enc("a/1"),
          value: enc("uno"),
          prev_kv: true,
        });
        await same(p, "/etcdserverpb.KV/Range", { key: enc("a/1") });
        await same(p, "/etcdserverpb.KV/Range", {
          key: enc("a/"),
          range_end: enc("a0"),
          sort_order: "DESCEND",
          sort_target: "MOD",
          limit: 1,
        });
        await same(p, "/etcdserverpb.KV/Range", {
          key: enc("a/"),
          range_end: enc("a0"),
          count_only: true,
        });
        await same(p, "/etcdserverpb.KV/Range", { key: enc("a/1"), revision: 2 });
        await same(p, "/etcdserverpb.KV/Range", { key: enc("missing") });
        const txn = (v: string) => ({
          compare: [{ key: enc("a/1"), target: "VALUE", result: "EQUAL", value: enc(v) }],
          success: [
            { request_put: { key: enc("t"), value: enc("yes") } },
            {
              request_txn: {
                compare: [{ key: enc("a/2"), target: "VERSION", result: "GREATER", version: 0 }],
                success: [{ request_range: { key: enc("a/2") } }],
              },
            },
          ],
          failure: [{ request_delete_range: { key: enc("a/2"), prev_kv: true } }],
        });
        await same(p, "/etcdserverpb.KV/Txn", txn("uno"), "txn success");
        await same(p, "/etcdserverpb.KV/Txn", txn("nope"), "txn failure");
        await same(p, "/etcdserverpb.KV/DeleteRange", {
          key: enc("a/"),
          range_end: enc("a0"),
          prev_kv: true,
        });
        await same(p, "/etcdserverpb.KV/Compact", { revision: 3 });
      });

      await t.step("errors: etcd's codes and messages", async () => {
        const e1 = await sameError(p, "/etcdserverpb.KV/Put", { key: enc(""), value: enc("v") });
        assert.deepEqual(e1, { code: 3, details: "etcdserver: key is not provided" });
        const e2 = await sameError(p, "/etcdserverpb.KV/Range", { key: enc("t"), revision: 2 });
        assert.equal(e2.details, "etcdserver: mvcc: required revision has been compacted");
        assert.equal(e2.code, 11);
        await sameError(p, "/etcdserverpb.KV/Range", { key: enc("t"), revision: 1000 });
        await sameError(p, "/etcdserverpb.KV/Compact", { revision: 1000 });
        const e3 = await sameError(p, "/etcdserverpb.Lease/LeaseRevoke", { ID: 4242 });
        assert.deepEqual(e3, { code: 5, details: "etcdserver: requested lease not found" });
        await sameError(p, "/etcdserverpb.KV/Txn", {
          success: [
            { request_put: { key: enc("d"), value: enc("1") } },
            { request_put: { key: enc("d"), value: enc("2") } },
          ],
        });
        await same(p, "/etcdserverpb.Lease/LeaseGrant", { TTL: 5, ID: -1 });
      });

      await t.step("bad input: malformed protobuf, unknown method, oversized message", async () => {
        // A length-delimited field 1 that claims more bytes than follow.
        const malformed = Buffer.from([0x0a, 0x10, 0x61]);
        const [e, c] = await Promise.all([
          p.etcd.error("/etcdserverpb.KV/Range", malformed),
          p.cairn.error("/etcdserverpb.KV/Range", malformed),
        ]);
        assert.equal(c.code, e.code, "malformed protobuf: same code");
        assert.match(c.details, /^grpc: error unmarshalling request: /);
        // Unimplemented, as any gRPC server answers an unknown method (the
        // message is the gRPC library's own).
        const unknown = await Promise.all([
          p.etcd.error("/etcdserverpb.KV/NoSuchMethod", Buffer.alloc(0)),
          p.cairn.error("/etcdserverpb.KV/NoSuchMethod", Buffer.alloc(0)),
        ]);
        assert.equal(unknown[1].code, unknown[0].code);
        assert.equal(unknown[1].code, 12);
        // Over --max-request-bytes + 512 KiB: gRPC's receive limit.
        const big = { key: enc("big"), value: Buffer.alloc(2 * 1024 * 1024 + 100, 0x61) };
        const e4 = await sameError(p, "/etcdserverpb.KV/Put", big);
        assert.equal(e4.code, 8);
        // Over --max-request-bytes but within gRPC's limit: the proposal limit.
        await sameError(p, "/etcdserverpb.KV/Put", {
          key: enc("big"),
          value: Buffer.alloc(1024 * 1024 + 600 * 1024, 0x61),
        });
        // Both still serve.
        await same(p, "/etcdserverpb.KV/Range", { key: enc("t") });
      });

      await t.step(
        "Lease: grant, attach, time-to-live, list, keep-alive stream, revoke",
        async () => {
          await same(p, "/etcdserverpb.Lease/LeaseGrant", { TTL: 60, ID: 1000 });
          await same(p, "/etcdserverpb.KV/Put", { key: enc("l"), value: enc("v"), lease: 1000 });
          const ttl = await same(
            p,
            "/etcdserverpb.Lease/LeaseTimeToLive",
            { ID: 1000, keys: true },
            "ttl",
          );
          assert.deepEqual(ttl.keys, [enc("l")]);
          await same(p, "/etcdserverpb.Lease/LeaseLeases", {});
          for (const c of [p.etcd, p.cairn]) {
            const s = c.bidi("/etcdserverpb.Lease/LeaseKeepAlive");
            s.write({ ID: 1000 });
            s.write({ ID: 77 });
            const first = await s.next();
            assert.equal(first?.ID, "1000");
            assert.equal(first?.TTL, "60");
            const second = await s.next();
            assert.equal(second?.ID, "77");
            assert.equal(second?.TTL, undefined, "a missing lease renews to TTL 0");
            s.end();
            assert.equal(await s.next(), undefined, "the stream ends after the client's side");
            assert.equal(s.error, undefined);
          }
          await same(p, "/etcdserverpb.Lease/LeaseRevoke", { ID: 1000 });
          await same(p, "/etcdserverpb.KV/Range", { key: enc("l") });
        },
      );

      await t.step("Watch: history replay, live events, cancel, progress", async () => {
        // From a compacted revision (3 was compacted): created, then canceled.
        const compacted = await Promise.all([p.etcd, p.cairn].map(async (c) => {
          const s = c.bidi("/etcdserverpb.Watch/Watch");
          s.write({ create_request: { key: enc("w"), start_revision: 1 } });
          const answers = [await s.next(), await s.next()];
          s.cancel();
          return mask(answers);
        }));
        assert.deepEqual(compacted[1], compacted[0], "watch from a compacted revision");
        assert.equal((compacted[1] as Msg[])[1].compact_revision, "3");
        const streams = await Promise.all([p.etcd, p.cairn].map(async (c) => {
          const s = c.bidi("/etcdserverpb.Watch/Watch");
          s.write({ create_request: { key: enc("w"), start_revision: 4, prev_kv: true } });
          const created = await s.next();
          return { s, created };
        }));
        assert.deepEqual(mask(streams[1].created), mask(streams[0].created), "created");
        await same(p, "/etcdserverpb.KV/Put", { key: enc("w"), value: enc("1") });
        await same(p, "/etcdserverpb.KV/Put", { key: enc("w"), value: enc("2") });
        await same(p, "/etcdserverpb.KV/DeleteRange", { key: enc("w") });
        const events = async (s: (typeof streams)[0]["s"]) => {
          const got: unknown[] = [];
          while (got.length < 3) {
            const r = await s.next();
            assert.ok(r !== undefined, "the watch stream ended early");
            for (const ev of r.events ?? []) got.push(ev);
          }
          return got;
        };
        const [ee, ce] = await Promise.all(streams.map((x) => events(x.s)));
        assert.deepEqual(ce, ee, "events");
        for (const { s } of streams) s.write({ progress_request: {} });
        const progress = await Promise.all(streams.map(({ s }) => s.next()));
        assert.deepEqual(mask(progress[1]), mask(progress[0]), "progress");
        for (const { s } of streams) s.write({ cancel_request: { watch_id: 0 } });
        const canceled = await Promise.all(streams.map(({ s }) => s.next()));
        assert.deepEqual(mask(canceled[1]), mask(canceled[0]), "canceled");
        for (const { s } of streams) s.cancel();
      });

      await t.step("Watch: hasleader metadata on a member with a leader", async () => {
        const md = new grpc.Metadata();
        md.set("hasleader", "true");
        const s = p.cairn.bidi("/etcdserverpb.Watch/Watch", md);
        s.write({ create_request: { key: enc("h") } });
        const created = await s.next();
        assert.equal(created?.created, true);
        s.cancel();
      });

      await t.step("Lock and Election", async () => {
        await same(p, "/etcdserverpb.Lease/LeaseGrant", { TTL: 60, ID: 2000 });
        const locked = await same(p, "/v3lockpb.Lock/Lock", { name: enc("mylock"), lease: 2000 });
        assert.ok(Buffer.from(locked.key).toString().startsWith("mylock/"));
        await same(p, "/v3lockpb.Lock/Unlock", { key: locked.key });
        const won = await same(p, "/v3electionpb.Election/Campaign", {
          name: enc("el"),
          lease: 2000,
          value: enc("first"),
        });
        await same(p, "/v3electionpb.Election/Leader", { name: enc("el") });
        await same(p, "/v3electionpb.Election/Proclaim", {
          leader: won.leader,
          value: enc("second"),
        });
        const observed = await Promise.all([p.etcd, p.cairn].map(async (c) => {
          const s = c.serverStream("/v3electionpb.Election/Observe", { name: enc("el") });
          const first = await s.next();
          s.cancel();
          return mask(first);
        }));
        assert.deepEqual(observed[1], observed[0], "observe");
        await same(p, "/v3electionpb.Election/Resign", { leader: won.leader });
        await sameError(p, "/v3electionpb.Election/Leader", { name: enc("el") });
        await same(p, "/etcdserverpb.Lease/LeaseRevoke", { ID: 2000 });
      });

      await t.step("Cluster and Maintenance", async () => {
        const [e, c] = await Promise.all([
          p.etcd.unary("/etcdserverpb.Cluster/MemberList", {}),
          p.cairn.unary("/etcdserverpb.Cluster/MemberList", {}),
        ]);
        assert.equal(c.members.length, e.members.length);
        assert.deepEqual(Object.keys(c.members[0]).sort(), Object.keys(e.members[0]).sort());
        assert.equal(c.members[0].ID, c.header.member_id, "the member is itself");
        const [es, cs] = await Promise.all([
          p.etcd.unary("/etcdserverpb.Maintenance/Status", {}),
          p.cairn.unary("/etcdserverpb.Maintenance/Status", {}),
        ]);
        assert.deepEqual(Object.keys(cs).sort(), Object.keys(es).sort());
        assert.equal(cs.leader, cs.header.member_id);
        assert.equal(cs.header.revision, es.header.revision);
        await same(p, "/etcdserverpb.Maintenance/Alarm", { action: "GET" });
        // Alarms raised and cleared (memberID 1: the same on both sides).
        const nospace = { action: "ACTIVATE", memberID: 1, alarm: "NOSPACE" };
        assert.deepEqual(
          (await same(p, "/etcdserverpb.Maintenance/Alarm", nospace)).alarms,
          [{ memberID: "1", alarm: "NOSPACE" }],
        );
        await same(p, "/etcdserverpb.KV/Put", { key: enc("a"), value: enc("1") }, "put, NOSPACE");
        await same(p, "/etcdserverpb.Maintenance/Alarm", { action: "GET", alarm: "NOSPACE" });
        await same(p, "/etcdserverpb.Maintenance/Alarm", { ...nospace, action: "DEACTIVATE" });
        await same(p, "/etcdserverpb.Maintenance/Alarm", { ...nospace, action: "DEACTIVATE" });
        await same(p, "/etcdserverpb.Maintenance/Defragment", {});
        const [eh, ch] = await Promise.all([
          p.etcd.unary("/etcdserverpb.Maintenance/Hash", {}),
          p.cairn.unary("/etcdserverpb.Maintenance/Hash", {}),
        ]);
        assert.deepEqual(Object.keys(ch).sort(), Object.keys(eh).sort());
        assert.equal(ch.header.revision, eh.header.revision);
        const e5 = await sameError(p, "/etcdserverpb.Auth/Authenticate", {
          name: "root",
          password: "x",
        });
        assert.equal(e5.details, "etcdserver: authentication is not enabled");
        // Auth management (auth stays off: the later steps run without tokens).
        await same(p, "/etcdserverpb.Auth/RoleAdd", { name: "g" });
        await sameError(p, "/etcdserverpb.Auth/RoleAdd", { name: "g" }, "role add twice");
        await same(p, "/etcdserverpb.Auth/RoleGrantPermission", {
          name: "g",
          perm: { permType: 2, key: enc("g/"), range_end: enc("g0") },
        });
        await same(p, "/etcdserverpb.Auth/RoleGrantPermission", {
          name: "g",
          perm: { key: enc("a") },
        });
        await same(p, "/etcdserverpb.Auth/RoleGet", { role: "g" });
        await same(p, "/etcdserverpb.Auth/UserAdd", { name: "u", password: "p" });
        await same(p, "/etcdserverpb.Auth/UserGrantRole", { user: "u", role: "g" });
        await same(p, "/etcdserverpb.Auth/UserGet", { name: "u" });
        await same(p, "/etcdserverpb.Auth/UserList", {});
        await same(p, "/etcdserverpb.Auth/RoleList", {});
        await same(p, "/etcdserverpb.Auth/RoleRevokePermission", { role: "g", key: enc("a") });
        const e6 = await sameError(p, "/etcdserverpb.Auth/AuthEnable", {});
        assert.equal(e6.details, "etcdserver: root user does not exist");
        await same(p, "/etcdserverpb.Auth/UserDelete", { name: "u" });
        await same(p, "/etcdserverpb.Auth/RoleDelete", { role: "g" });
      });

      await t.step(
        "Maintenance.Snapshot: the copy in 32 KiB messages, then its SHA-256",
        async () => {
          const s = p.cairn.serverStream("/etcdserverpb.Maintenance/Snapshot", {});
          const blobs: Buffer[] = [];
          const remaining: number[] = [];
          for (let m = await s.next(10_000); m !== undefined; m = await s.next(10_000)) {
            blobs.push(Buffer.from(m.blob ?? []));
            remaining.push(Number(m.remaining_bytes ?? 0));
          }
          assert.equal(s.error, undefined);
          assert.ok(blobs.length >= 2);
          const digest = blobs.pop()!;
          const data = Buffer.concat(blobs);
          assert.equal(digest.length, 32);
          assert.deepEqual(digest, createHash("sha256").update(data).digest());
          assert.equal(remaining.at(-2), 0, "the last data message has nothing remaining");
          assert.equal(remaining[0], data.length - blobs[0].length);
          assert.ok(blobs.slice(0, -1).every((b) => b.length === 32 * 1024));
        },
      );

      await t.step("Lock: a waiter whose client cancels its call gives up its place", async () => {
        const c = p.cairn;
        await c.unary("/etcdserverpb.Lease/LeaseGrant", { TTL: 60, ID: 3000 });
        await c.unary("/etcdserverpb.Lease/LeaseGrant", { TTL: 60, ID: 3001 });
        const held = await c.unary("/v3lockpb.Lock/Lock", { name: enc("cl"), lease: 3000 });
        const waiter = c.client.makeUnaryRequest(
          "/v3lockpb.Lock/Lock",
          (b: Buffer) => b,
          (b: Buffer) => b,
          encodeRequest("/v3lockpb.Lock/Lock", { name: enc("cl"), lease: 3001 }),
          () => {},
        );
        const count = async () =>
          Number(
            (await c.unary("/etcdserverpb.KV/Range", {
              key: enc("cl/"),
              range_end: enc("cl0"),
              count_only: true,
            })).count ?? 0,
          );
        for (let i = 0; i < 100 && await count() < 2; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(await count(), 2, "the waiter's key is there");
        waiter.cancel();
        for (let i = 0; i < 100 && await count() > 1; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(await count(), 1, "the canceled waiter's key is gone");
        await c.unary("/v3lockpb.Lock/Unlock", { key: held.key });
        await c.unary("/etcdserverpb.Lease/LeaseRevoke", { ID: 3000 });
        await c.unary("/etcdserverpb.Lease/LeaseRevoke", { ID: 3001 });
      });

      await t.step(
        "Maintenance.HashKV: a revision's hash stays; a new revision changes it",
        async () => {
          const c = p.cairn;
          const first = await c.unary("/etcdserverpb.Maintenance/HashKV", {});
          const rev = Number(first.header.revision);
          assert.equal(first.compact_revision, "3");
          await c.unary("/etcdserverpb.KV/Put", { key: enc("hk"), value: enc("1") });
          const again = await c.unary("/etcdserverpb.Maintenance/HashKV", { revision: rev });
          assert.equal(again.hash, first.hash);
          const now = await c.unary("/etcdserverpb.Maintenance/HashKV", {});
          assert.notEqual(now.hash, first.hash);
          const future = await c.error("/etcdserverpb.Maintenance/HashKV", { revision: rev + 100 });
          assert.equal(future.details, "etcdserver: mvcc: required revision is a future revision");
          const old = await c.error("/etcdserverpb.Maintenance/HashKV", { revision: 2 });
          assert.equal(old.details, "etcdserver: mvcc: required revision has been compacted");
        },
      );

      await t.step(
        "garbage after the HTTP/2 preface, and silent connections, leave the port serving",
        async () => {
          const [host, port] = p.cairnServer.endpoint.split(":");
          for (
            const bytes of [
              "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\xff".repeat(64),
              "PRI * HTTP/2.0\r\n",
              "GARBAGE / HTTP/9.9\r\n\r\n",
              "",
            ]
          ) {
            const conn = await Deno.connect({ hostname: host, port: Number(port) });
            if (bytes.length > 0) await conn.write(new TextEncoder().encode(bytes));
            conn.close();
          }
          const res = await p.cairn.unary("/etcdserverpb.KV/Range", { key: enc("t") });
          assert.equal(Buffer.from(res.kvs[0].value).toString(), "yes");
        },
      );

      await t.step("the JSON gateway on the same port", async () => {
        const res = await fetch(`${p.cairnServer.url}/v3/kv/range`, {
          method: "POST",
          body: JSON.stringify({ key: btoa("t") }),
        });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(atob(body.kvs[0].value), "yes");
      });
    } finally {
      p.etcd.close();
      p.cairn.close();
      await Promise.all([etcdServer.kill(), cairnServer.kill()]);
      Deno.removeSync(etcdDir, { recursive: true });
      Deno.removeSync(cairnDir, { recursive: true });
    }
  },
});
