/**
 * The LMDB environment of one member, through the `lmdb` npm package's native
 * binding. The only module that imports `lmdb`. See native/README.md for the
 * tables, their encodings and how a write transaction reaches disk.
 *
 * @module
 */
import { open, type RootDatabase } from "lmdb";
import type { Backend, Entry, ScanOptions, Table } from "../core/backend.ts";
import { invariant } from "../core/invariant.ts";
import {
  INITIAL_MAP_BYTES,
  LMDB_COMMIT_INTERVAL_MS,
  LMDB_PAGE_BYTES,
  READ_ARENA_BYTES,
  READ_ARENA_MAX_COPY,
} from "../core/limits.ts";

/** Options of {@linkcode openBackend}. */
export interface BackendOptions {
  /**
   * Initial memory map size in bytes; LMDB grows it when full. Default 256 MiB.
   */
  mapSize?: number;
  /**
   * Told of every commit of the backend's write queue: the seconds from
   * handing the transaction to LMDB until it was visible (or failed). For
   * etcd's etcd_disk_backend_commit_duration_seconds.
   */
  onCommit?: (seconds: number) => void;
}

const TABLES: Table[] = ["current", "history", "revlog", "lease"];

type Db = ReturnType<RootDatabase["openDB"]>;

/** lmdb-js put options for MDB_APPEND (its types omit `append`). */
const APPEND = { append: true } as unknown as number;

const ARENA_BYTES = READ_ARENA_BYTES;
const ARENA_MAX_COPY = READ_ARENA_MAX_COPY;
let arena = new Uint8Array(ARENA_BYTES);
let arenaUsed = 0;

/**
 * Copy bytes [start, end) of `src` (lmdb-js's shared read buffer) out as a
 * fresh Uint8Array that nothing else writes to. Small copies share 64 KiB
 * arena chunks: allocating a buffer per key or value (as lmdb-js's binary
 * mode does, with a Buffer each) dominated the cost of a range scan.
 */
function copyOut(src: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  const from = new Uint8Array(src.buffer, src.byteOffset + start, n);
  if (n > ARENA_MAX_COPY) return from.slice();
  if (arenaUsed + n > ARENA_BYTES) {
    arena = new Uint8Array(ARENA_BYTES);
    arenaUsed = 0;
  }
  const out = arena.subarray(arenaUsed, arenaUsed + n);
  out.set(from);
  arenaUsed += n;
  return out;
}

/** Values are raw bytes, copied out of lmdb-js's read buffer by {@linkcode copyOut}. */
const BYTES = {
  encode: (value: Uint8Array): Uint8Array => value,
  decode: (bytes: Uint8Array, size?: number): Uint8Array => copyOut(bytes, 0, size ?? bytes.length),
};

/**
 * Keys stay lmdb-js "binary" keys (raw bytes, bytewise order, and the
 * iteration bounds lmdb-js assumes for them), but are read out by
 * {@linkcode copyOut} instead of as one Buffer each.
 */
function withKeyReader(db: Db): Db {
  (db as unknown as { readKey: (s: Uint8Array, a: number, b: number) => Uint8Array }).readKey = (
    source,
    start,
    end,
  ) => copyOut(source, start, end);
  return db;
}

/** Key of a binary key in the overlay maps (bytes as latin1 code units). */
function mapKey(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * The writes of one transaction, held in memory until the transaction ends:
 * reads inside it see them, reads outside do not. `null` marks a deletion.
 */
class Overlay {
  readonly tables = new Map<Table, Map<string, { key: Uint8Array; value: Uint8Array | null }>>();
  readonly meta = new Map<string, unknown>();

  table(table: Table) {
    let m = this.tables.get(table);
    if (m === undefined) this.tables.set(table, m = new Map());
    return m;
  }

  /** Overlay records of `table` within the bounds, in scan order. */
  within(table: Table, o: ScanOptions): { key: Uint8Array; value: Uint8Array | null }[] {
    const m = this.tables.get(table);
    if (m === undefined || m.size === 0) return [];
    const out = [...m.values()].filter((r) =>
      (o.start === undefined || compareBytes(r.key, o.start) >= 0) &&
      (o.end === undefined || compareBytes(r.key, o.end) < 0)
    );
    out.sort((a, b) => compareBytes(a.key, b.key));
    if (o.reverse) out.reverse();
    return out;
  }
}

class LmdbBackend implements Backend {
  #env!: RootDatabase;
  #tables!: Map<Table, Db>;
  #meta!: Db;
  #path: string;
  #options: BackendOptions;
  /** Closed by {@linkcode LmdbBackend.suspend} until {@linkcode LmdbBackend.resume}. */
  #suspended = false;
  /** Copies in progress ({@linkcode LmdbBackend.copyTo}): the environment stays open for them. */
  #copies = new Set<Promise<unknown>>();
  /** The open write transaction's writes, while its callback runs. */
  #overlay: Overlay | null = null;
  /** Writes not yet committed (queued or handed to lmdb-js), oldest first. */
  #pending: Overlay[] = [];
  /** Settles when every write handed over so far is committed. */
  #last: Promise<unknown> = Promise.resolve();
  /** Transactions computed but not yet handed to lmdb-js, merged into one overlay. */
  #queued:
    | { overlay: Overlay; waiters: { resolve: () => void; reject: (err: unknown) => void }[] }
    | undefined;
  /** Whether a commit is in progress. */
  #committing = false;
  /** When the last commit started (performance.now(), ms). */
  #lastCommit = 0;
  /** A reader waits for the queued writes: commit them as soon as the commit in progress ends. */
  #urgent = false;
  /** The timer that starts the next commit once LMDB_COMMIT_INTERVAL_MS have passed. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Per table, a key at or above every key it holds once the writes handed
   * over so far are done (undefined: the table is empty): the highest key
   * stored at open or put since. Deletions leave it as it is; a failed
   * commit leaves it too high, which only makes later puts plain ones.
   */
  #highest = new Map<Table, Uint8Array>();

  readonly #onCommit: ((seconds: number) => void) | undefined;

  constructor(path: string, options: BackendOptions) {
    this.#path = path;
    this.#onCommit = options.onCommit;
    this.#options = options;
    this.#open();
  }

  /** Open the environment in the directory and its tables. */
  #open(): void {
    const path = this.#path;
    const options = this.#options;
    this.#env = open({
      path,
      compression: false,
      mapSize: options.mapSize ?? INITIAL_MAP_BYTES,
      // A commit is visible at once and made durable in the background;
      // LMDB keeps the last durable transaction intact until the next sync
      // completes, so an OS crash rolls back to it, never to a torn state.
      // The WAL is the durable copy of every acknowledged write: the raft
      // node applies an entry only after its WAL record is synced, and a
      // restart replays what LMDB lost (wal/README.md).
      overlappingSync: true,
      maxDbs: 16,
      // Larger than LMDB's default 4 KiB: pages hold more records, so the
      // space a page split leaves unused is a smaller share (native/README.md,
      // Page use). An existing environment keeps the page size it was made with.
      pageSize: LMDB_PAGE_BYTES,
    });
    this.#tables = new Map();
    for (const name of TABLES) {
      this.#tables.set(
        name,
        withKeyReader(this.#env.openDB(
          // A custom encoder is an lmdb-js option its types omit.
          { name, keyEncoding: "binary", encoder: BYTES, cache: false } as { name: string },
        )),
      );
    }
    this.#meta = this.#env.openDB({ name: "meta", cache: false });
    for (const [name, db] of this.#tables) {
      for (const key of db.getKeys({ reverse: true, limit: 1 })) {
        this.#highest.set(name, (key as Uint8Array).slice());
      }
    }
  }

  #db(table: Table): Db {
    invariant(!this.#suspended, "the store is not read while it is suspended");
    return this.#tables.get(table)!;
  }

  /** Inside a write: its overlay, then the pending ones, newest first. */
  #layers(): Overlay[] {
    if (this.#overlay === null) return [];
    const layers = [this.#overlay];
    for (let i = this.#pending.length - 1; i >= 0; i--) layers.push(this.#pending[i]);
    return layers;
  }

  get(table: Table, key: Uint8Array): Uint8Array | undefined {
    if (this.#overlay !== null) {
      const k = mapKey(key);
      for (const layer of this.#layers()) {
        const pending = layer.tables.get(table)?.get(k);
        if (pending !== undefined) return pending.value ?? undefined;
      }
    }
    return this.#db(table).get(key as Buffer) as Uint8Array | undefined;
  }

  scan(table: Table, options: ScanOptions): Iterable<Entry> {
    const pending = this.#overlay === null ? [] : this.#combined().within(table, options);
    const limit = options.limit ?? Infinity;
    // Overlay records replace stored ones; read one more stored record per
    // overlay record so that the limit still holds after replacements.
    const stored = this.#storedScan(
      table,
      pending.length > 0 && options.limit !== undefined
        ? { ...options, limit: options.limit + pending.length }
        : options,
    );
    if (pending.length === 0) return stored;
    return merge(stored, pending, options.reverse ?? false, limit);
  }

  #storedScan(table: Table, options: ScanOptions): Iterable<Entry> {
    const db = this.#db(table);
    // A reverse lmdb-js range starts AT its start key; the bound here is exclusive.
    if (options.reverse && options.end !== undefined) {
      const limit = options.limit ?? Infinity;
      const wider = { ...options, limit: options.limit === undefined ? undefined : limit + 1 };
      return skipKey(
        db.getRange(rangeOptions(wider)) as unknown as Iterable<Entry>,
        options.end,
        limit,
      );
    }
    return db.getRange(rangeOptions(options)) as unknown as Iterable<Entry>;
  }

  /** The overlays of the open write and the pending ones as one. */
  #combined(): Overlay {
    if (this.#pending.length === 0) return this.#overlay!;
    const all = new Overlay();
    for (const layer of [...this.#pending, this.#overlay!]) {
      for (const [table, records] of layer.tables) {
        const into = all.table(table);
        for (const [k, r] of records) into.set(k, r);
      }
    }
    return all;
  }

  count(table: Table, options: ScanOptions): number {
    if (this.#layers().some((layer) => layer.tables.get(table)?.size)) {
      let n = 0;
      for (const _ of this.scan(table, options)) n++;
      return n;
    }
    return this.#db(table).getKeysCount(rangeOptions(options));
  }

  put(table: Table, key: Uint8Array, value: Uint8Array): void {
    this.#writing().table(table).set(mapKey(key), { key, value });
  }

  del(table: Table, key: Uint8Array): void {
    this.#writing().table(table).set(mapKey(key), { key, value: null });
  }

  getMeta(name: string): unknown {
    for (const layer of this.#layers()) {
      if (layer.meta.has(name)) return layer.meta.get(name);
    }
    invariant(!this.#suspended, "the store is not read while it is suspended");
    return this.#meta.get(name);
  }

  inWrite(): boolean {
    return this.#overlay !== null;
  }

  putMeta(name: string, value: unknown): void {
    this.#writing().meta.set(name, value);
  }

  #writing(): Overlay {
    invariant(this.#overlay !== null, "backend writes happen inside Backend.write");
    return this.#overlay;
  }

  /**
   * Run `fn` at once, on the main thread, against the committed state plus
   * the writes of earlier transactions not yet committed plus its own writes
   * (held in an overlay). Its writes are then handed to lmdb-js, at once or,
   * while a commit is in progress, together with every transaction queued
   * until it ends ({@linkcode LmdbBackend.#commitQueued}); lmdb-js commits
   * them on its write thread, in the order `write` was called. So a caller
   * may prepare the next transaction while the previous one is being
   * written. Resolves once the commit is visible to readers;
   * {@linkcode LmdbBackend.flushed} tells when it is durable.
   */
  write<T>(fn: () => T): Promise<T> {
    const overlay = new Overlay();
    this.#overlay = overlay;
    let result: T;
    try {
      result = fn();
    } catch (err) {
      return Promise.reject(err);
    } finally {
      this.#overlay = null;
    }
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    // Transactions queued behind a commit in progress merge into ONE overlay
    // (a later write to a key wins), so reads inside the next `write` walk
    // at most two pending layers however many are queued.
    let group = this.#queued;
    if (group === undefined) {
      group = this.#queued = { overlay, waiters: [] };
      this.#pending.push(overlay);
    } else {
      for (const [table, records] of overlay.tables) {
        const into = group.overlay.table(table);
        for (const [k, r] of records) into.set(k, r);
      }
      for (const [name, value] of overlay.meta) group.overlay.meta.set(name, value);
    }
    group.waiters.push({ resolve: () => resolve(result), reject });
    this.#schedule();
    this.#last = promise.catch(ignore);
    return promise;
  }

  /**
   * Start the next commit when none is in progress, but not sooner than
   * LMDB_COMMIT_INTERVAL_MS after the previous one started: each commit
   * costs a sync of the data file, which competes with the WAL's fdatasync
   * for the disk, so under steady writes LMDB commits a group of
   * transactions at a bounded rate while the WAL syncs each Ready.
   */
  #schedule(): void {
    if (this.#committing || this.#queued === undefined) return;
    if (this.#urgent) {
      this.#urgent = false;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#commitQueued();
      return;
    }
    if (this.#timer !== undefined) return;
    const wait = this.#lastCommit + LMDB_COMMIT_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.#commitQueued();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#schedule();
    }, wait);
  }

  commitSoon(): void {
    if (this.#queued === undefined) return;
    this.#urgent = true;
    this.#schedule();
  }

  /**
   * Hand the queued group to lmdb-js as ONE LMDB transaction, each table's
   * records in key order. If the commit fails, the group fails, and so does
   * everything queued after it (computed on top of it): none of it is
   * written.
   */
  #commitQueued(): void {
    const group = this.#queued!;
    this.#queued = undefined;
    this.#committing = true;
    const start = this.#lastCommit = performance.now();
    // Every put of this event turn is one transaction: their promises settle
    // together, so the last one stands for all (the others get a handler,
    // or a failed commit would surface as unhandled rejections).
    let committed: Promise<boolean> | undefined;
    const handled = (p: Promise<boolean>) => {
      committed?.catch(ignore);
      committed = p;
    };
    const tables = group.overlay.tables;
    const appended: Promise<boolean>[] = [];
    for (const [table, records] of tables) {
      const db = this.#db(table);
      const before = this.#highest.get(table);
      let highest = before;
      for (const { key, value } of inKeyOrder(records)) {
        if (value === null) {
          handled(db.remove(key as Buffer));
        } else if (highest === undefined || compareBytes(key, highest) > 0) {
          // A key past every stored one is put with MDB_APPEND: when its leaf
          // is full, LMDB starts a new page for it and leaves the full one
          // as it is, where a plain put would move half the leaf (or, at the
          // end of a leaf, all but one record) to the new page. Keys arriving
          // in order so fill whole pages (native/README.md, Page use).
          const p = db.put(key as Buffer, value, APPEND);
          handled(p);
          appended.push(p);
          highest = key;
        } else {
          handled(db.put(key as Buffer, value));
        }
      }
      if (highest !== before) this.#highest.set(table, highest!.slice());
    }
    for (const [name, value] of group.overlay.meta) handled(this.#meta.put(name, value));
    const done = (err?: unknown) => {
      this.#onCommit?.((performance.now() - start) / 1000);
      const groups = [group];
      if (err !== undefined && this.#queued !== undefined) {
        groups.push(this.#queued);
        this.#queued = undefined;
      }
      for (const g of groups) {
        this.#pending.splice(this.#pending.indexOf(g.overlay), 1);
        for (const w of g.waiters) {
          if (err === undefined) w.resolve();
          else w.reject(err);
        }
      }
      this.#committing = false;
      this.#schedule();
    };
    if (committed === undefined) {
      queueMicrotask(() => done());
      return;
    }
    // An append below the table's last key is refused (MDB_KEYEXIST) and
    // resolves false. `#highest` rules that out while this object is the
    // environment's only writer; were it not, the write must fail loudly.
    committed.then(async () => {
      const ok = (await Promise.all(appended)).every((a) => a);
      done(ok ? undefined : new Error("LMDB refused an append: the store has another writer"));
    }, async (err) => done(await commitCause(err)));
  }

  flushed(): Promise<void> {
    return Promise.resolve(this.#env.flushed).then(() => {});
  }

  refresh(): void {
    // lmdb-js keeps one read transaction per thread; resetting it makes the
    // next read renew it at the newest commit.
    if (this.#overlay === null) this.#meta.resetReadTxn();
  }

  size(): { dbSize: number; dbSizeInUse: number } {
    let dbSize = 0;
    try {
      dbSize = Deno.statSync(`${this.#path}/data.mdb`).size;
    } catch {
      dbSize = 0;
    }
    // In use: the pages of every tree (mdb_stat reads them off each tree's
    // root record, no scan) and the two meta pages; the rest of the file is
    // free pages LMDB reuses, which etcd's dbSizeInUse leaves out too.
    let pages = 2;
    let last: Record<string, unknown> = {};
    for (const db of [...this.#tables.values(), this.#meta]) {
      last = db.getStats() as Record<string, unknown>;
      pages += treePages(last);
    }
    pages += treePages(last.root as Record<string, unknown>);
    pages += treePages(last.free as Record<string, unknown>);
    const pageSize = last.pageSize as number;
    const total = ((last.lastPageNumber as number) + 1) * pageSize;
    return { dbSize: Math.max(dbSize, total), dbSizeInUse: Math.min(pages * pageSize, total) };
  }

  async copyTo(dir: string, compact = false): Promise<string> {
    invariant(!this.#suspended, "a suspended store is not copied");
    Deno.mkdirSync(dir, { recursive: true });
    // mdb_env_copy2 in one read transaction: the newest committed state
    // (with MDB_CP_COMPACT: free pages left out, pages renumbered).
    const copy = this.#env.backup(dir, compact);
    this.#copies.add(copy);
    try {
      await copy;
    } finally {
      this.#copies.delete(copy);
    }
    return `${dir}/data.mdb`;
  }

  async suspend(): Promise<void> {
    invariant(!this.#suspended, "a store is suspended once at a time");
    invariant(this.#overlay === null, "a store is not suspended inside a write");
    while (this.#copies.size > 0) await Promise.allSettled([...this.#copies]);
    await this.#last;
    await this.#env.flushed;
    this.#suspended = true;
    await this.#env.close();
  }

  resume(): void {
    invariant(this.#suspended, "only a suspended store resumes");
    this.#suspended = false;
    this.#open();
  }

  async swapIn(file: string): Promise<void> {
    await this.suspend();
    try {
      Deno.renameSync(file, `${this.#path}/data.mdb`);
    } finally {
      this.resume();
    }
  }

  async close(): Promise<void> {
    await this.#last;
    await this.#env.flushed;
    await this.#env.close();
  }
}

function ignore(): void {}

/** Pages of one B+tree from lmdb-js's `getStats()` record (branch, leaf and overflow). */
function treePages(stats: Record<string, unknown>): number {
  return (stats.treeBranchPageCount as number) + (stats.treeLeafPageCount as number) +
    (stats.overflowPages as number);
}

/** LMDB's file magic (`MDB_MAGIC`), the first field of a meta page. */
const LMDB_MAGIC = 0xbeefc0de;
/** The data file version of the LMDB in lmdb-js 3 (`MDB_DATA_VERSION`). */
const LMDB_DATA_VERSION = 2;
/** Bytes of lmdb-js 3's page header (`PAGEHDRSZ`); a meta page's fields follow it. */
const LMDB_PAGE_HEADER_BYTES = 24;
/** Offsets in a meta page: magic, version, page size (`mm_dbs[0].md_pad`), last page, txnid. */
const META_MAGIC = LMDB_PAGE_HEADER_BYTES;
const META_VERSION = LMDB_PAGE_HEADER_BYTES + 4;
const META_PAGE_SIZE = LMDB_PAGE_HEADER_BYTES + 24;
const META_LAST_PAGE = LMDB_PAGE_HEADER_BYTES + 120;
const META_TXNID = LMDB_PAGE_HEADER_BYTES + 128;
/** Bytes of a meta page read to learn the above. */
const META_READ_BYTES = META_TXNID + 8;

/** What the meta pages of an LMDB environment file say about its size. */
export interface EnvironmentHeader {
  /** Bytes per page. */
  pageSize: number;
  /** The highest page number in use, per the newest of the two meta pages. */
  lastPage: number;
  /** Bytes the file must hold for that state: (lastPage + 1) × pageSize. */
  bytes: number;
}

/**
 * Whether `head` (a file's first bytes, at least 32) starts as an LMDB
 * environment file of the format lmdb-js 3 writes: page 0 is a meta page
 * with MDB_MAGIC (0xBEEFC0DE, little-endian) after its 24-byte header.
 */
export function isEnvironmentFile(head: Uint8Array): boolean {
  if (head.length < META_VERSION + 4) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return view.getUint32(META_MAGIC, true) === LMDB_MAGIC &&
    view.getUint32(META_VERSION, true) === LMDB_DATA_VERSION;
}

/**
 * Read the two meta pages of the LMDB environment file `file` (such as the
 * data part of a snapshot): the page size and the last page the newest
 * committed state uses, so a caller can tell a whole file from a truncated
 * one before LMDB maps it (a read past the end of a mapped file kills the
 * process).
 *
 * @throws {Error} naming the file when it is not an LMDB environment of
 *   this format, or its meta pages are unreadable.
 */
export async function readEnvironmentHeader(file: string): Promise<EnvironmentHeader> {
  using f = await Deno.open(file, { read: true });
  const readAt = async (offset: number): Promise<DataView | undefined> => {
    const buf = new Uint8Array(META_READ_BYTES);
    await f.seek(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < buf.length) {
      const r = await f.read(buf.subarray(n));
      if (r === null) return undefined;
      n += r;
    }
    return isEnvironmentFile(buf) ? new DataView(buf.buffer) : undefined;
  };
  const first = await readAt(0);
  if (first === undefined) throw new Error(`${file} is not an LMDB environment file`);
  const pageSize = first.getUint32(META_PAGE_SIZE, true);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new Error(`${file}: LMDB meta page names a page size of ${pageSize} bytes`);
  }
  let meta = first;
  const second = await readAt(pageSize);
  if (
    second !== undefined &&
    second.getBigUint64(META_TXNID, true) > first.getBigUint64(META_TXNID, true)
  ) {
    meta = second;
  }
  const lastPage = Number(meta.getBigUint64(META_LAST_PAGE, true));
  return { pageSize, lastPage, bytes: (lastPage + 1) * pageSize };
}

/** A read-only LMDB environment file, such as a snapshot received from the leader. */
export interface EnvironmentFile {
  /** The records of `table`, in key order (keys and values are copies). */
  scan(table: Table): Iterable<Entry>;
  /** A metadata value. */
  getMeta(name: string): unknown;
  /** Close the file. */
  close(): Promise<void>;
}

/**
 * Open the environment file `file` (a `data.mdb` written by
 * {@linkcode Backend.copyTo}) read-only.
 *
 * @throws {Error} when it is not an LMDB environment.
 */
export function openEnvironmentFile(file: string): EnvironmentFile {
  const env = open({ path: file, compression: false, maxDbs: 16, readOnly: true, noSubdir: true });
  const tables = new Map<Table, Db>();
  for (const name of TABLES) {
    tables.set(
      name,
      env.openDB({ name, keyEncoding: "binary", encoder: BYTES, cache: false } as { name: string }),
    );
  }
  const meta = env.openDB({ name: "meta", cache: false });
  return {
    *scan(table: Table): Iterable<Entry> {
      for (const { key, value } of tables.get(table)!.getRange({})) {
        yield { key: (key as Uint8Array).slice(), value: (value as Uint8Array).slice() };
      }
    },
    getMeta: (name) => meta.get(name),
    close: () => env.close(),
  };
}

// When a commit fails (a full disk), lmdb-js 3.5.6 also rejects a promise of
// its own that no caller holds (the write instruction that starts each
// event-turn batch), which would end the process as an unhandled rejection.
// The failure reaches cairn through the promises `write` awaits; that one is
// recognised by lmdb-js's message and its `commitError` field, and dropped.
globalThis.addEventListener("unhandledrejection", (e) => {
  const reason: unknown = e.reason;
  if (
    reason instanceof Error && "commitError" in reason &&
    reason.message.startsWith("Commit failed")
  ) {
    e.preventDefault();
  }
});

/**
 * lmdb-js rejects a failed commit with "Commit failed" and carries the
 * cause (e.g. ENOSPC) in a second promise, `commitError`, which must be
 * handled too. Resolves with the cause.
 */
async function commitCause(err: unknown): Promise<unknown> {
  const detail = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (detail === undefined) return err;
  try {
    await detail;
    return err;
  } catch (cause) {
    return cause;
  }
}

/**
 * The records of one table's overlay in key order (overlay map keys compare
 * as the bytes they encode). A batch of several txns arrives in the order
 * they were applied; handing LMDB each table's keys ascending lets the keys
 * past the table's end go in by MDB_APPEND and the others fill the gaps
 * left to right.
 */
function inKeyOrder(
  records: Map<string, { key: Uint8Array; value: Uint8Array | null }>,
): Iterable<{ key: Uint8Array; value: Uint8Array | null }> {
  let prev: string | undefined;
  let sorted = true;
  for (const k of records.keys()) {
    if (prev !== undefined && k < prev) {
      sorted = false;
      break;
    }
    prev = k;
  }
  if (sorted) return records.values();
  return [...records.keys()].sort().map((k) => records.get(k)!);
}

/** Merge a stored scan with overlay records (which win on equal keys). */
function* merge(
  stored: Iterable<Entry>,
  pending: { key: Uint8Array; value: Uint8Array | null }[],
  reverse: boolean,
  limit: number,
): Iterable<Entry> {
  const dir = reverse ? -1 : 1;
  let i = 0;
  let n = 0;
  const emit = function* (r: { key: Uint8Array; value: Uint8Array | null }) {
    if (r.value !== null && n < limit) {
      n++;
      yield { key: r.key, value: r.value };
    }
  };
  for (const entry of stored) {
    while (i < pending.length && dir * compareBytes(pending[i].key, entry.key) < 0) {
      yield* emit(pending[i++]);
    }
    if (n >= limit) return;
    if (i < pending.length && compareBytes(pending[i].key, entry.key) === 0) {
      yield* emit(pending[i++]);
    } else {
      n++;
      yield entry;
    }
    if (n >= limit) return;
  }
  while (i < pending.length && n < limit) yield* emit(pending[i++]);
}

function* skipKey(range: Iterable<Entry>, key: Uint8Array, limit: number): Iterable<Entry> {
  let n = 0;
  for (const entry of range) {
    if (n >= limit) return;
    if (compareBytes(entry.key, key) === 0) continue;
    n++;
    yield entry;
  }
}

function rangeOptions(options: ScanOptions) {
  const o: Record<string, unknown> = {};
  if (options.reverse) {
    if (options.end !== undefined) o.start = options.end;
    if (options.start !== undefined) o.end = options.start;
    o.reverse = true;
  } else {
    if (options.start !== undefined) o.start = options.start;
    if (options.end !== undefined) o.end = options.end;
  }
  if (options.limit !== undefined) o.limit = options.limit;
  return o;
}

/**
 * Open (creating if needed) the LMDB environment in directory `path` and
 * return it as a {@linkcode Backend}.
 *
 * @throws {Error} when the directory cannot be created or the environment
 *   cannot be opened (permissions, another process holding it incompatibly).
 */
export function openBackend(path: string, options: BackendOptions = {}): Backend {
  Deno.mkdirSync(path, { recursive: true });
  return new LmdbBackend(path, options);
}

/** Pages one LMDB table (or the free list) occupies, from `mdb_stat`. */
export interface TablePages {
  /** Records in the table. */
  entries: number;
  /** Branch (interior) pages of its B+tree. */
  branch: number;
  /** Leaf pages of its B+tree. */
  leaf: number;
  /** Overflow pages: values too large for a leaf, each in pages of its own. */
  overflow: number;
}

/** Page usage of an LMDB environment, as {@linkcode environmentStats} reports it. */
export interface EnvironmentStats {
  /** Bytes per page. */
  pageSize: number;
  /** Pages the file holds up to its highest page in use (its used size ÷ page size). */
  pagesTotal: number;
  /** Pages of each table, by name (`current`, `history`, `revlog`, `meta`). */
  tables: Record<string, TablePages>;
  /** Pages of LMDB's own trees: the table directory and the free list's tree. */
  internal: number;
  /**
   * Pages held by no tree: free pages LMDB will reuse, plus the two meta
   * pages (pagesTotal minus every tree's pages).
   */
  free: number;
}

/**
 * Page usage of the LMDB environment in directory `path` (one that no other
 * process has open for writing, such as a stopped member's): per table, and
 * the free pages. For measurements (bench/footprint.ts), not the serving path.
 */
export async function environmentStats(path: string): Promise<EnvironmentStats> {
  const env = open({ path, compression: false, overlappingSync: true, maxDbs: 16, readOnly: true });
  try {
    const pages = (s: Record<string, number>): TablePages => ({
      entries: s.entryCount,
      branch: s.treeBranchPageCount,
      leaf: s.treeLeafPageCount,
      overflow: s.overflowPages,
    });
    const tables: Record<string, TablePages> = {};
    let inTrees = 0;
    let stats: Record<string, unknown> = {};
    for (const name of [...TABLES, "meta"]) {
      const db = env.openDB({ name, keyEncoding: "binary", cache: false } as { name: string });
      stats = db.getStats() as Record<string, unknown>;
      const t = pages(stats as Record<string, number>);
      tables[name] = t;
      inTrees += t.branch + t.leaf + t.overflow;
    }
    const root = pages(stats.root as Record<string, number>);
    const freeTree = pages(stats.free as Record<string, number>);
    const internal = root.branch + root.leaf + root.overflow + freeTree.branch + freeTree.leaf +
      freeTree.overflow;
    const pagesTotal = (stats.lastPageNumber as number) + 1;
    return {
      pageSize: stats.pageSize as number,
      pagesTotal,
      tables,
      internal,
      free: pagesTotal - inTrees - internal,
    };
  } finally {
    await env.close();
  }
}
