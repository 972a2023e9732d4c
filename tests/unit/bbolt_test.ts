/**
 * The bbolt reader (server/snapshot/bbolt.ts) on a database written by the
 * real etcd 3.4: enough keys for branch pages, values long enough for
 * overflow pages. What it reads must give etcdctl's own `snapshot status`
 * (its CRC-32C over every bucket name, key and value, the key count and the
 * last revision) and the values written; damaged files are refused with a
 * BboltError naming what is wrong.
 *
 * Skipped when etcd or etcdctl is absent.
 */
import assert from "node:assert/strict";
import { Crc32c } from "@aws-crypto/crc32c";
import { decodeMessage } from "../../core/api/proto.ts";
import { decodeRevision } from "../../core/mvcc/encoding.ts";
import { BboltError, BboltFile } from "../../server/snapshot/bbolt.ts";
import {
  b64,
  bytesOf,
  etcdctl,
  etcdSnapshot,
  HAVE_ETCD_AND_ETCDCTL,
  must,
} from "../etcd_snapshot.ts";

const td = new TextDecoder();

/** Keys written in bulk, in txns of 100 puts. */
const BULK = 3_000;
/** Lengths of the values long enough to need overflow pages. */
const LARGE = [20_000, 200_000, 1_000_000];

/** What was written: the newest value of each key, as text or bytes. */
const written = new Map<string, Uint8Array>();

let fixture: { dir: string; file: string; status: Record<string, number> } | undefined;

/** The etcd snapshot all tests here read (made once). */
async function snapshot(): Promise<{ dir: string; file: string; status: Record<string, number> }> {
  if (fixture !== undefined) return fixture;
  const dir = Deno.makeTempDirSync({ prefix: "cairn-bbolt-" });
  const { file } = await etcdSnapshot(dir, async (etcd) => {
    const enc = new TextEncoder();
    for (let t = 0; t < BULK / 100; t++) {
      const success = [];
      for (let i = t * 100; i < (t + 1) * 100; i++) {
        const key = `k/${String(i).padStart(5, "0")}`;
        const value = enc.encode(`value of ${key} `.repeat(1 + (i % 3)));
        written.set(key, value);
        success.push({ request_put: { key: b64(key), value: b64(value) } });
      }
      await must(etcd, "/v3/kv/txn", { success });
    }
    for (const [i, length] of LARGE.entries()) {
      const value = bytesOf(length, i + 1);
      written.set(`large/${i}`, value);
      await must(etcd, "/v3/kv/put", { key: b64(`large/${i}`), value: b64(value) });
    }
  }, async () => {});
  const size = (await Deno.stat(file)).size;
  // The database without the SHA-256 etcdctl appends.
  const db = `${dir}/db`;
  const bytes = await Deno.readFile(file);
  await Deno.writeFile(db, bytes.subarray(0, size - 32));
  const status = JSON.parse(await etcdctl(["snapshot", "status", db, "-w", "json"]));
  fixture = { dir: dir, file: db, status };
  return fixture;
}

/** A copy of the fixture database changed by `damage`. */
async function damaged(name: string, damage: (bytes: Uint8Array) => Uint8Array): Promise<string> {
  const { dir, file } = await snapshot();
  const copy = `${dir}/${name}`;
  await Deno.writeFile(copy, damage((await Deno.readFile(file)).slice()));
  return copy;
}

/** Read every bucket of `path` in full, as etcdctl's `snapshot status` does. */
function readAll(path: string) {
  const db = BboltFile.open(path);
  try {
    const crc = new Crc32c();
    let totalKey = 0;
    let revision = 0;
    const values = new Map<string, Uint8Array>();
    for (const name of db.root().bucketNames()) {
      crc.update(name);
      const isKey = td.decode(name) === "key";
      for (const { key, value } of db.bucket(name)!.entries()) {
        crc.update(key);
        crc.update(value);
        totalKey++;
        if (isKey) {
          revision = decodeRevision(key);
          const kv = decodeMessage("KeyValue", value);
          values.set(td.decode(kv.key), kv.value.slice());
        }
      }
    }
    return { hash: crc.digest(), totalKey, revision, values, stats: { ...db.stats }, db: db.meta };
  } finally {
    db.close();
  }
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_ETCD_AND_ETCDCTL, fn });

test("bbolt: an etcd 3.4 snapshot reads as etcdctl snapshot status reads it", async () => {
  const { file, status } = await snapshot();
  const got = readAll(file);
  assert.equal(got.hash, status.hash);
  assert.equal(got.totalKey, status.totalKey);
  assert.equal(got.revision, status.revision);
  assert.equal(got.db.pageSize * got.db.pageCount, status.totalSize);
  // The file exercised every kind of page.
  assert.ok(got.stats.branchPages > 0, `branch pages read: ${got.stats.branchPages}`);
  assert.ok(got.stats.overflowPages > 0, `overflow pages read: ${got.stats.overflowPages}`);
  assert.ok(got.stats.leafPages > BULK / 100, `leaf pages read: ${got.stats.leafPages}`);
  assert.equal(got.values.size, written.size);
  for (const [key, value] of written) assert.deepEqual(got.values.get(key), value, key);
});

test("bbolt: get and bucket find what the walk finds, and nothing else", async () => {
  const { file } = await snapshot();
  const db = BboltFile.open(file);
  try {
    const keys = db.bucket("key")!;
    let n = 0;
    let last: Uint8Array | undefined;
    for (const { key, value } of keys.entries()) {
      if (n++ % 97 === 0) assert.deepEqual(keys.get(key), value);
      last = key;
    }
    assert.ok(n > BULK);
    const after = last!.slice();
    after[after.length - 1]++;
    assert.equal(keys.get(after), undefined);
    assert.equal(keys.get(new Uint8Array(0)), undefined);
    assert.equal(db.bucket("no such bucket"), undefined);
    assert.equal(db.root().get("key"), undefined, "a bucket is not a value");
    assert.equal(keys.bucket(last!), undefined, "a value is not a bucket");
    assert.ok(db.bucket("meta")!.get("consistent_index") !== undefined);
  } finally {
    db.close();
  }
});

test("bbolt: a damaged meta page gives way to the other one", async () => {
  const { file } = await snapshot();
  const good = readAll(file);
  const copy = await damaged("meta0", (b) => {
    b[16 + 48] ^= 0xff; // meta 0's txid: its checksum no longer matches
    return b;
  });
  const got = readAll(copy);
  assert.equal(got.db.txid, good.db.txid - 1n, "meta 1 (etcd writes it one txid behind)");
  assert.equal(got.hash, good.hash);
});

test("bbolt: damaged and foreign files are refused with what is wrong", async () => {
  const { file } = await snapshot();
  const pageSize = readAll(file).db.pageSize;
  const bothMeta = await damaged("meta01", (b) => {
    b[16 + 20] ^= 1;
    b[pageSize + 16 + 20] ^= 1;
    return b;
  });
  assert.throws(
    () => BboltFile.open(bothMeta),
    (e) => e instanceof BboltError && /checksum/.test(e.message),
  );

  const foreign = await damaged("foreign", (b) => bytesOf(b.length, 7));
  assert.throws(
    () => BboltFile.open(foreign),
    (e) => e instanceof BboltError && e.message.includes("not a bbolt database"),
  );

  const truncated = await damaged("truncated", (b) => b.subarray(0, Math.floor(b.length / 2)));
  assert.throws(
    () => BboltFile.open(truncated),
    (e) => e instanceof BboltError && /truncated: its meta page says \d+ pages/.test(e.message),
  );

  const empty = await damaged("empty", () => new Uint8Array(0));
  assert.throws(() => BboltFile.open(empty), BboltError);

  // The root page claims to be another page: found when the walk reads it.
  const meta = readAll(file).db;
  const wrongId = await damaged("wrong-id", (b) => {
    new DataView(b.buffer).setUint32(meta.root * pageSize, meta.root + 1, true);
    return b;
  });
  const db = BboltFile.open(wrongId);
  try {
    assert.throws(
      () => db.bucket("key"),
      (e) =>
        e instanceof BboltError &&
        e.message.includes(`page ${meta.root} has the id of another page`),
    );
  } finally {
    db.close();
  }
});

test("bbolt: a leaf element that runs past its page is refused", async () => {
  const { file } = await snapshot();
  const meta = readAll(file).db;
  // Root bucket page: element 0's key size made larger than the page.
  const copy = await damaged("long-element", (b) => {
    const view = new DataView(b.buffer);
    const at = meta.root * meta.pageSize + 16;
    view.setUint32(at + 8, meta.pageSize * 4, true);
    return b;
  });
  const db = BboltFile.open(copy);
  try {
    assert.throws(
      () => [...db.root().bucketNames()],
      (e) => e instanceof BboltError && /element 0 of page \d+ ends past it/.test(e.message),
    );
  } finally {
    db.close();
  }
});

Deno.test({
  name: "bbolt: the fixture directory is removed",
  ignore: !HAVE_ETCD_AND_ETCDCTL,
  fn() {
    if (fixture !== undefined) Deno.removeSync(fixture.dir, { recursive: true });
    fixture = undefined;
  },
});
