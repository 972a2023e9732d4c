/**
 * An in-memory `Backend` (core/backend.ts) for the simulator: sorted tables
 * with bytewise keys, write transactions that run synchronously and roll
 * back if their callback throws. It lets the simulator run core/mvcc, the
 * state machine cairn serves, with no I/O and deterministically.
 *
 * @module
 */
import type { Backend, Entry, ScanOptions, Table } from "../../core/backend.ts";
import { invariant } from "../../core/invariant.ts";

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** One table: entries kept sorted by key. */
class SortedTable {
  entries: Entry[] = [];

  /** Index of the first entry with key ≥ `key`. */
  lowerBound(key: Uint8Array): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareBytes(this.entries[mid].key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const i = this.lowerBound(key);
    const e = this.entries[i];
    return e !== undefined && compareBytes(e.key, key) === 0 ? e.value : undefined;
  }

  set(key: Uint8Array, value: Uint8Array | undefined): void {
    const i = this.lowerBound(key);
    const found = this.entries[i] !== undefined && compareBytes(this.entries[i].key, key) === 0;
    if (value === undefined) {
      if (found) this.entries.splice(i, 1);
    } else if (found) this.entries[i] = { key: this.entries[i].key, value: value.slice() };
    else this.entries.splice(i, 0, { key: key.slice(), value: value.slice() });
  }
}

/** The in-memory backend. Its state can be copied out and back ({@linkcode MemoryBackend.dump}). */
export class MemoryBackend implements Backend {
  #tables = new Map<Table, SortedTable>();
  #meta = new Map<string, unknown>();
  /** Undo records of the running write: how to put things back if it throws. */
  #undo: (() => void)[] | undefined;

  #table(table: Table): SortedTable {
    let t = this.#tables.get(table);
    if (t === undefined) this.#tables.set(table, t = new SortedTable());
    return t;
  }

  get(table: Table, key: Uint8Array): Uint8Array | undefined {
    return this.#table(table).get(key)?.slice();
  }

  *scan(table: Table, options: ScanOptions): Iterable<Entry> {
    const entries = this.#table(table).entries;
    const lo = options.start === undefined ? 0 : this.#table(table).lowerBound(options.start);
    const hi = options.end === undefined
      ? entries.length
      : this.#table(table).lowerBound(options.end);
    const limit = options.limit ?? Infinity;
    const picked = entries.slice(lo, Math.max(lo, hi));
    if (options.reverse) picked.reverse();
    let n = 0;
    for (const e of picked) {
      if (n++ >= limit) return;
      yield { key: e.key.slice(), value: e.value.slice() };
    }
  }

  count(table: Table, options: ScanOptions): number {
    let n = 0;
    for (const _ of this.scan(table, options)) n++;
    return n;
  }

  inWrite(): boolean {
    return this.#undo !== undefined;
  }

  put(table: Table, key: Uint8Array, value: Uint8Array): void {
    this.#change(table, key, value);
  }

  del(table: Table, key: Uint8Array): void {
    this.#change(table, key, undefined);
  }

  #change(table: Table, key: Uint8Array, value: Uint8Array | undefined): void {
    invariant(this.#undo !== undefined, "backend writes happen inside Backend.write");
    const t = this.#table(table);
    const before = t.get(key);
    const k = key.slice();
    this.#undo.push(() => t.set(k, before));
    t.set(key, value);
  }

  getMeta(name: string): unknown {
    return this.#meta.get(name);
  }

  putMeta(name: string, value: unknown): void {
    invariant(this.#undo !== undefined, "backend writes happen inside Backend.write");
    const had = this.#meta.has(name);
    const before = this.#meta.get(name);
    this.#undo.push(() => had ? this.#meta.set(name, before) : this.#meta.delete(name));
    this.#meta.set(name, value);
  }

  /** Run `fn` as one transaction, synchronously; undo its writes and rethrow if it throws. */
  run<T>(fn: () => T): T {
    invariant(this.#undo === undefined, "write transactions do not nest");
    this.#undo = [];
    try {
      return fn();
    } catch (err) {
      for (const undo of this.#undo.reverse()) undo();
      throw err;
    } finally {
      this.#undo = undefined;
    }
  }

  write<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(this.run(fn));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  commitSoon(): void {}

  refresh(): void {}

  size(): { dbSize: number; dbSizeInUse: number } {
    return { dbSize: 0, dbSizeInUse: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  copyTo(_dir: string): Promise<string> {
    return Promise.reject(new Error("the simulator's snapshots are dump() and load()"));
  }

  suspend(): Promise<void> {
    return Promise.reject(new Error("the simulator's store has no file to suspend"));
  }

  resume(): void {
    throw new Error("the simulator's store has no file to resume");
  }

  swapIn(_file: string): Promise<void> {
    return Promise.reject(new Error("the simulator's store has no file to replace"));
  }

  /** The whole state as plain data (for the simulator's snapshots). */
  dump(): { tables: [Table, [number[], number[]][]][]; meta: [string, unknown][] } {
    return {
      tables: [...this.#tables].map(([name, t]) => [
        name,
        t.entries.map((e) => [[...e.key], [...e.value]] as [number[], number[]]),
      ]),
      meta: [...this.#meta],
    };
  }

  /** A backend holding `state` (from {@linkcode MemoryBackend.dump}). */
  static load(state: ReturnType<MemoryBackend["dump"]>): MemoryBackend {
    const b = new MemoryBackend();
    for (const [name, entries] of state.tables) {
      b.#table(name).entries = entries.map(([k, v]) => ({
        key: new Uint8Array(k),
        value: new Uint8Array(v),
      }));
    }
    b.#meta = new Map(state.meta);
    return b;
  }
}
