/**
 * Snapshot pieces without servers: the format of a file told from its first
 * bytes, etcd's rule for an appended SHA-256, `snapshot status` printed in
 * each of etcdctl's formats (the expected text is what etcdctl 3.4.23
 * printed for the same status), ctl's argument checks with etcdctl's
 * messages and exit codes, and a restore of a store written here.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { runCtl } from "../../cli/ctl.ts";
import { newPrinter } from "../../cli/printer.ts";
import { memoryIO } from "./ctl_io.ts";
import {
  detectSnapshotFormat,
  hasHash,
  restoreSnapshot,
  SnapshotError,
  snapshotStatus,
} from "../../server/snapshot/restore.ts";
import { openBackend } from "../../native/lmdb.ts";
import { Meta, RECORD_FORMAT } from "../../core/mvcc/view.ts";

async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const m = memoryIO();
  const code = await runCtl(args, m.io);
  return { code, out: m.out(), err: m.err() };
}

Deno.test("snapshot format: LMDB and bbolt told apart by their meta page magic", () => {
  const bbolt = new Uint8Array(64);
  new DataView(bbolt.buffer).setUint32(16, 0xed0cdaed, true);
  assert.equal(detectSnapshotFormat(bbolt), "etcd");
  const lmdb = new Uint8Array(64);
  new DataView(lmdb.buffer).setUint32(24, 0xbeefc0de, true);
  new DataView(lmdb.buffer).setUint32(28, 2, true);
  assert.equal(detectSnapshotFormat(lmdb), "cairn");
  // Another LMDB data version, the magic elsewhere, too short, zeros.
  new DataView(lmdb.buffer).setUint32(28, 1, true);
  assert.equal(detectSnapshotFormat(lmdb), undefined);
  const shifted = new Uint8Array(64);
  new DataView(shifted.buffer).setUint32(20, 0xed0cdaed, true);
  assert.equal(detectSnapshotFormat(shifted), undefined);
  assert.equal(detectSnapshotFormat(bbolt.subarray(0, 18)), undefined);
  assert.equal(detectSnapshotFormat(new Uint8Array(4096)), undefined);
});

Deno.test("snapshot format: a SHA-256 is appended when the size is 32 over 512·k", () => {
  assert.equal(hasHash(20480 + 32), true);
  assert.equal(hasHash(106496 + 32), true);
  assert.equal(hasHash(20480), false);
  assert.equal(hasHash(20480 + 31), false);
  assert.equal(hasHash(1000), false);
});

Deno.test("snapshot status: printed as etcdctl 3.4 prints it in every format", () => {
  // etcdctl 3.4.23's output for a status of hash 1425632765, revision 2, 5 keys, 20480 bytes.
  const status = { hash: 1425632765, revision: 2, totalKey: 5, totalSize: 20480 };
  const print = (format: string) => {
    const m = memoryIO();
    newPrinter(format, m.io.stdout, m.io.stderr).dbStatus(status);
    return m.out();
  };
  assert.equal(print("simple"), "54f96dfd, 2, 5, 20 kB\n");
  assert.equal(
    print("json"),
    '{"hash":1425632765,"revision":2,"totalKey":5,"totalSize":20480}\n',
  );
  assert.equal(
    print("table"),
    "+----------+----------+------------+------------+\n" +
      "|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n" +
      "+----------+----------+------------+------------+\n" +
      "| 54f96dfd |        2 |          5 |      20 kB |\n" +
      "+----------+----------+------------+------------+\n",
  );
  assert.equal(
    print("fields"),
    '"Hash" : 1425632765\n"Revision" : 2\n"Keys" : 5\n"Size" : 20480\n',
  );
  // %x does not pad: a small hash has fewer digits.
  const m = memoryIO();
  newPrinter("simple", m.io.stdout, m.io.stderr).dbStatus({ ...status, hash: 0xabc });
  assert.equal(m.out(), "abc, 2, 5, 20 kB\n");
  assert.throws(() => print("protobuf"), /protobuf not supported as output format/);
});

Deno.test("snapshot ctl: etcdctl's argument errors and exit codes", async () => {
  const cases: [string[], number, string][] = [
    [["snapshot", "save"], 128, "Error: snapshot save expects one argument\n"],
    [["snapshot", "save", "a", "b"], 128, "Error: snapshot save expects one argument\n"],
    [
      ["--endpoints", "127.0.0.1:1,127.0.0.1:2", "snapshot", "save", "x.db"],
      5,
      "Error: snapshot must be requested to one selected node, not multiple [127.0.0.1:1 127.0.0.1:2]\n",
    ],
    [["snapshot", "status"], 128, "Error: snapshot status requires exactly one argument\n"],
    [["snapshot", "restore"], 128, "Error: snapshot restore requires exactly one argument\n"],
    [
      ["snapshot", "restore", "x.db", "--bump-revision", "5"],
      128,
      "Error: --mark-compacted required if --revision-bump > 0\n",
    ],
    [
      ["snapshot", "restore", "x.db", "--mark-compacted"],
      128,
      "Error: --mark-compacted required if --revision-bump > 0\n",
    ],
    [
      ["snapshot", "restore", "x.db", "--name", "n1"],
      1,
      'Error: couldn\'t find local name "n1" in the initial cluster configuration\n',
    ],
    [
      ["snapshot", "restore", "x.db", "--initial-advertise-peer-urls", "foo"],
      1,
      "Error: URL scheme must be http, https, unix, or unixs: foo\n",
    ],
    [
      ["snapshot", "restore", "x.db", "--initial-cluster", "x"],
      1,
      "Error: URL scheme must be http, https, unix, or unixs: \n",
    ],
  ];
  for (const [args, code, err] of cases) {
    const r = await ctl(args);
    assert.equal(r.code, code, args.join(" "));
    assert.equal(r.err, err, args.join(" "));
    assert.equal(r.out, "", args.join(" "));
  }
  const bad = await ctl(["snapshot", "restore", "x.db", "--bump-revision", "-1"]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /invalid argument "-1" for "--bump-revision" flag: strconv.ParseUint/);
  const help = await ctl(["snapshot"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /COMMANDS:\n\trestore\t.*\n\tsave\t.*\n\tstatus\t/);
});

Deno.test("snapshot restore: a store copied with its hash becomes a new member's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cairn-snapshot-unit-" });
  try {
    // A store as a member leaves it, saved as `snapshot save` writes it.
    const src = openBackend(`${dir}/src`);
    await src.write(() => {
      src.putMeta(Meta.recordFormat, RECORD_FORMAT);
      src.putMeta(Meta.revision, 41);
      src.putMeta(Meta.memberId, "1");
      src.putMeta(Meta.clusterId, "2");
      src.putMeta(Meta.appliedIndex, 900);
      src.put("current", new TextEncoder().encode("k"), new Uint8Array([0, 41, 41, 1, 118]));
    });
    await src.flushed();
    const copy = await src.copyTo(`${dir}/copy`);
    await src.close();
    const data = await Deno.readFile(copy);
    const digest = new Uint8Array(createHash("sha256").update(data).digest());
    const file = `${dir}/snap.db`;
    await Deno.writeFile(file, new Uint8Array([...data, ...digest]));

    const status = await snapshotStatus(file);
    assert.equal(status.revision, 41);
    assert.equal(status.totalKey, 1);
    assert.equal(status.totalSize, data.length);

    const url = (s: string) => new URL(s);
    const cluster = new Map([
      ["a", [url("http://10.0.0.1:2380")]],
      ["b", [url("http://10.0.0.2:2380")]],
    ]);
    const result = await restoreSnapshot(file, {
      dataDir: `${dir}/b`,
      name: "b",
      initialCluster: cluster,
      initialClusterToken: "tok",
      bumpRevision: 9,
      markCompacted: true,
    });
    assert.equal(result.snapshotRevision, 41);
    assert.equal(result.revision, 50);
    assert.equal(result.compactRevision, 50);
    assert.equal(result.keys, 1);
    const b = openBackend(`${dir}/b/member`);
    try {
      assert.equal(b.getMeta(Meta.revision), 50);
      assert.equal(b.getMeta(Meta.compactRevision), 50);
      assert.equal(b.getMeta(Meta.appliedIndex), 1);
      assert.equal(b.getMeta(Meta.memberId), result.memberId.toString());
      assert.notEqual(b.getMeta(Meta.memberId), "1");
      assert.equal(b.getMeta(Meta.clusterId), result.clusterId.toString());
    } finally {
      await b.close();
    }
    // The other member of the same cluster gets the same cluster ID, another member ID.
    const a = await restoreSnapshot(file, {
      dataDir: `${dir}/a`,
      name: "a",
      initialCluster: cluster,
      initialClusterToken: "tok",
    });
    assert.equal(a.clusterId, result.clusterId);
    assert.notEqual(a.memberId, result.memberId);
    assert.equal(a.revision, 41);
    // A damaged file: refused, and the parent dirs made for it removed again.
    const damaged = `${dir}/damaged.db`;
    await Deno.writeFile(damaged, new Uint8Array([...data, ...digest.map((b) => b ^ 1)]));
    await assert.rejects(
      restoreSnapshot(damaged, {
        dataDir: `${dir}/deep/er/x`,
        name: "a",
        initialCluster: cluster,
        initialClusterToken: "tok",
      }),
      (e) => e instanceof SnapshotError && /snapshot hash mismatch/.test(e.message),
    );
    await assert.rejects(Deno.stat(`${dir}/deep`), Deno.errors.NotFound);
    // On a terminal, a summary line follows etcdctl's log lines; elsewhere nothing more.
    for (const tty of [true, false]) {
      const m = memoryIO();
      m.io.isTerminal = () => tty;
      const code = await runCtl(
        ["snapshot", "restore", file, "--data-dir", `${dir}/tty-${tty}`],
        m.io,
      );
      assert.equal(code, 0, m.err());
      const last = m.err().trimEnd().split("\n").at(-1)!;
      if (tty) assert.match(last, /^Restored 1 key at revision 41 into .*tty-true: .* in /);
      else assert.equal(JSON.parse(last).msg, "restored snapshot");
      assert.equal(m.out(), "");
    }
    await assert.rejects(
      restoreSnapshot(file, {
        dataDir: `${dir}/a`,
        name: "a",
        initialCluster: cluster,
        initialClusterToken: "tok",
      }),
      (e) => e instanceof SnapshotError && /data-dir ".*\/a" exists/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
