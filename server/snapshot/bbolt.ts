/**
 * A read-only reader of bbolt database files (the storage file of etcd, and
 * what `etcdctl snapshot save` writes), read page by page from disk: memory
 * holds the pages on the path from a bucket's root to the current leaf, not
 * the file.
 *
 * The format (bbolt 1.3, file version 2; all integers little-endian):
 * - The file is a sequence of pages of `pageSize` bytes; page `n` starts at
 *   byte `n × pageSize`. A page starts with a 16-byte header: id (u64, its
 *   own page number), flags (u16: 0x01 branch, 0x02 leaf, 0x04 meta,
 *   0x10 freelist), count (u16, elements), overflow (u32: the page continues
 *   over that many following pages, for values longer than a page).
 * - Pages 0 and 1 are meta pages; after the header: magic (u32 0xED0CDAED),
 *   version (u32, 2), pageSize (u32), flags (u32), root bucket (root page id
 *   u64, sequence u64), freelist page id (u64), high-water page id (u64: the
 *   file's pages are those below it), txid (u64), checksum (u64: FNV-1a 64
 *   of the 56 bytes before it). The valid one with the higher txid is the
 *   current state, as bbolt chooses.
 * - A branch page's elements are {pos u32, ksize u32, child page id u64}
 *   (16 bytes each); a leaf page's are {flags u32, pos u32, ksize u32,
 *   vsize u32}. `pos` counts from the element's own start; the key's bytes
 *   follow there, then (on a leaf) the value's. Elements are in key order.
 * - A leaf element with flag 0x01 is a nested bucket: its value is the
 *   bucket's root page id (u64) and sequence (u64), and when the root page id
 *   is 0 the bucket is inline: its one leaf page follows in the value itself.
 *   The named buckets of a file are the elements of the root bucket (meta's).
 *
 * Every page is checked as it is read: its id, its type, its elements within
 * its bytes, its children below the high-water mark, keys strictly
 * ascending, and the tree no deeper than {@linkcode BBOLT_MAX_TREE_DEPTH}; a
 * file that fails gets a {@linkcode BboltError} naming the file and what is
 * wrong.
 *
 * @example
 * ```ts
 * const db = BboltFile.open("snapshot.db");
 * try {
 *   for (const { key, value } of db.bucket("key")?.entries() ?? []) console.log(key, value);
 * } finally {
 *   db.close();
 * }
 * ```
 *
 * @module
 */
import fnv1a from "@sindresorhus/fnv1a";
import { compareBytes } from "../../core/mvcc/encoding.ts";
import { BBOLT_MAX_PAGE_RUN_BYTES, BBOLT_MAX_TREE_DEPTH } from "../../core/limits.ts";

/** bbolt's magic number, the first field of a meta page. */
const MAGIC = 0xed0cdaed;
/** The data file version this reader knows (bbolt's `version`). */
const VERSION = 2;
const PAGE_HEADER_BYTES = 16;
const ELEMENT_BYTES = 16;
const BUCKET_HEADER_BYTES = 16;
/** Bytes of a meta page's fields covered by its checksum. */
const META_SUM_BYTES = 56;
const BRANCH_PAGE = 0x01;
const LEAF_PAGE = 0x02;
const BUCKET_LEAF = 0x01;
/** The smallest page size accepted (bbolt looks for the second meta page from 1 KiB on). */
const MIN_PAGE_BYTES = 1024;
/** The largest page size accepted (bbolt looks for the second meta page up to 16 MiB). */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;

/** Thrown for a file that is not a bbolt database, or is truncated or damaged. */
export class BboltError extends Error {
  /**
   * Builds the error.
   * @param message names the file and what is wrong with it.
   */
  constructor(message: string) {
    super(message);
    this.name = "BboltError";
  }
}

/** One key-value pair of a bucket. */
export interface BboltEntry {
  /** The key. */
  key: Uint8Array;
  /**
   * The value. Keys and values are views into a page buffer read for this
   * walk, which nothing changes afterwards.
   */
  value: Uint8Array;
}

/** What a {@linkcode BboltFile} has read so far (page reads, counted per page run). */
export interface BboltStats {
  /** Bytes read from the file, meta pages included. */
  bytesRead: number;
  /** Branch pages read. */
  branchPages: number;
  /** Leaf pages read (inline bucket pages not included). */
  leafPages: number;
  /** Overflow pages read: pages that continue a branch or leaf page. */
  overflowPages: number;
}

/** Options of {@linkcode BboltFile.open}. */
export interface BboltOpenOptions {
  /**
   * Bytes of the file that belong to the database; default the file's size.
   * (An etcd snapshot may carry 32 bytes of SHA-256 after it.)
   */
  length?: number;
}

/** The current meta page of a file. */
export interface BboltMeta {
  /** Bytes per page. */
  pageSize: number;
  /** The transaction ID of the state the file holds. */
  txid: bigint;
  /** The high-water mark: the database's pages are 0 to this, exclusive. */
  pageCount: number;
  /** Page ID of the root bucket's root page. */
  root: number;
}

/** One page read from the file (with its overflow), or an inline bucket's page. */
interface Page {
  /** The page's bytes, header included. */
  bytes: Uint8Array;
  view: DataView;
  /** Page ID, or -1 for an inline page. */
  id: number;
  flags: number;
  count: number;
}

/** A bucket's root: a page ID, or an inline bucket's page. */
type Root = number | Page;

/** A u64 field as a number; undefined above 2^53 (no page ID or size of a real file is). */
function u64(view: DataView, offset: number): number | undefined {
  const high = view.getUint32(offset + 4, true);
  if (high >= 0x20_0000) return undefined;
  return high * 0x1_0000_0000 + view.getUint32(offset, true);
}

/** The bytes of `name` as a key. */
function keyBytes(name: string | Uint8Array): Uint8Array {
  return typeof name === "string" ? new TextEncoder().encode(name) : name;
}

/** A bbolt database file opened for reading. */
export class BboltFile {
  /** The file's path (for error messages). */
  readonly path: string;
  /** The current meta page. */
  readonly meta: BboltMeta;
  /** Reads so far. */
  readonly stats: BboltStats = { bytesRead: 0, branchPages: 0, leafPages: 0, overflowPages: 0 };
  readonly #file: Deno.FsFile;
  readonly #length: number;

  private constructor(path: string, file: Deno.FsFile, length: number) {
    this.path = path;
    this.#file = file;
    this.#length = length;
    try {
      this.meta = this.#readMeta();
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Open `path` and read its current meta page.
   *
   * @throws {BboltError} when the file is not a bbolt database (no valid
   *   meta page: wrong magic, version or checksum), or is shorter than its
   *   meta page says.
   * @throws {Deno.errors.NotFound} and other file-system errors.
   */
  static open(path: string, options: BboltOpenOptions = {}): BboltFile {
    const file = Deno.openSync(path, { read: true });
    let length: number;
    try {
      const size = file.statSync().size;
      length = Math.min(options.length ?? size, size);
    } catch (err) {
      file.close();
      throw err;
    }
    return new BboltFile(path, file, length);
  }

  /** Close the file. */
  close(): void {
    this.#file.close();
  }

  /** The root bucket: the file's named buckets are its nested buckets. */
  root(): BboltBucket {
    return new BboltBucket(this, this.meta.root);
  }

  /** The named (top-level) bucket `name`, or undefined when there is none. */
  bucket(name: string | Uint8Array): BboltBucket | undefined {
    return this.root().bucket(name);
  }

  #error(what: string): BboltError {
    return new BboltError(`${this.path}: ${what}`);
  }

  /** `n` bytes at `offset`, all of them within the database's length. */
  #readAt(offset: number, n: number): Uint8Array {
    if (offset + n > this.#length) {
      throw this.#error(
        `truncated: page data at bytes ${offset}..${
          offset + n
        } is past the end (${this.#length} bytes)`,
      );
    }
    const out = new Uint8Array(n);
    this.#file.seekSync(offset, Deno.SeekMode.Start);
    let at = 0;
    while (at < n) {
      const got = this.#file.readSync(out.subarray(at));
      if (got === null) throw this.#error(`truncated: end of file at byte ${offset + at}`);
      at += got;
    }
    this.stats.bytesRead += n;
    return out;
  }

  /** The meta at the start of page bytes `bytes`, if it validates (bbolt's `Validate`). */
  #parseMeta(bytes: Uint8Array): BboltMeta | string {
    if (bytes.length < PAGE_HEADER_BYTES + META_SUM_BYTES + 8) return "too short for a meta page";
    const view = new DataView(bytes.buffer, bytes.byteOffset + PAGE_HEADER_BYTES);
    if (view.getUint32(0, true) !== MAGIC) return "not a bbolt database (bad magic)";
    if (view.getUint32(4, true) !== VERSION) {
      return `unsupported bbolt version ${view.getUint32(4, true)}`;
    }
    const sum = fnv1a(bytes.subarray(PAGE_HEADER_BYTES, PAGE_HEADER_BYTES + META_SUM_BYTES), {
      size: 64,
    });
    if (sum !== view.getBigUint64(META_SUM_BYTES, true)) return "meta page checksum mismatch";
    const pageSize = view.getUint32(8, true);
    const root = u64(view, 16);
    const pageCount = u64(view, 40);
    if (pageSize < MIN_PAGE_BYTES || pageSize > MAX_PAGE_BYTES || pageSize % 512 !== 0) {
      return `implausible page size ${pageSize}`;
    }
    if (root === undefined || pageCount === undefined || root < 2 || root >= pageCount) {
      return "root page outside the file";
    }
    return { pageSize, txid: view.getBigUint64(48, true), pageCount, root };
  }

  /** bbolt's choice of meta page: the valid one with the higher txid. */
  #readMeta(): BboltMeta {
    const first = this.#readAt(0, Math.min(this.#length, 4096));
    const meta0 = this.#parseMeta(first);
    let pageSize: number | undefined = typeof meta0 === "string" ? undefined : meta0.pageSize;
    let meta1: BboltMeta | string = "missing";
    if (pageSize !== undefined) {
      const n = Math.min(pageSize, 4096);
      if (pageSize + n <= this.#length) meta1 = this.#parseMeta(this.#readAt(pageSize, n));
    } else {
      // Page 0 is damaged: look for page 1 where bbolt looks for it.
      for (let size = MIN_PAGE_BYTES; size <= MAX_PAGE_BYTES; size *= 2) {
        if (size + PAGE_HEADER_BYTES + META_SUM_BYTES + 8 > this.#length) break;
        const m = this.#parseMeta(this.#readAt(size, Math.min(4096, this.#length - size)));
        if (typeof m !== "string" && m.pageSize === size) {
          meta1 = m;
          pageSize = size;
          break;
        }
      }
    }
    let meta: BboltMeta;
    if (typeof meta0 !== "string" && typeof meta1 !== "string") {
      meta = meta1.txid > meta0.txid ? meta1 : meta0;
    } else if (typeof meta0 !== "string") {
      meta = meta0;
    } else if (typeof meta1 !== "string") {
      meta = meta1;
    } else {
      throw this.#error(meta0);
    }
    const needed = meta.pageCount * meta.pageSize;
    if (needed > this.#length) {
      throw this.#error(
        `truncated: its meta page says ${meta.pageCount} pages of ${meta.pageSize} bytes ` +
          `(${needed} bytes), the file has ${this.#length}`,
      );
    }
    return meta;
  }

  /** Page `id` with its overflow pages, checked to be a branch or leaf page. */
  readPage(id: number): Page {
    const { pageSize, pageCount } = this.meta;
    if (id < 2 || id >= pageCount) {
      throw this.#error(`damaged: a page refers to page ${id}, outside pages 2..${pageCount - 1}`);
    }
    let bytes = this.#readAt(id * pageSize, pageSize);
    let view = new DataView(bytes.buffer);
    const overflow = view.getUint32(12, true);
    if (u64(view, 0) !== id) throw this.#error(`damaged: page ${id} has the id of another page`);
    if (overflow > 0) {
      const run = (overflow + 1) * pageSize;
      if (id + overflow >= pageCount || run > BBOLT_MAX_PAGE_RUN_BYTES) {
        throw this.#error(`damaged: page ${id} claims ${overflow} overflow pages`);
      }
      const full = new Uint8Array(run);
      full.set(bytes);
      full.set(this.#readAt((id + 1) * pageSize, run - pageSize), pageSize);
      bytes = full;
      view = new DataView(bytes.buffer);
      this.stats.overflowPages += overflow;
    }
    const page = this.#checkPage(bytes, id);
    if (page.flags === BRANCH_PAGE) this.stats.branchPages++;
    else this.stats.leafPages++;
    return page;
  }

  /** A branch or leaf page whose elements lie within its bytes. */
  #checkPage(bytes: Uint8Array, id: number): Page {
    const where = id < 0 ? "an inline bucket page" : `page ${id}`;
    if (bytes.length < PAGE_HEADER_BYTES) throw this.#error(`damaged: ${where} is too short`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const flags = view.getUint16(8, true);
    const count = view.getUint16(10, true);
    if (flags !== BRANCH_PAGE && flags !== LEAF_PAGE) {
      throw this.#error(
        `damaged: ${where} is not a branch or leaf page (flags 0x${flags.toString(16)})`,
      );
    }
    if (PAGE_HEADER_BYTES + count * ELEMENT_BYTES > bytes.length) {
      throw this.#error(`damaged: ${where} has more elements than fit in it`);
    }
    for (let i = 0; i < count; i++) {
      const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
      let end: number;
      if (flags === LEAF_PAGE) {
        end = at + view.getUint32(at + 4, true) + view.getUint32(at + 8, true) +
          view.getUint32(at + 12, true);
      } else {
        end = at + view.getUint32(at, true) + view.getUint32(at + 4, true);
      }
      if (end > bytes.length) throw this.#error(`damaged: element ${i} of ${where} ends past it`);
    }
    return { bytes, view, id, flags, count };
  }

  /** An inline bucket's page (a bucket value's bytes after its header). */
  inlinePage(value: Uint8Array): Page {
    const page = this.#checkPage(value.subarray(BUCKET_HEADER_BYTES), -1);
    if (page.flags !== LEAF_PAGE) throw this.#error("damaged: an inline bucket is not a leaf");
    return page;
  }

  /** The root of the bucket whose header is `value` (a bucket element's value). */
  bucketRoot(value: Uint8Array): Root {
    if (value.length < BUCKET_HEADER_BYTES) {
      throw this.#error("damaged: a bucket value is too short");
    }
    const root = u64(new DataView(value.buffer, value.byteOffset, 8), 0);
    if (root === 0) return this.inlinePage(value);
    if (root === undefined) throw this.#error("damaged: a bucket's root page is outside the file");
    return root;
  }

  /** A damaged-file error (for the bucket walk). */
  damaged(what: string): BboltError {
    return this.#error(`damaged: ${what}`);
  }
}

/** One element of a leaf page. */
interface LeafElement {
  key: Uint8Array;
  value: Uint8Array;
  bucket: boolean;
}

function leafElement(page: Page, i: number): LeafElement {
  const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
  const flags = page.view.getUint32(at, true);
  const start = at + page.view.getUint32(at + 4, true);
  const ksize = page.view.getUint32(at + 8, true);
  const vsize = page.view.getUint32(at + 12, true);
  return {
    key: page.bytes.subarray(start, start + ksize),
    value: page.bytes.subarray(start + ksize, start + ksize + vsize),
    bucket: (flags & BUCKET_LEAF) !== 0,
  };
}

function branchKey(page: Page, i: number): Uint8Array {
  const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
  const start = at + page.view.getUint32(at, true);
  return page.bytes.subarray(start, start + page.view.getUint32(at + 4, true));
}

function branchChild(page: Page, i: number): number {
  const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
  return u64(page.view, at + 8) ?? -1;
}

/** A bucket of a {@linkcode BboltFile}: its entries in key order, and its nested buckets. */
export class BboltBucket {
  readonly #db: BboltFile;
  readonly #root: Root;

  /** The bucket rooted at `root` (a page ID, or an inline bucket's page). */
  constructor(db: BboltFile, root: Root) {
    this.#db = db;
    this.#root = root;
  }

  /**
   * Every element in key order (bbolt's cursor): each page is read when the
   * walk reaches it.
   *
   * @throws {BboltError} on a damaged page, keys out of order, or a tree
   *   deeper than {@linkcode BBOLT_MAX_TREE_DEPTH}.
   */
  *#elements(): Generator<LeafElement> {
    const db = this.#db;
    const first = typeof this.#root === "number" ? db.readPage(this.#root) : this.#root;
    const stack: { page: Page; next: number }[] = [{ page: first, next: 0 }];
    let last: Uint8Array | undefined;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next >= top.page.count) {
        stack.pop();
        continue;
      }
      const i = top.next++;
      if (top.page.flags === LEAF_PAGE) {
        const element = leafElement(top.page, i);
        if (last !== undefined && compareBytes(last, element.key) >= 0) {
          throw db.damaged(`keys out of order in page ${top.page.id}`);
        }
        last = element.key;
        yield element;
        continue;
      }
      if (stack.length >= BBOLT_MAX_TREE_DEPTH) {
        throw db.damaged(`a tree deeper than ${BBOLT_MAX_TREE_DEPTH} levels (pages in a loop?)`);
      }
      stack.push({ page: db.readPage(branchChild(top.page, i)), next: 0 });
    }
  }

  /**
   * The key-value pairs in key order (nested buckets left out).
   *
   * @throws {BboltError} as the walk meets a damaged page.
   */
  *entries(): Generator<BboltEntry> {
    for (const e of this.#elements()) {
      if (!e.bucket) yield { key: e.key, value: e.value };
    }
  }

  /** Names of the nested buckets, in key order. */
  *bucketNames(): Generator<Uint8Array> {
    for (const e of this.#elements()) if (e.bucket) yield e.key;
  }

  /** The element with key `key`, found by descending from the root (bbolt's seek). */
  #find(key: Uint8Array): LeafElement | undefined {
    const db = this.#db;
    let page = typeof this.#root === "number" ? db.readPage(this.#root) : this.#root;
    for (let depth = 1; page.flags === BRANCH_PAGE; depth++) {
      if (depth >= BBOLT_MAX_TREE_DEPTH) {
        throw db.damaged(`a tree deeper than ${BBOLT_MAX_TREE_DEPTH} levels (pages in a loop?)`);
      }
      if (page.count === 0) return undefined;
      // The last child whose first key is ≤ key (the first child otherwise).
      let lo = 0;
      let hi = page.count - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (compareBytes(branchKey(page, mid), key) <= 0) lo = mid;
        else hi = mid - 1;
      }
      page = db.readPage(branchChild(page, lo));
    }
    let lo = 0;
    let hi = page.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(leafElement(page, mid).key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= page.count) return undefined;
    const e = leafElement(page, lo);
    return compareBytes(e.key, key) === 0 ? e : undefined;
  }

  /** The value at `key`, or undefined (also when `key` names a nested bucket). */
  get(key: string | Uint8Array): Uint8Array | undefined {
    const e = this.#find(keyBytes(key));
    return e === undefined || e.bucket ? undefined : e.value;
  }

  /** The nested bucket `name`, or undefined when there is none. */
  bucket(name: string | Uint8Array): BboltBucket | undefined {
    const e = this.#find(keyBytes(name));
    if (e === undefined || !e.bucket) return undefined;
    return new BboltBucket(this.#db, this.#db.bucketRoot(e.value));
  }
}
