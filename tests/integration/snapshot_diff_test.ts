/**
 * Snapshot commands and the snapshot stream against real etcd 3.4 and
 * cairn, side by side: the gateway's `/v3/maintenance/snapshot` framing and
 * errors; etcdctl 3.4's `snapshot save` output against either server; cairn
 * ctl's `snapshot save` output against etcdctl's, and its file (from etcd)
 * accepted by etcdctl's own status and restore, and by ctl's restore (a
 * cairn member with etcd's keys); `snapshot status` output shapes, and of
 * an etcd file the very output of etcdctl. Skipped without the etcd and
 * etcdctl binaries.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { runCtl } from "../../cli/ctl.ts";
import { memoryIO } from "../unit/ctl_io.ts";
import { HAVE_ETCD, runs, startCairn } from "../servers.ts";
import { etcdctl, type Server, startServer } from "./etcdctl_diff.ts";

const HAVE_ETCDCTL = HAVE_ETCD && (await runs("etcdctl", ["version"]));
const dec = new TextDecoder();

/** Both servers, with a few keys written through etcdctl. */
async function withServers(fn: (etcd: Server, cairn: Server) => Promise<void>): Promise<void> {
  const etcd = await startServer("etcd");
  let cairn: Server | undefined;
  try {
    cairn = await startServer("cairn");
    for (const s of [etcd, cairn]) {
      for (let i = 0; i < 20; i++) {
        const r = await etcdctl(["--endpoints", s.endpoint, "put", `k${i}`, "v".repeat(2000)]);
        assert.equal(r.code, 0, r.stderr);
      }
    }
    await fn(etcd, cairn);
  } finally {
    await etcd.close();
    await cairn?.close();
  }
}

/** A zap log line's shape: level, message and field names, `ts` and Go's `caller` left out. */
function shape(stderr: string): string[] {
  return stderr.trim().split("\n").map((line) => {
    const o = JSON.parse(line);
    const keys = Object.keys(o).filter((k) => k !== "ts" && k !== "caller").sort();
    return `${o.level} ${o.msg} [${keys.join(",")}]`;
  });
}

/** cairn's ctl in this process. */
async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const m = memoryIO();
  const code = await runCtl(args, m.io);
  return { code, out: m.out(), err: m.err() };
}

/** The snapshot stream of a server's gateway: status, headers, lines. */
async function gatewayStream(endpoint: string, body: string) {
  const res = await fetch(`http://${endpoint}/v3/maintenance/snapshot`, { method: "POST", body });
  const text = await res.text();
  const headers = [...res.headers.entries()]
    .filter(([k]) => !["date", "content-length", "transfer-encoding"].includes(k))
    .sort();
  return { status: res.status, headers, text };
}

Deno.test({
  name: "snapshot diff: the gateway streams and refuses as etcd 3.4's",
  ignore: !HAVE_ETCDCTL,
  fn: () =>
    withServers(async (etcd, cairn) => {
      const a = await gatewayStream(etcd.endpoint, "{}");
      const b = await gatewayStream(cairn.endpoint, "{}");
      assert.equal(b.status, a.status);
      assert.deepEqual(b.headers, a.headers);
      for (const side of [a, b]) {
        const lines = side.text.split("\n");
        assert.equal(lines.pop(), "");
        const frame = /^\{"result":\{("remaining_bytes":"(\d+)",)?"blob":"([A-Za-z0-9+/=]*)"\}\}$/;
        const blobs = lines.map((l) => {
          const m = frame.exec(l);
          assert.ok(m, l.slice(0, 100));
          return Uint8Array.from(atob(m[3]), (c) => c.charCodeAt(0));
        });
        const digest = blobs.pop()!;
        const hash = createHash("sha256");
        for (const blob of blobs) hash.update(blob);
        assert.deepEqual(digest, new Uint8Array(hash.digest()));
      }
      for (const body of ["x", "[]", '{"x":', "{}{}", ""]) {
        const e = await gatewayStream(etcd.endpoint, body);
        const c = await gatewayStream(cairn.endpoint, body);
        assert.equal(c.status, e.status, body);
        if (e.status !== 200) assert.equal(c.text, e.text, body);
      }
    }),
});

Deno.test({
  name: "snapshot diff: etcdctl and ctl snapshot save, against etcd and cairn",
  ignore: !HAVE_ETCDCTL,
  fn: () =>
    withServers(async (etcd, cairn) => {
      // etcdctl against both servers: same stdout, same log lines.
      const runs = [];
      for (const s of [etcd, cairn]) {
        const r = await etcdctl(["--endpoints", s.endpoint, "snapshot", "save", "snap.db"], {
          cwd: s.dir,
        });
        assert.equal(r.code, 0, r.stderr);
        runs.push(r);
        const size = (await Deno.stat(`${s.dir}/snap.db`)).size;
        assert.equal(size % 512, 32, s.kind);
      }
      assert.equal(dec.decode(runs[1].stdout), dec.decode(runs[0].stdout));
      assert.equal(dec.decode(runs[0].stdout), "Snapshot saved at snap.db\n");
      assert.deepEqual(shape(runs[1].stderr), shape(runs[0].stderr));

      // cairn's ctl against etcd: etcdctl's output and file.
      const file = `${etcd.dir}/ctl.db`;
      const mine = await ctl(["--endpoints", etcd.endpoint, "snapshot", "save", file]);
      assert.equal(mine.code, 0, mine.err);
      assert.equal(mine.out, `Snapshot saved at ${file}\n`);
      assert.deepEqual(shape(mine.err), shape(runs[0].stderr));
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      // etcdctl reads it and restores it (checking its SHA-256).
      const st = await etcdctl(["snapshot", "status", file, "-w", "json"]);
      assert.equal(st.code, 0, st.stderr);
      const restored = await etcdctl(["snapshot", "restore", file, "--data-dir", `${etcd.dir}/r`]);
      assert.equal(restored.code, 0, restored.stderr);

      // ctl restores etcd's file (the migration path): a cairn member with etcd's keys.
      const mig = await ctl(["snapshot", "restore", file, "--data-dir", `${etcd.dir}/cairn`]);
      assert.equal(mig.code, 0, mig.err);
      const migrated = await startCairn(`${etcd.dir}/cairn`);
      try {
        const all = ["get", "", "--from-key", "-w", "json"];
        const want = JSON.parse(
          dec.decode((await etcdctl(["--endpoints", etcd.endpoint, ...all])).stdout),
        );
        const got = JSON.parse(
          dec.decode((await etcdctl(["--endpoints", migrated.endpoint, ...all])).stdout),
        );
        assert.deepEqual(got.kvs, want.kvs);
        assert.equal(got.header.revision, want.header.revision);
      } finally {
        await migrated.kill();
      }

      // Failures: too many endpoints, no argument.
      const eps = `${etcd.endpoint},${cairn.endpoint}`;
      for (const args of [["--endpoints", eps, "snapshot", "save", "x.db"], ["snapshot", "save"]]) {
        const e = await etcdctl(args, { cwd: etcd.dir });
        const c = await ctl(args);
        assert.equal(c.code, e.code, args.join(" "));
        assert.equal(c.err.trim().split("\n").at(-1), e.stderr.trim().split("\n").at(-1));
      }
    }),
});

Deno.test({
  name: "snapshot diff: snapshot status prints etcdctl's shapes",
  ignore: !HAVE_ETCDCTL,
  fn: () =>
    withServers(async (etcd, cairn) => {
      const etcdFile = `${etcd.dir}/e.db`;
      const cairnFile = `${cairn.dir}/c.db`;
      assert.equal(
        (await ctl(["--endpoints", etcd.endpoint, "snapshot", "save", etcdFile])).code,
        0,
      );
      assert.equal(
        (await ctl(["--endpoints", cairn.endpoint, "snapshot", "save", cairnFile])).code,
        0,
      );
      const theirs = async (format: string) =>
        dec.decode((await etcdctl(["snapshot", "status", etcdFile, "-w", format])).stdout);
      const ours = async (format: string) =>
        (await ctl(["snapshot", "status", cairnFile, "-w", format])).out;

      const e = JSON.parse(await theirs("json"));
      const c = JSON.parse(await ours("json"));
      assert.deepEqual(Object.keys(c), Object.keys(e));
      for (const k of Object.keys(e)) assert.equal(typeof c[k], typeof e[k], k);
      assert.equal(c.revision, e.revision); // 20 puts on each
      assert.equal(c.totalSize, (await Deno.stat(cairnFile)).size - 32);

      const simple = /^[0-9a-f]+, \d+, \d+, [0-9.]+ [kMG]?B\n$/;
      assert.match(await theirs("simple"), simple);
      assert.match(await ours("simple"), simple);
      // Column widths follow the values (the hash has 7 or 8 hex digits).
      const table = (t: string) =>
        t.trimEnd().split("\n").map((l) => l.replace(/ +/g, " ").replace(/-+/g, "-"));
      const [o, t] = [table(await ours("table")), table(await theirs("table"))];
      assert.equal(o.length, 5);
      assert.deepEqual([o[0], o[1], o[2], o[4]], [t[0], t[1], t[2], t[4]]);
      const row = /^\| [0-9a-f]+ \| \d+ \| \d+ \| [0-9.]+ [kMG]?B \|$/;
      assert.match(o[3], row);
      assert.match(t[3], row);
      const fieldNames = (t: string) => t.trim().split("\n").map((l) => l.split(" : ")[0]);
      assert.deepEqual(fieldNames(await ours("fields")), fieldNames(await theirs("fields")));
      // An etcd snapshot: ctl prints exactly what etcdctl prints (its hash, keys and size).
      for (const format of ["simple", "json", "table", "fields"]) {
        const c = await ctl(["snapshot", "status", etcdFile, "-w", format]);
        assert.equal(c.code, 0, c.err);
        assert.equal(c.out, await theirs(format), format);
      }
      const pe = await etcdctl(["snapshot", "status", etcdFile, "-w", "protobuf"]);
      const pc = await ctl(["snapshot", "status", cairnFile, "-w", "protobuf"]);
      assert.equal(pc.code, pe.code);
      assert.equal(pc.err, pe.stderr);
    }),
});
