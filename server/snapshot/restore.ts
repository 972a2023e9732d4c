/**
 * `snapshot restore` and `snapshot status`: a snapshot file into a new
 * member data dir, and what a snapshot file holds.
 *
 * A cairn snapshot (what `snapshot save` writes, from Maintenance.Snapshot)
 * is the member's LMDB environment file (`data.mdb`, a consistent copy made
 * in one read transaction) followed by the 32-byte SHA-256 of those bytes,
 * as etcd appends one to its bbolt file. A restore builds, in a directory
 * beside the target that is renamed into place only at the end:
 *
 * ```
 * <data-dir>/member/data.mdb   the snapshot's store, with a new identity
 * <data-dir>/member/snap/      empty (snapshots received from a leader go here)
 * ```
 *
 * The store keeps every table (keys, history, revision log, leases), the
 * current and compacted revisions; it gets a new identity as the member
 * `name` of a new cluster of the members of `--initial-cluster`: member and
 * cluster IDs computed as etcd computes them (server/ids.ts), raft IDs 1..n
 * in member-ID order, that membership, applied index 1 and term 1, so the
 * member starts a fresh Raft log and WAL whose initial state is the
 * restored one (what a new member's store looks like, plus the data).
 * Restoring the same file for every member of `--initial-cluster` gives a
 * new cluster whose members start from equal stores. Alarms of the old
 * cluster are not carried (they name its members).
 *
 * etcd 3.5's `--bump-revision N --mark-compacted` (given together, as etcd
 * requires): the current revision is raised by N and every revision up to
 * the new one is compacted (history below it is removed), so clients never
 * see revisions go back, and a watcher resuming from an older revision gets
 * `required revision has been compacted` rather than silently missing the
 * changes the restore dropped.
 *
 * The source format is told from the file's first bytes ({@linkcode SOURCES}
 * maps each to its reader): LMDB's meta page magic 0xBEEFC0DE at byte 24
 * (cairn: the file's database is copied) or bbolt's 0xED0CDAED at byte 16
 * (etcd, little-endian, after page 0's 16-byte header: its `key`, `meta`
 * and `lease` buckets are imported by ./etcd_import.ts, the migration path
 * from etcd). Either way the result is then given the new identity.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { Crc32c } from "@aws-crypto/crc32c";
import { basename, dirname, join } from "node:path";
import type { Backend, Table } from "../../core/backend.ts";
import { AlarmSet } from "../../core/alarm.ts";
import { invariant } from "../../core/invariant.ts";
import { SNAPSHOT_FILE_CHUNK_BYTES } from "../../core/limits.ts";
import { compactHistory } from "../../core/mvcc/compact.ts";
import { decodeRevision } from "../../core/mvcc/encoding.ts";
import { Meta, RECORD_FORMAT } from "../../core/mvcc/view.ts";
import {
  isEnvironmentFile,
  openBackend,
  openEnvironmentFile,
  readEnvironmentHeader,
} from "../../native/lmdb.ts";
import { Membership } from "../cluster/membership.ts";
import { memberId as computeMemberId } from "../ids.ts";
import { memberDir, snapDir } from "../member.ts";
import { BboltError, BboltFile } from "./bbolt.ts";
import { EtcdImportError, importEtcdSnapshot } from "./etcd_import.ts";
import { goOsError } from "../../core/go_os_error.ts";

/** Bytes of the SHA-256 digest appended to a saved snapshot. */
export const SNAPSHOT_HASH_BYTES = 32;

/** The formats a snapshot file can have. */
export type SnapshotFormat = "cairn" | "etcd";

/** A snapshot that cannot be restored or read; the message names the file and what is wrong. */
export class SnapshotError extends Error {
  /**
   * Builds the error.
   * @param message names the file and the reason.
   */
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

/** bbolt's magic number, the first field of its meta page (after a 16-byte page header). */
const BBOLT_MAGIC = 0xed0cdaed;
const BBOLT_MAGIC_OFFSET = 16;
/** Bytes of a file read to tell its format. */
const HEAD_BYTES = 64;

/**
 * The format of a snapshot file from its first bytes: `cairn` for an LMDB
 * environment file, `etcd` for a bbolt database; undefined for anything
 * else.
 */
export function detectSnapshotFormat(head: Uint8Array): SnapshotFormat | undefined {
  if (isEnvironmentFile(head)) return "cairn";
  if (head.length >= BBOLT_MAGIC_OFFSET + 4) {
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    if (view.getUint32(BBOLT_MAGIC_OFFSET, true) === BBOLT_MAGIC) return "etcd";
  }
  return undefined;
}

/**
 * Whether a file of `size` bytes ends with a SHA-256 digest, by etcd's rule:
 * a database is whole 512-byte sectors, so a saved snapshot is 32 bytes over
 * a multiple of 512.
 */
export function hasHash(size: number): boolean {
  return size % 512 === SNAPSHOT_HASH_BYTES;
}

/** Progress of a restore or a status read. */
export interface SnapshotProgress {
  /** Bytes of the file processed so far. */
  bytes: number;
  /** Bytes of the file to process (0 when unknown). */
  totalBytes: number;
  /** Records imported so far, for a source imported record by record (etcd). */
  keys?: number;
}

/** Options of {@linkcode restoreSnapshot}. */
export interface RestoreOptions {
  /** The data dir to create; it must not exist. */
  dataDir: string;
  /** This member's name (etcd's --name); must be in `initialCluster`. */
  name: string;
  /** Member name → peer URLs of the new cluster (--initial-cluster). */
  initialCluster: Map<string, URL[]>;
  /** The new cluster's token (--initial-cluster-token); seeds the member IDs. */
  initialClusterToken: string;
  /** Restore without checking the appended SHA-256, or a file without one (--skip-hash-check). */
  skipHashCheck?: boolean;
  /**
   * Raise the current revision by this much (--bump-revision); with
   * `markCompacted` only (etcd 3.5's rule). Default 0.
   */
  bumpRevision?: number;
  /** Compact every revision up to the (bumped) current one (--mark-compacted). */
  markCompacted?: boolean;
  /** Called as the file is read (each chunk) and the store built. */
  onProgress?: (p: SnapshotProgress) => void;
}

/** What {@linkcode restoreSnapshot} built. */
export interface RestoreResult {
  /** The source format. */
  format: SnapshotFormat;
  /** The current revision the snapshot held. */
  snapshotRevision: number;
  /** The restored member's current revision (after any bump). */
  revision: number;
  /** Its compacted revision (0: none). */
  compactRevision: number;
  /** Live keys at the current revision. */
  keys: number;
  /** Bytes of the snapshot's database (the file without its hash). */
  bytes: number;
  /** This member's ID. */
  memberId: bigint;
  /** The new cluster's ID. */
  clusterId: bigint;
  /** The new cluster's members. */
  membership: Membership;
}

/**
 * One source format: fills the new member directory `dir` (which does not
 * exist yet) with a cairn store of the snapshot's data; the restore then
 * gives it its identity. Returns the bytes of the file's database.
 */
type SnapshotSource = (
  file: string,
  dir: string,
  options: { skipHashCheck: boolean; onProgress?: (p: SnapshotProgress) => void },
) => Promise<number>;

/** The restorable formats. */
const SOURCES: Record<SnapshotFormat, SnapshotSource> = {
  cairn: copyCairnSnapshot,
  etcd: importEtcd,
};

/**
 * An etcd snapshot into a new store in `dir` (server/snapshot/etcd_import.ts:
 * keys, history, revisions, compaction, leases). Returns the bytes of its
 * database.
 *
 * @throws {SnapshotError} with the importer's message for a missing or
 *   mismatched hash, a damaged bbolt file, or records etcd does not write.
 */
async function importEtcd(
  file: string,
  dir: string,
  options: { skipHashCheck: boolean; onProgress?: (p: SnapshotProgress) => void },
): Promise<number> {
  const size = (await Deno.stat(file)).size;
  const backend = openBackend(dir);
  try {
    await importEtcdSnapshot(file, backend, {
      skipHashCheck: options.skipHashCheck,
      onProgress: (p) => options.onProgress?.({ bytes: p.bytes, totalBytes: size, keys: p.keys }),
    });
    await backend.flushed();
  } catch (err) {
    if (err instanceof EtcdImportError || err instanceof BboltError) {
      throw new SnapshotError(err.message);
    }
    throw err;
  } finally {
    await backend.close();
  }
  return hasHash(size) ? size - SNAPSHOT_HASH_BYTES : size;
}

/**
 * Restore the snapshot `file` into a new member data dir (see the module
 * documentation for what it holds). The dir is built beside `dataDir` and
 * renamed into place at the end; on any failure nothing is left behind and
 * `dataDir` is untouched.
 *
 * @throws {SnapshotError} when `dataDir` exists (`data-dir "d" exists`, as
 *   etcdctl), `file` cannot be opened, is not a snapshot, is truncated, has
 *   no SHA-256 (unless `skipHashCheck`) or one that does not match, or holds
 *   no cairn store.
 * @throws {InvariantError} when `name` is not in `initialCluster`, or
 *   `bumpRevision` is negative or given without `markCompacted` (callers
 *   check these first, with etcd's messages).
 */
export async function restoreSnapshot(
  file: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const { dataDir, name, initialCluster, initialClusterToken } = options;
  const bump = options.bumpRevision ?? 0;
  const mark = options.markCompacted ?? false;
  invariant(initialCluster.has(name), "the restored member is in the initial cluster");
  invariant(Number.isSafeInteger(bump) && bump >= 0, "--bump-revision is a count");
  invariant((bump > 0) === mark, "--bump-revision and --mark-compacted go together");
  if (await exists(dataDir)) throw new SnapshotError(`data-dir "${dataDir}" exists`);
  const format = await formatOf(file);
  const parent = dirname(dataDir);
  // The outermost missing ancestor: what a failed restore removes again.
  let made: string | undefined;
  for (let d = parent; !(await exists(d)); d = dirname(d)) made = d;
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${basename(dataDir)}.restore-` });
  try {
    const bytes = await SOURCES[format](file, memberDir(tmp), {
      skipHashCheck: options.skipHashCheck ?? false,
      onProgress: options.onProgress,
    });
    const origins = new Map(
      [...initialCluster].map(([n, urls]) => [n, urls.map((u) => u.origin)]),
    );
    const membership = Membership.bootstrap(origins, initialClusterToken);
    const memberId = computeMemberId([...origins.get(name)!].sort(), initialClusterToken);
    const me = membership.get(memberId);
    invariant(me !== undefined, "the restored member is in its bootstrap membership");
    const backend = openBackend(memberDir(tmp));
    let result: Omit<RestoreResult, "format" | "bytes" | "membership">;
    try {
      result = await adopt(file, backend, {
        memberId,
        raftId: me.raftId,
        membership,
        bump,
        mark,
      });
      await backend.flushed();
    } finally {
      await backend.close();
    }
    await Deno.mkdir(snapDir(tmp), { recursive: true });
    if (await exists(dataDir)) throw new SnapshotError(`data-dir "${dataDir}" exists`);
    await Deno.rename(tmp, dataDir);
    return { ...result, format, bytes, membership };
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    // Parent dirs made for the restore go too.
    if (made !== undefined) await Deno.remove(made, { recursive: true }).catch(() => {});
    throw err;
  }
}

/**
 * Give the store in `backend` (a snapshot's) the identity of a new member
 * and apply the revision bump and compaction.
 */
async function adopt(
  file: string,
  backend: Backend,
  who: { memberId: bigint; raftId: number; membership: Membership; bump: number; mark: boolean },
): Promise<Omit<RestoreResult, "format" | "bytes" | "membership">> {
  const format = backend.getMeta(Meta.recordFormat);
  const revision = backend.getMeta(Meta.revision);
  if (format !== RECORD_FORMAT || typeof revision !== "number") {
    throw new SnapshotError(
      `${file} is not a cairn snapshot: its LMDB environment holds no cairn store ` +
        `(record format ${String(format)}, this cairn reads ${RECORD_FORMAT})`,
    );
  }
  const newRevision = revision + who.bump;
  const clusterId = who.membership.clusterId();
  await backend.write(() => {
    backend.putMeta(Meta.memberId, who.memberId.toString());
    backend.putMeta(Meta.clusterId, clusterId.toString());
    backend.putMeta(Meta.raftId, who.raftId);
    backend.putMeta(Meta.membership, who.membership.encode());
    // A new Raft log: the restored state is its initial applied state.
    backend.putMeta(Meta.appliedIndex, 1);
    backend.putMeta(Meta.appliedTerm, 1);
    if (backend.getMeta(Meta.term) !== undefined) backend.putMeta(Meta.term, 1);
    backend.putMeta(Meta.alarms, new AlarmSet().encode());
    if (who.bump > 0) backend.putMeta(Meta.revision, newRevision);
    if (who.mark) backend.putMeta(Meta.compactRevision, newRevision);
  });
  if (who.mark) await compactHistory(backend, newRevision);
  return {
    snapshotRevision: revision,
    revision: newRevision,
    compactRevision: Number(backend.getMeta(Meta.compactRevision) ?? 0),
    keys: backend.count("current", {}),
    memberId: who.memberId,
    clusterId,
  };
}

/** The format of `file` from its first bytes. */
async function formatOf(file: string): Promise<SnapshotFormat> {
  const head = new Uint8Array(HEAD_BYTES);
  let n = 0;
  try {
    using f = await Deno.open(file, { read: true });
    while (n < head.length) {
      const r = await f.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
  } catch (err) {
    throw new SnapshotError(`open ${file}: ${goOsError(err)}`);
  }
  const format = detectSnapshotFormat(head.subarray(0, n));
  if (format === undefined) {
    throw new SnapshotError(
      `${file} is not a snapshot file: it holds neither a cairn (LMDB) nor an etcd (bbolt) database`,
    );
  }
  return format;
}

/**
 * The checks of a cairn snapshot file before its database is used: the
 * SHA-256 is there (unless `skipHashCheck`), and the database is whole.
 * Returns the database's bytes and whether a digest follows them.
 */
async function checkCairnFile(
  file: string,
  skipHashCheck: boolean,
): Promise<{ bytes: number; digest: boolean }> {
  const size = (await Deno.stat(file)).size;
  const digest = hasHash(size);
  const bytes = digest ? size - SNAPSHOT_HASH_BYTES : size;
  const header = await readEnvironmentHeader(file).catch((err) => {
    throw new SnapshotError(`${file} is not a cairn snapshot: ${(err as Error).message}`);
  });
  if (bytes < header.bytes) {
    throw new SnapshotError(
      `${file} is truncated: its database needs ${header.bytes} bytes, the file holds ${bytes}`,
    );
  }
  if (!digest && !skipHashCheck) {
    throw new SnapshotError(
      `snapshot missing hash but --skip-hash-check=false (${file} has ${size} bytes, not a ` +
        `database followed by its 32-byte SHA-256: it is damaged, or was not saved by ` +
        `'snapshot save')`,
    );
  }
  return { bytes, digest };
}

/**
 * Copy the database of the cairn snapshot `file` to `<dir>/data.mdb`,
 * checking its SHA-256 on the way unless `skipHashCheck`. Returns the
 * database's bytes.
 *
 * @throws {SnapshotError} for a truncated file, a missing or mismatched
 *   hash.
 */
async function copyCairnSnapshot(
  file: string,
  dir: string,
  options: { skipHashCheck: boolean; onProgress?: (p: SnapshotProgress) => void },
): Promise<number> {
  const { bytes, digest } = await checkCairnFile(file, options.skipHashCheck);
  await Deno.mkdir(dir, { recursive: true });
  using out = await Deno.open(join(dir, "data.mdb"), { write: true, createNew: true });
  const expected = await streamDatabase(file, bytes, digest, options.onProgress, async (chunk) => {
    let n = 0;
    while (n < chunk.length) n += await out.write(chunk.subarray(n));
  });
  if (expected !== undefined && !options.skipHashCheck) checkDigest(file, expected);
  await out.sync();
  return bytes;
}

/** A running SHA-256 whose result {@linkcode checkDigest} compares. */
interface DigestCheck {
  expected: Uint8Array;
  actual: Uint8Array;
}

/**
 * @throws {SnapshotError} `snapshot hash mismatch: expected sha256 …, got …`.
 */
function checkDigest(file: string, d: DigestCheck): void {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  if (hex(d.expected) !== hex(d.actual)) {
    throw new SnapshotError(
      `snapshot hash mismatch: expected sha256 ${hex(d.expected)}, got ${hex(d.actual)} ` +
        `(${file} is damaged)`,
    );
  }
}

/**
 * Read the first `bytes` bytes of `file` in chunks of
 * SNAPSHOT_FILE_CHUNK_BYTES, handing each to `sink` and hashing them; when
 * `digest`, also read the SHA-256 after them and return both digests.
 */
async function streamDatabase(
  file: string,
  bytes: number,
  digest: boolean,
  onProgress: ((p: SnapshotProgress) => void) | undefined,
  sink: (chunk: Uint8Array) => Promise<void>,
): Promise<DigestCheck | undefined> {
  using f = await Deno.open(file, { read: true });
  const hash = createHash("sha256");
  const buf = new Uint8Array(SNAPSHOT_FILE_CHUNK_BYTES);
  let done = 0;
  const readFull = async (into: Uint8Array): Promise<void> => {
    let n = 0;
    while (n < into.length) {
      const r = await f.read(into.subarray(n));
      if (r === null) throw new SnapshotError(`${file} is truncated: it ended while read`);
      n += r;
    }
  };
  while (done < bytes) {
    const chunk = buf.subarray(0, Math.min(buf.length, bytes - done));
    await readFull(chunk);
    hash.update(chunk);
    await sink(chunk);
    done += chunk.length;
    onProgress?.({ bytes: done, totalBytes: bytes });
  }
  if (!digest) return undefined;
  const expected = new Uint8Array(SNAPSHOT_HASH_BYTES);
  await readFull(expected);
  return { expected, actual: new Uint8Array(hash.digest()) };
}

/**
 * What `snapshot status` reports of a snapshot file (etcdctl's
 * snapshot.Status). For a cairn snapshot the figures are cairn's own:
 * - hash: CRC-32 (IEEE) over the store's records: for each table in the
 *   order `current`, `history`, `revlog`, `lease`, its name, then each
 *   record's key and value in key order. Equal for snapshots of stores with
 *   the same records (members that applied the same log, whatever their
 *   IDs); not comparable with etcd's.
 * - revision: the store's current revision; totalKey: the records of those
 *   four tables; totalSize: the bytes of the database (the file without its
 *   SHA-256).
 *
 * For an etcd snapshot they are etcdctl's: a CRC-32C over every bucket's
 * name and records, the last revision of the `key` bucket, the records of
 * every bucket and the bbolt database's size.
 */
export interface SnapshotStatus {
  /** The hash (32 bits). */
  hash: number;
  /** The current revision. */
  revision: number;
  /** Records counted. */
  totalKey: number;
  /** Bytes of the database. */
  totalSize: number;
}

/** The tables {@linkcode SnapshotStatus.hash} covers, in its order. */
const HASHED_TABLES: Table[] = ["current", "history", "revlog", "lease"];

/**
 * Read the snapshot `file`: its hash, revision, records and size (see
 * {@linkcode SnapshotStatus}). A cairn snapshot's SHA-256, when it has one,
 * is checked (etcdctl checks its database's integrity before it reports),
 * and its database read from a copy in the system's temporary directory,
 * removed at the end (LMDB would leave a lock file beside the snapshot). An
 * etcd snapshot is read page by page in place, every page checked, as
 * etcdctl reports it.
 *
 * @throws {SnapshotError} when the file cannot be opened, is not a
 *   snapshot, is truncated or damaged, or its hash does not match.
 */
export async function snapshotStatus(
  file: string,
  onProgress?: (p: SnapshotProgress) => void,
): Promise<SnapshotStatus> {
  try {
    await Deno.stat(file);
  } catch (err) {
    throw new SnapshotError(`stat ${file}: ${goOsError(err)}`);
  }
  const format = await formatOf(file);
  if (format === "etcd") return etcdStatus(file);
  const tmp = await Deno.makeTempDir({ prefix: "cairn-snapshot-status-" });
  try {
    const bytes = await copyCairnSnapshot(file, tmp, { skipHashCheck: false, onProgress });
    const env = openEnvironmentFile(join(tmp, "data.mdb"));
    try {
      const format = env.getMeta(Meta.recordFormat);
      const revision = env.getMeta(Meta.revision);
      if (format !== RECORD_FORMAT || typeof revision !== "number") {
        throw new SnapshotError(
          `${file} is not a cairn snapshot: its LMDB environment holds no cairn store`,
        );
      }
      let hash = 0;
      let totalKey = 0;
      const encoder = new TextEncoder();
      for (const table of HASHED_TABLES) {
        hash = crc32(encoder.encode(table), hash);
        for (const { key, value } of env.scan(table)) {
          hash = crc32(key, hash);
          hash = crc32(value, hash);
          totalKey++;
        }
      }
      return { hash: hash >>> 0, revision, totalKey, totalSize: bytes };
    } finally {
      await env.close();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** etcdctl's `snapshot status` of an etcd snapshot (see {@linkcode SnapshotStatus}). */
async function etcdStatus(file: string): Promise<SnapshotStatus> {
  const size = (await Deno.stat(file)).size;
  let db: BboltFile;
  try {
    db = BboltFile.open(file, { length: hasHash(size) ? size - SNAPSHOT_HASH_BYTES : size });
  } catch (err) {
    if (err instanceof BboltError) throw new SnapshotError(err.message);
    throw err;
  }
  try {
    const crc = new Crc32c();
    let totalKey = 0;
    let revision = 0;
    for (const name of db.root().bucketNames()) {
      crc.update(name);
      const isKey = name.length === 3 && new TextDecoder().decode(name) === "key";
      for (const { key, value } of db.bucket(name)!.entries()) {
        crc.update(key);
        crc.update(value);
        if (isKey) revision = decodeRevision(key);
        totalKey++;
      }
    }
    return {
      hash: crc.digest(),
      revision,
      totalKey,
      totalSize: db.meta.pageSize * db.meta.pageCount,
    };
  } catch (err) {
    if (err instanceof BboltError) throw new SnapshotError(err.message);
    throw err;
  } finally {
    db.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
