/**
 * Migration from etcd: an etcd 3.4 snapshot (`etcdctl snapshot save`, a
 * bbolt database read by ./bbolt.ts) into an empty cairn store, as the
 * tables cairn's own apply path would have written for the same history.
 *
 * What an etcd 3.4 backend holds, and what becomes of it:
 * - `key`: one record per change. The key is the revision, 8-byte
 *   big-endian main ‖ `_` ‖ 8-byte big-endian sub (17 bytes), plus a `t`
 *   byte for a tombstone (a deletion); the value is an mvccpb.KeyValue
 *   (a tombstone's holds only the key). Records come in revision order, and
 *   each is written the way core/mvcc's WriteView writes a change: the live
 *   version of a key in `current`; the version it replaces moved to
 *   `history` under that version's mod_revision; a deletion's tombstone in
 *   `history`; the change in `revlog` under (main, sub) for watch replay.
 *   create_revision, version and lease come from the record itself, so
 *   versions whose history etcd compacted away keep their numbers.
 * - `meta`: `finishedCompactRev` and `scheduledCompactRev` (revisions as
 *   above) give the compacted revision: reads below it fail, and `revlog`
 *   keeps only the changes at or above it (as a cairn compaction leaves
 *   it). A compaction etcd had scheduled but not finished is finished here
 *   (core/mvcc/compact.ts), as etcd finishes it when it opens the file.
 *   `consistent_index` (etcd's Raft index) is not carried: the restored
 *   member starts a new log.
 * - `lease`: leasepb.Lease {ID, TTL, RemainingTTL} → the `lease` table
 *   (granted TTL and checkpointed remaining TTL); keys attach through their
 *   records' lease, as they do when a member opens its store.
 * - Not carried: `members` and `members_removed` (the restored member
 *   gets the membership it is restored with, as with `etcdctl snapshot
 *   restore`), `cluster` (the cluster version), `alarm` (active alarms),
 *   and `auth`, `authUsers`, `authRoles` (whether auth was on, users and
 *   roles: cairn has no auth). The result names those among the last four
 *   that held anything (`auth` when auth was enabled).
 *
 * The current revision is the last record's main revision, or the compacted
 * revision when that is higher (every later change was a deletion whose
 * tombstone the compaction removed), as etcd computes it on restore.
 *
 * @module
 */
import { createHash } from "node:crypto";
import protobuf from "protobufjs";
import type { Backend } from "../../core/backend.ts";
import { decodeMessage } from "../../core/api/proto.ts";
import type { KeyValue } from "../../core/api/types.ts";
import { invariant } from "../../core/invariant.ts";
import {
  ETCD_IMPORT_BATCH_BYTES,
  ETCD_IMPORT_BATCH_RECORDS,
  SNAPSHOT_HASH_CHUNK_BYTES,
} from "../../core/limits.ts";
import { compactHistory } from "../../core/mvcc/compact.ts";
import {
  compareBytes,
  decodeRevision,
  encodeRecord,
  encodeRevlogKey,
  historyKey,
  isStorableKey,
  MAX_STORED_KEY_BYTES,
  recordModRevision,
} from "../../core/mvcc/encoding.ts";
import { Meta, RECORD_FORMAT } from "../../core/mvcc/view.ts";
import { leaseKey, leaseRecord } from "../raftnode/applier.ts";
import { type BboltBucket, BboltFile } from "./bbolt.ts";

/** Bytes of the SHA-256 digest `etcdctl snapshot save` appends to the database. */
const SHA256_BYTES = 32;
/** Bytes of an etcd revision key: main (8) ‖ '_' ‖ sub (8). */
const REVISION_KEY_BYTES = 17;
/** The byte after a revision key that marks a tombstone. */
const TOMBSTONE_MARK = 0x74; // 't'
/** etcd 3.4's buckets read here. */
const CARRIED = new Set(["key", "meta", "lease"]);
/** etcd 3.4's buckets that every etcd fills and a restore replaces (not reported as skipped). */
const ALWAYS_THERE = new Set(["members", "members_removed", "cluster"]);

/** Thrown when an etcd snapshot cannot be imported; the message names the file and the reason. */
export class EtcdImportError extends Error {
  /**
   * Builds the error.
   * @param message names the file and what is wrong.
   * @param options the underlying error, if any, as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EtcdImportError";
  }
}

/** Progress of {@linkcode importEtcdSnapshot}. */
export interface EtcdImportProgress {
  /** Records of etcd's `key` bucket (changes: puts and deletions) imported so far. */
  keys: number;
  /**
   * Bytes of the file read so far: while the SHA-256 is checked, from 0 to
   * the file's size (`keys` 0); then, from 0 again, the pages read by the
   * import.
   */
  bytes: number;
}

/** Options of {@linkcode importEtcdSnapshot}. */
export interface EtcdImportOptions {
  /**
   * Import a file without checking its SHA-256 (etcdctl's
   * `--skip-hash-check`): needed for a bbolt file copied from an etcd data
   * dir (`member/snap/db`), which has none. Default false.
   */
  skipHashCheck?: boolean;
  /** Called after each hashed chunk and each imported batch. */
  onProgress?: (p: EtcdImportProgress) => void;
}

/** What {@linkcode importEtcdSnapshot} imported. */
export interface EtcdImportResult {
  /** The current revision of the store, as etcd had it. */
  revision: number;
  /** The compacted revision (reads below it fail); 0 when etcd never compacted. */
  compactRevision: number;
  /** Live keys at the current revision. */
  keys: number;
  /** Leases. */
  leases: number;
  /** Names of the buckets that held data and were not carried (see the module doc). */
  skipped: string[];
}

const LeasePb = new protobuf.Type("Lease")
  .add(new protobuf.Field("ID", 1, "int64"))
  .add(new protobuf.Field("TTL", 2, "int64"))
  .add(new protobuf.Field("RemainingTTL", 3, "int64"));
new protobuf.Root().add(LeasePb);

/** A leasepb.Lease. */
function decodeLease(bytes: Uint8Array): { id: bigint; ttl: number; remaining: number } {
  const msg = LeasePb.toObject(LeasePb.decode(bytes), { longs: String, defaults: true });
  return { id: BigInt(msg.ID), ttl: Number(msg.TTL), remaining: Number(msg.RemainingTTL) };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A key for a message: as text when it is printable ASCII, else as hex. */
function showKey(key: Uint8Array): string {
  const shown = key.subarray(0, 64);
  const printable = shown.every((b) => b >= 0x20 && b < 0x7f);
  const text = printable ? JSON.stringify(new TextDecoder().decode(shown)) : `0x${hex(shown)}`;
  return key.length > shown.length ? `${text}…` : text;
}

/**
 * Check the SHA-256 `etcdctl snapshot save` appends (etcdctl's rule: the
 * digest is there when the file's size is 32 more than a multiple of 512).
 * Returns the length of the database without the digest.
 */
async function checkHash(
  file: string,
  skip: boolean,
  onProgress: ((p: EtcdImportProgress) => void) | undefined,
): Promise<number> {
  const size = (await Deno.stat(file)).size;
  const hasHash = size % 512 === SHA256_BYTES;
  const length = hasHash ? size - SHA256_BYTES : size;
  if (skip) return length;
  if (!hasHash) {
    throw new EtcdImportError(
      `${file}: snapshot missing hash but --skip-hash-check=false (a file that is not from ` +
        `etcdctl snapshot save, or truncated)`,
    );
  }
  const hash = createHash("sha256");
  const buffer = new Uint8Array(SNAPSHOT_HASH_CHUNK_BYTES);
  const expected = new Uint8Array(SHA256_BYTES);
  using f = await Deno.open(file, { read: true });
  let at = 0;
  while (at < length) {
    const n = await f.read(buffer.subarray(0, Math.min(buffer.length, length - at)));
    if (n === null) throw new EtcdImportError(`${file}: truncated while it was read`);
    hash.update(buffer.subarray(0, n));
    at += n;
    onProgress?.({ keys: 0, bytes: at });
  }
  for (let got = 0; got < SHA256_BYTES;) {
    const n = await f.read(expected.subarray(got));
    if (n === null) throw new EtcdImportError(`${file}: truncated while it was read`);
    got += n;
  }
  const actual = new Uint8Array(hash.digest());
  if (compareBytes(actual, expected) !== 0) {
    throw new EtcdImportError(
      `${file}: hash mismatch: expected sha256 ${hex(expected)}, got ${hex(actual)} ` +
        `(the file is damaged or was changed)`,
    );
  }
  return length;
}

/** The main revision of an etcd revision value or key (bytesToRev's main). */
function mainRevision(file: string, bytes: Uint8Array, what: string): number {
  if (bytes.length < REVISION_KEY_BYTES || bytes[8] !== 0x5f) {
    throw new EtcdImportError(`${file}: ${what} is not an etcd revision (${hex(bytes)})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  if (view.getUint32(0) >= 0x20_0000) {
    throw new EtcdImportError(`${file}: ${what} is beyond 2^53 (${hex(bytes)})`);
  }
  return decodeRevision(bytes);
}

/** The sub revision of an etcd revision key (its change's index within the revision). */
function subRevision(file: string, key: Uint8Array): number {
  const view = new DataView(key.buffer, key.byteOffset + 9, 8);
  if (view.getUint32(0) !== 0 || view.getUint32(4) >= 0x8000_0000) {
    throw new EtcdImportError(`${file}: revision key ${hex(key)} has a sub revision beyond 2^31`);
  }
  return view.getUint32(4);
}

/** State of the walk over the `key` bucket. */
interface KeyWalk {
  /** Records imported. */
  records: number;
  /** The main revision of the last record, 0 before the first. */
  last: number;
}

/**
 * Write one record of etcd's `key` bucket (revision key `revKey`, KeyValue
 * `value`) as core/mvcc's WriteView writes a change, inside a write
 * transaction. Changes before `compactRev` get no `revlog` entry.
 */
function importRecord(
  file: string,
  backend: Backend,
  revKey: Uint8Array,
  value: Uint8Array,
  compactRev: number,
): number {
  const tombstone = revKey.length === REVISION_KEY_BYTES + 1 &&
    revKey[REVISION_KEY_BYTES] === TOMBSTONE_MARK;
  if (revKey.length !== REVISION_KEY_BYTES && !tombstone) {
    throw new EtcdImportError(`${file}: key bucket record ${hex(revKey)} is not a revision`);
  }
  const main = mainRevision(file, revKey, "a key bucket record");
  const sub = subRevision(file, revKey);
  let kv: KeyValue;
  try {
    kv = decodeMessage("KeyValue", value);
  } catch (err) {
    throw new EtcdImportError(
      `${file}: the record of revision ${main} is not an mvccpb.KeyValue`,
      { cause: err },
    );
  }
  const key = kv.key;
  if (key.length === 0) {
    throw new EtcdImportError(`${file}: the record of revision ${main} has no key`);
  }
  if (!isStorableKey(key)) {
    throw new EtcdImportError(
      `${file}: key ${showKey(key)} (${key.length} bytes) is longer than cairn stores ` +
        `(${MAX_STORED_KEY_BYTES - 10} bytes, less one per zero byte)`,
    );
  }
  if (!tombstone && kv.mod_revision !== main) {
    throw new EtcdImportError(
      `${file}: the record of revision ${main} says mod_revision ${kv.mod_revision}`,
    );
  }
  // The version this change replaces leaves `current` for `history`, under
  // its own revision; one written earlier in the same revision was never
  // visible (WriteView drops it the same way).
  const live = backend.get("current", key);
  if (live !== undefined) {
    const liveRev = recordModRevision(live);
    if (liveRev !== main) backend.put("history", historyKey(key, liveRev), live);
  }
  if (tombstone) {
    if (live !== undefined) backend.del("current", key);
    const deletion: KeyValue = {
      key,
      create_revision: 0,
      mod_revision: main,
      version: 0,
      value: new Uint8Array(0),
      lease: 0n,
    };
    backend.put("history", historyKey(key, main), encodeRecord(deletion, true));
  } else {
    backend.put("current", key, encodeRecord(kv, false));
  }
  if (main >= compactRev) backend.put("revlog", encodeRevlogKey(main, sub), key);
  return main;
}

/** Import `key`'s records in write transactions of bounded size. */
async function importKeys(
  file: string,
  db: BboltFile,
  keys: BboltBucket,
  backend: Backend,
  compactRev: number,
  onProgress: ((p: EtcdImportProgress) => void) | undefined,
): Promise<KeyWalk> {
  const walk: KeyWalk = { records: 0, last: 0 };
  const entries = keys.entries()[Symbol.iterator]();
  let done = false;
  while (!done) {
    await backend.write(() => {
      let bytes = 0;
      for (let n = 0; n < ETCD_IMPORT_BATCH_RECORDS && bytes < ETCD_IMPORT_BATCH_BYTES; n++) {
        const next = entries.next();
        if (next.done) {
          done = true;
          return;
        }
        const { key, value } = next.value;
        walk.last = importRecord(file, backend, key, value, compactRev);
        walk.records++;
        bytes += key.length + value.length;
      }
    });
    onProgress?.({ keys: walk.records, bytes: db.stats.bytesRead });
  }
  return walk;
}

/**
 * Fill an empty, freshly opened cairn store with an etcd snapshot's key
 * space: keys, values, create/mod revisions, versions and leases of every
 * version etcd kept, the current and compacted revisions, and the leases
 * (see the module doc for what is carried and what is not). Writes
 * `revision`, `compact_revision`/`compact_done` (when etcd compacted) and
 * `record_format` in `meta`; the member's identity (member and cluster IDs,
 * membership, applied index) is the caller's to record. Resolves once every
 * write is durable.
 *
 * On an error the store is left partly written: import into a store made
 * for the purpose, and discard it on failure.
 *
 * @param file path of an etcd snapshot: a bbolt database, with the 32-byte
 *   SHA-256 `etcdctl snapshot save` appends (or without, with
 *   `skipHashCheck`).
 * @param backend an empty store (no records, no revision in `meta`), as
 *   native/lmdb.ts `openBackend` opens a new one.
 * @throws {EtcdImportError} when the hash does not match or is missing, the
 *   file has no `key` or `meta` bucket (not an etcd snapshot), a record is
 *   not what etcd writes, or a key is longer than cairn stores.
 * @throws {BboltError} when the file is not a bbolt database, or is
 *   truncated or damaged.
 * @throws {InvariantError} when `backend` is not empty.
 */
export async function importEtcdSnapshot(
  file: string,
  backend: Backend,
  options: EtcdImportOptions = {},
): Promise<EtcdImportResult> {
  invariant(
    backend.getMeta(Meta.revision) === undefined && backend.count("current", {}) === 0 &&
      backend.count("history", {}) === 0 && backend.count("lease", {}) === 0,
    "an etcd snapshot is imported into an empty store",
  );
  const { onProgress } = options;
  const length = await checkHash(file, options.skipHashCheck ?? false, onProgress);
  const db = BboltFile.open(file, { length });
  try {
    const keys = db.bucket("key");
    const meta = db.bucket("meta");
    if (keys === undefined || meta === undefined) {
      throw new EtcdImportError(
        `${file}: not an etcd snapshot (a bbolt database without etcd's key and meta buckets)`,
      );
    }
    const revisionIn = (name: string): number | undefined => {
      const bytes = meta.get(name);
      return bytes === undefined ? undefined : mainRevision(file, bytes, `meta ${name}`);
    };
    const finished = revisionIn("finishedCompactRev");
    const scheduled = revisionIn("scheduledCompactRev");
    const compacted = finished !== undefined || scheduled !== undefined;
    const compactRev = Math.max(finished ?? 0, scheduled ?? 0);

    const leases = await importLeases(file, db.bucket("lease"), backend);
    const walk = await importKeys(file, db, keys, backend, compactRev, onProgress);
    const revision = Math.max(walk.last, compactRev, 1);
    await backend.write(() => {
      backend.putMeta(Meta.recordFormat, RECORD_FORMAT);
      backend.putMeta(Meta.revision, revision);
      if (compacted) {
        backend.putMeta(Meta.compactRevision, compactRev);
        // etcd removed the history below its finished compaction already.
        if (finished !== undefined) backend.putMeta(Meta.compactDone, finished);
      }
    });
    if (compactRev > (finished ?? 0)) await compactHistory(backend, compactRev);
    await backend.flushed();
    return {
      revision,
      compactRevision: compactRev,
      keys: backend.count("current", {}),
      leases,
      skipped: skippedBuckets(db),
    };
  } finally {
    db.close();
  }
}

/** Copy etcd's `lease` bucket into the `lease` table; returns how many leases. */
async function importLeases(
  file: string,
  bucket: BboltBucket | undefined,
  backend: Backend,
): Promise<number> {
  if (bucket === undefined) return 0;
  const records: [Uint8Array, Uint8Array][] = [];
  let count = 0;
  for (const { key, value } of bucket.entries()) {
    let lease: { id: bigint; ttl: number; remaining: number };
    try {
      lease = decodeLease(value);
    } catch (err) {
      throw new EtcdImportError(
        `${file}: lease record ${hex(key)} is not a leasepb.Lease`,
        { cause: err },
      );
    }
    if (lease.id === 0n || compareBytes(leaseKey(lease.id), key) !== 0) {
      throw new EtcdImportError(`${file}: lease record ${hex(key)} holds lease ${lease.id}`);
    }
    records.push([key.slice(), leaseRecord(lease.ttl, lease.remaining)]);
    count++;
    if (records.length >= ETCD_IMPORT_BATCH_RECORDS) await writeAll(backend, records);
  }
  await writeAll(backend, records);
  return count;
}

/** Write `records` into the `lease` table in one transaction, and empty the array. */
async function writeAll(backend: Backend, records: [Uint8Array, Uint8Array][]): Promise<void> {
  await backend.write(() => {
    for (const [key, value] of records) backend.put("lease", key, value);
  });
  records.length = 0;
}

/**
 * Buckets with data that the import does not carry, besides those every etcd
 * has (`members`, `members_removed`, `cluster`): `alarm` with an alarm,
 * `auth` when auth was enabled, `authUsers` and `authRoles` with any entry,
 * and any bucket etcd 3.4 does not write.
 */
function skippedBuckets(db: BboltFile): string[] {
  const skipped: string[] = [];
  const root = db.root();
  for (const name of root.bucketNames()) {
    const text = new TextDecoder().decode(name);
    if (CARRIED.has(text) || ALWAYS_THERE.has(text)) continue;
    const bucket = root.bucket(name);
    if (bucket === undefined) continue;
    if (text === "auth") {
      const enabled = bucket.get("authEnabled");
      if (enabled !== undefined && enabled.length === 1 && enabled[0] === 1) skipped.push(text);
      continue;
    }
    if (!bucket.entries().next().done) skipped.push(text);
  }
  return skipped;
}
