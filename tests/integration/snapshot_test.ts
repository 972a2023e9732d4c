/**
 * Snapshot save, restore and status on real cairn processes, through `ctl`
 * (run in this process, its output captured): a round trip keeps every key,
 * version, revision, the history and the leases; `--bump-revision
 * --mark-compacted` keeps a resuming watcher from seeing revisions go back;
 * truncated, damaged and foreign files are refused with the target dir left
 * as it was; restoring the same file on three members builds a working
 * three-member cluster.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { runCtl } from "../../cli/ctl.ts";
import { Client } from "../../client/mod.ts";
import { memoryIO } from "../unit/ctl_io.ts";
import { freePort, startCairn, startCairnAt } from "../servers.ts";
import { Cluster, planMembers, postJson, unb64 } from "./cluster_harness.ts";

const dec = new TextDecoder();

/** Run `ctl args` in this process; exit code, stdout and stderr. */
async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const m = memoryIO();
  const code = await runCtl(args, m.io);
  return { code, out: m.out(), err: m.err() };
}

/** `ctl … snapshot save file` against `endpoint`; asserts success. */
async function save(endpoint: string, file: string): Promise<void> {
  const r = await ctl(["--endpoints", endpoint, "snapshot", "save", file]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `Snapshot saved at ${file}\n`);
}

/** Every key with its value and revisions, as `get --prefix ""` shows them. */
async function everything(client: Client, revision = 0) {
  const res = await client.get(new Uint8Array([0]), { fromKey: true, revision });
  return {
    revision: res.header.revision,
    kvs: res.kvs.map((kv) => ({
      key: dec.decode(kv.key),
      value: dec.decode(kv.value),
      create: kv.create_revision,
      mod: kv.mod_revision,
      version: kv.version,
      lease: kv.lease ?? 0n,
    })),
  };
}

/** The names in `dir`. */
async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Every file under `dir` with its SHA-256 (a dir's contents, to see it untouched). */
async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else out[p] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
    }
  };
  await walk(dir);
  return out;
}

Deno.test("snapshot: save and restore keep keys, versions, history and leases", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-rt-" });
  const src = await startCairn(`${dir}/src`);
  let restored: Awaited<ReturnType<typeof startCairn>> | undefined;
  try {
    const client = new Client({ endpoints: [src.url] });
    for (let i = 0; i < 50; i++) await client.put(`k/${i % 20}`, `v${i}`);
    await client.delete("k/3");
    const { ID: lease } = await client.leaseGrant({ TTL: 600 });
    await client.put("leased", "x", { lease });
    const before = await everything(client);
    const older = await everything(client, 30);
    await save(src.endpoint, `${dir}/snap.db`);

    const status = await ctl(["-w", "json", "snapshot", "status", `${dir}/snap.db`]);
    assert.equal(status.code, 0, status.err);
    const s = JSON.parse(status.out);
    assert.equal(s.revision, before.revision);
    assert.equal(s.totalSize, (await Deno.stat(`${dir}/snap.db`)).size - 32);
    // The hash is a function of the records: the same file gives the same one.
    const again = JSON.parse(
      (await ctl(["-w", "json", "snapshot", "status", `${dir}/snap.db`])).out,
    );
    assert.equal(again.hash, s.hash);

    const r = await ctl(["snapshot", "restore", `${dir}/snap.db`, "--data-dir", `${dir}/dst`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "");
    const msgs = r.err.trim().split("\n").map((l) => JSON.parse(l).msg);
    assert.deepEqual(msgs, ["restoring snapshot", "added member", "restored snapshot"]);
    // Only the new data dir appeared beside it: no temporary dir was left.
    assert.deepEqual(await names(dir), ["dst", "snap.db", "src"]);

    restored = await startCairn(`${dir}/dst`);
    const copy = new Client({ endpoints: [restored.url] });
    assert.deepEqual(await everything(copy), before);
    assert.deepEqual(await everything(copy, 30), older);
    const ttl = await copy.leaseTimeToLive({ ID: lease, keys: true });
    assert.equal(ttl.grantedTTL, 600);
    assert.deepEqual(ttl.keys.map((k) => dec.decode(k)), ["leased"]);
    // The restored member goes on from the snapshot's revision.
    const put = await copy.put("after", "restore");
    assert.equal(put.header.revision, before.revision + 1);
  } finally {
    await src.kill();
    await restored?.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("snapshot: --bump-revision with --mark-compacted keeps watchers from going back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-bump-" });
  const url = `http://127.0.0.1:${freePort()}`;
  let server = await startCairnAt(`${dir}/src`, url);
  const abort = new AbortController();
  try {
    const client = new Client({ endpoints: [url] });
    for (let i = 0; i < 10; i++) await client.put(`w/${i}`, `v${i}`);
    await save(server.endpoint, `${dir}/snap.db`);
    const snapRevision = (await client.get("w/", { prefix: true })).header.revision;
    // Written after the backup: the restore loses them.
    for (let i = 10; i < 15; i++) await client.put(`w/${i}`, `v${i}`);

    const seen: number[] = [];
    const watcher = client.watch("w/", { prefix: true, startRevision: 1, signal: abort.signal });
    const watching = (async () => {
      for await (const batch of watcher) {
        for (const ev of batch.events) seen.push(ev.kv.mod_revision);
      }
    })();
    watching.catch(() => {}); // awaited below, once the restored member serves
    const lastRevision = snapRevision + 5;
    for (let i = 0; i < 200 && seen.at(-1) !== lastRevision; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(seen.at(-1), lastRevision);

    // A plain restore would rewind the store below what the watcher saw.
    const plain = JSON.parse(
      (await ctl(["-w", "json", "snapshot", "status", `${dir}/snap.db`])).out,
    );
    assert.ok(plain.revision < lastRevision);

    await server.kill();
    const bump = 100;
    const r = await ctl([
      "snapshot",
      "restore",
      `${dir}/snap.db`,
      "--data-dir",
      `${dir}/dst`,
      "--bump-revision",
      String(bump),
      "--mark-compacted",
    ]);
    assert.equal(r.code, 0, r.err);
    const lines = r.err.trim().split("\n").map((l) => JSON.parse(l));
    const bumped = lines.find((l) => l.msg === "bumping latest revision");
    assert.equal(bumped["latest-revision"], snapRevision);
    assert.equal(bumped["new-latest-revision"], snapRevision + bump);
    server = await startCairnAt(`${dir}/dst`, url);

    // The watcher resumes (same URL) from lastRevision + 1, which the restore
    // compacted: it is told so instead of silently missing events.
    await assert.rejects(watching, /required revision has been compacted/);
    assert.ok(seen.every((rev, i) => i === 0 || rev > seen[i - 1]));

    // It lists again and watches on: every revision it sees is newer.
    const list = await client.get("w/", { prefix: true });
    assert.equal(list.header.revision, snapRevision + bump);
    assert.equal(list.kvs.length, 10);
    assert.ok(list.header.revision > lastRevision);
    await assert.rejects(client.get("w/0", { revision: snapRevision }), /compacted/);
    const next = client.watch("w/", {
      prefix: true,
      startRevision: list.header.revision + 1,
      signal: abort.signal,
    });
    await next.created;
    const put = await client.put("w/new", "x");
    for await (const batch of next) {
      assert.equal(batch.events[0].kv.mod_revision, put.header.revision);
      break;
    }
    assert.ok(put.header.revision > lastRevision);
  } finally {
    abort.abort();
    await server.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("snapshot: truncated, damaged and foreign files are refused, the target untouched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-bad-" });
  const src = await startCairn(`${dir}/src`);
  try {
    const client = new Client({ endpoints: [src.url] });
    for (let i = 0; i < 100; i++) await client.put(`b/${i}`, "x".repeat(500));
    await save(src.endpoint, `${dir}/good.db`);
    const good = await Deno.readFile(`${dir}/good.db`);

    const damaged = good.slice();
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    await Deno.writeFile(`${dir}/damaged.db`, damaged);
    // Cut to a size that still looks like data + hash (512·k + 32), and to one that does not.
    await Deno.writeFile(`${dir}/short.db`, good.subarray(0, good.length - 8192));
    await Deno.writeFile(`${dir}/cut.db`, good.subarray(0, good.length - 1000));
    await Deno.writeFile(`${dir}/junk.db`, crypto.getRandomValues(new Uint8Array(4096)));
    await Deno.writeFile(`${dir}/empty.db`, new Uint8Array());

    const cases: [string, RegExp][] = [
      ["damaged.db", /snapshot hash mismatch: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/],
      ["short.db", /short\.db is truncated: its database needs \d+ bytes, the file holds \d+/],
      ["cut.db", /cut\.db is truncated/],
      ["junk.db", /junk\.db is not a snapshot file/],
      ["empty.db", /empty\.db is not a snapshot file/],
      ["missing.db", /open .*missing\.db: no such file or directory/],
    ];
    // A target that does not exist stays absent.
    for (const [file, expected] of cases) {
      const r = await ctl(["snapshot", "restore", `${dir}/${file}`, "--data-dir", `${dir}/new`]);
      assert.equal(r.code, 1, file);
      assert.match(r.err, expected, file);
      assert.ok(!(await names(dir)).some((n) => n === "new" || n.includes("restore")), file);
    }
    // --skip-hash-check does not let a truncated file through.
    const skip = await ctl([
      "snapshot",
      "restore",
      `${dir}/short.db`,
      "--skip-hash-check",
      "--data-dir",
      `${dir}/new`,
    ]);
    assert.equal(skip.code, 1);
    assert.match(skip.err, /is truncated/);
    // A target that exists is refused before the file is read, and left as it was.
    await Deno.mkdir(`${dir}/old/member`, { recursive: true });
    await Deno.writeTextFile(`${dir}/old/member/keep`, "data");
    const before = await fingerprint(`${dir}/old`);
    for (const file of ["good.db", "damaged.db"]) {
      const r = await ctl(["snapshot", "restore", `${dir}/${file}`, "--data-dir", `${dir}/old`]);
      assert.equal(r.code, 1);
      assert.match(r.err, /Error: data-dir ".*old" exists/);
      assert.deepEqual(await fingerprint(`${dir}/old`), before);
    }
    // status refuses the same files.
    const st = await ctl(["snapshot", "status", `${dir}/damaged.db`]);
    assert.equal(st.code, 1);
    assert.match(st.err, /hash mismatch/);
  } finally {
    await src.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("snapshot: restoring one file on three members builds a three-member cluster", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-cluster-" });
  const src = await startCairn(`${dir}/src`);
  const members = planMembers(dir, 3);
  const token = `restored-${crypto.randomUUID().slice(0, 8)}`;
  const cluster = new Cluster("cairn", members, dir, [], token);
  try {
    const client = new Client({ endpoints: [src.url] });
    for (let i = 0; i < 30; i++) await client.put(`c/${i}`, `v${i}`);
    const before = await everything(client);
    await save(src.endpoint, `${dir}/snap.db`);
    await src.kill();

    const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    for (const m of members) {
      const r = await ctl([
        "snapshot",
        "restore",
        `${dir}/snap.db`,
        "--name",
        m.name,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        token,
        "--initial-advertise-peer-urls",
        m.peerUrl,
        "--data-dir",
        m.dataDir,
      ]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err.split("\n").filter((l) => l.includes('"added member"')).length, 3);
    }
    for (const m of members) cluster.spawn(m);
    await cluster.waitReady();

    const list = await postJson(members[0].clientUrl, "/v3/cluster/member/list", {});
    const listed = (list.members as { name: string }[]).map((m) => m.name).sort();
    assert.deepEqual(listed, ["m0", "m1", "m2"]);
    const clusterIds = new Set<string>();
    for (const m of members) {
      const copy = new Client({ endpoints: [m.clientUrl] });
      const res = await copy.get(new Uint8Array([0]), { fromKey: true, serializable: true });
      clusterIds.add(String(res.header.cluster_id));
      assert.deepEqual(
        res.kvs.map((kv) => [dec.decode(kv.key), dec.decode(kv.value), kv.mod_revision]),
        before.kvs.map((kv) => [kv.key, kv.value, kv.mod]),
        m.name,
      );
    }
    assert.equal(clusterIds.size, 1);
    // A write through one member is read on every other, after the restored revision.
    const put = await postJson(members[2].clientUrl, "/v3/kv/put", {
      key: btoa("c/new"),
      value: btoa("written"),
    });
    const revision = Number((put.header as { revision: string }).revision);
    assert.equal(revision, before.revision + 1);
    for (const m of members) {
      const got = await postJson(m.clientUrl, "/v3/kv/range", { key: btoa("c/new") });
      const kvs = got.kvs as { value: string }[];
      assert.equal(unb64(kvs[0].value), "written", m.name);
    }
  } finally {
    await src.kill();
    await cluster.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("snapshot: the gateway stream is the store, chunked, then its SHA-256", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-gw-" });
  const src = await startCairn(`${dir}/src`);
  try {
    const client = new Client({ endpoints: [src.url] });
    for (let i = 0; i < 200; i++) await client.put(`g/${i}`, "y".repeat(1000));
    const blobs: Uint8Array[] = [];
    const remaining: number[] = [];
    for await (const msg of client.snapshot()) {
      blobs.push(msg.blob);
      remaining.push(msg.remaining_bytes);
    }
    const data = blobs.slice(0, -1);
    const total = data.reduce((n, b) => n + b.length, 0);
    assert.ok(data.length > 2);
    assert.ok(data.slice(0, -1).every((b) => b.length === 32 * 1024));
    // remaining_bytes counts down to 0 over the data; the digest's is 0 too.
    let left = total;
    data.forEach((b, i) => {
      left -= b.length;
      assert.equal(remaining[i], left);
    });
    assert.equal(remaining.at(-1), 0);
    const hash = createHash("sha256");
    for (const b of data) hash.update(b);
    assert.deepEqual(blobs.at(-1), new Uint8Array(hash.digest()));
    // A bad request body gets the unary error answer.
    const bad = await fetch(`${src.url}/v3/maintenance/snapshot`, { method: "POST", body: "x" });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /invalid character 'x' looking for beginning of value/);
    // A client that goes away mid-stream leaves the server serving.
    const ac = new AbortController();
    for await (const _ of client.snapshot(ac.signal)) ac.abort();
    assert.equal((await client.put("g/after", "z")).header.revision, 202);
  } finally {
    await src.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "snapshot: users, roles and auth enabled travel in a snapshot and survive its restore",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cairn-snap-auth-" });
    const src = await startCairn(`${dir}/src`, ["--bcrypt-cost", "4"]);
    let restored: Awaited<ReturnType<typeof startCairn>> | undefined;
    try {
      const ep = ["--endpoints", src.endpoint];
      for (
        const args of [
          ["user", "add", "root:pw"],
          ["user", "grant-role", "root", "root"],
          ["user", "add", "alice:pa"],
          ["role", "add", "reader"],
          ["role", "grant-permission", "reader", "read", "a/", "--prefix"],
          ["user", "grant-role", "alice", "reader"],
          ["auth", "enable"],
          ["--user", "root:pw", "put", "a/1", "v"],
        ]
      ) {
        const r = await ctl([...ep, ...args]);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
      }
      // A snapshot is root's to take once auth is on.
      const denied = await ctl([...ep, "--user", "alice:pa", "snapshot", "save", `${dir}/x.db`]);
      assert.notEqual(denied.code, 0);
      assert.match(denied.err, /auth: permission denied/);
      const saved = await ctl([...ep, "--user", "root:pw", "snapshot", "save", `${dir}/snap.db`]);
      assert.equal(saved.code, 0, saved.err);
      await src.kill();
      const r = await ctl(["snapshot", "restore", `${dir}/snap.db`, "--data-dir", `${dir}/dst`]);
      assert.equal(r.code, 0, r.err);
      restored = await startCairn(`${dir}/dst`, ["--bcrypt-cost", "4"]);
      const rep = ["--endpoints", restored.endpoint];
      const anonymous = await ctl([...rep, "get", "a/1"]);
      assert.notEqual(anonymous.code, 0, "auth is still on");
      assert.match(anonymous.err, /user name is empty/);
      const alice = await ctl([...rep, "--user", "alice:pa", "get", "a/1"]);
      assert.equal(alice.code, 0, alice.err);
      assert.equal(alice.out, "a/1\nv\n");
      const users = await ctl([...rep, "--user", "root:pw", "user", "list"]);
      assert.equal(users.out, "alice\nroot\n");
      const outside = await ctl([...rep, "--user", "alice:pa", "put", "a/1", "w"]);
      assert.match(outside.err, /permission denied/);
    } finally {
      await src.kill().catch(() => {});
      await restored?.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
