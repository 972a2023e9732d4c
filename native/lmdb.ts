/**
 * The LMDB environment of one member, through the `lmdb` npm package's native
 * binding. The only module that imports `lmdb`. See native/README.md for the
 * tables and their encodings.
 *
 * @module
 */
import { ABORT, open, type RootDatabase } from "lmdb";
import type { Backend, Entry, ScanOptions, Table } from "../core/backend.ts";

/** Options of {@linkcode openBackend}. */
export interface BackendOptions {
  /**
   * Initial memory map size in bytes; LMDB grows it when full. Default 256 MiB.
   */
  mapSize?: number;
  /**
   * Let LMDB fsync after a commit becomes visible (lmdb-js `overlappingSync`).
   * Default false: a commit is visible to readers only once it is durable, so
   * no reader can observe a write that an OS crash could take back.
   */
  overlappingSync?: boolean;
}

const TABLES: Table[] = ["current", "history", "revlog", "raft_log"];

class LmdbBackend implements Backend {
  #env: RootDatabase;
  #tables: Map<Table, ReturnType<RootDatabase["openDB"]>>;
  #meta: ReturnType<RootDatabase["openDB"]>;
  #path: string;

  constructor(path: string, options: BackendOptions) {
    this.#path = path;
    this.#env = open({
      path,
      compression: false,
      mapSize: options.mapSize ?? 256 * 1024 * 1024,
      overlappingSync: options.overlappingSync ?? false,
      maxDbs: 16,
    });
    this.#tables = new Map();
    for (const name of TABLES) {
      this.#tables.set(
        name,
        this.#env.openDB({ name, keyEncoding: "binary", encoding: "binary", cache: false }),
      );
    }
    this.#meta = this.#env.openDB({ name: "meta", cache: false });
  }

  #db(table: Table) {
    return this.#tables.get(table)!;
  }

  get(table: Table, key: Uint8Array): Uint8Array | undefined {
    return this.#db(table).get(key as Buffer) as Uint8Array | undefined;
  }

  scan(table: Table, options: ScanOptions): Iterable<Entry> {
    // A reverse lmdb-js range starts AT its start key; the bound here is exclusive.
    if (options.reverse && options.end !== undefined) {
      const limit = options.limit ?? Infinity;
      const wider = { ...options, limit: options.limit === undefined ? undefined : limit + 1 };
      const range = this.#db(table).getRange(rangeOptions(wider)) as unknown as Iterable<Entry>;
      return skipKey(range, options.end, limit);
    }
    return this.#db(table).getRange(rangeOptions(options)) as unknown as Iterable<Entry>;
  }

  count(table: Table, options: ScanOptions): number {
    return this.#db(table).getKeysCount(rangeOptions(options));
  }

  put(table: Table, key: Uint8Array, value: Uint8Array): void {
    this.#db(table).put(key as Buffer, value);
  }

  del(table: Table, key: Uint8Array): void {
    this.#db(table).remove(key as Buffer);
  }

  getMeta(name: string): unknown {
    return this.#meta.get(name);
  }

  putMeta(name: string, value: unknown): void {
    this.#meta.put(name, value);
  }

  async write<T>(fn: () => T): Promise<T> {
    let result!: T;
    let failure: unknown;
    let failed = false;
    await this.#env.transaction(() => {
      try {
        result = fn();
      } catch (err) {
        failed = true;
        failure = err;
        // lmdb-js aborts an async transaction whose callback returns ABORT.
        return ABORT;
      }
    });
    if (failed) throw failure;
    await this.#env.flushed;
    return result;
  }

  size(): { dbSize: number; dbSizeInUse: number } {
    const stats = this.#env.getStats() as { pageSize: number; lastPageNumber: number };
    let dbSize = 0;
    try {
      dbSize = Deno.statSync(`${this.#path}/data.mdb`).size;
    } catch {
      dbSize = 0;
    }
    return { dbSize, dbSizeInUse: (stats.lastPageNumber + 1) * stats.pageSize };
  }

  async close(): Promise<void> {
    await this.#env.flushed;
    await this.#env.close();
  }
}

function* skipKey(range: Iterable<Entry>, key: Uint8Array, limit: number): Iterable<Entry> {
  let n = 0;
  for (const entry of range) {
    if (n >= limit) return;
    if (equalBytes(entry.key, key)) continue;
    n++;
    yield entry;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
