/**
 * The storage interface the pure core is written against. `native/` provides
 * the LMDB implementation; nothing in `core/` imports `lmdb`.
 *
 * @module
 */

/** The ordered binary tables of one member's store (see native/README.md). */
export type Table = "current" | "history" | "revlog" | "lease";

/** One record of a table scan. */
export interface Entry {
  /** The record's key. */
  key: Uint8Array;
  /** The record's value. */
  value: Uint8Array;
}

/** Options of {@linkcode Backend.scan}. Keys compare bytewise. */
export interface ScanOptions {
  /** Inclusive lower bound (upper bound when `reverse`); undefined = first key. */
  start?: Uint8Array;
  /** Exclusive upper bound (lower bound when `reverse`); undefined = past the last key. */
  end?: Uint8Array;
  /** Scan from the highest key down; default false (ascending). */
  reverse?: boolean;
  /** Maximum records returned; undefined = all. */
  limit?: number;
}

/**
 * Ordered key-value storage with durable, serialized write transactions.
 *
 * Reads outside {@linkcode Backend.write} see the last durable committed
 * state; a synchronous sequence of reads sees one snapshot. Inside the
 * callback of `write`, reads also see the writes of earlier transactions not
 * yet durable and the transaction's own writes, and `put`/`del` are legal.
 */
export interface Backend {
  /**
   * The value at `key`, or undefined. Returned arrays (here and in scans)
   * belong to the caller: storage never changes them afterwards.
   */
  get(table: Table, key: Uint8Array): Uint8Array | undefined;
  /** Records in key order between the bounds. */
  scan(table: Table, options: ScanOptions): Iterable<Entry>;
  /** Number of keys between the bounds (counted natively, no values read). */
  count(table: Table, options: ScanOptions): number;
  /** Whether a `write` callback is running (reads see its writes; put/del are legal). */
  inWrite(): boolean;
  /** Write a record; only inside a `write` callback. */
  put(table: Table, key: Uint8Array, value: Uint8Array): void;
  /** Delete a record; only inside a `write` callback. */
  del(table: Table, key: Uint8Array): void;
  /** A metadata value (numbers, strings, bigint as decimal strings). */
  getMeta(name: string): unknown;
  /** Write a metadata value; only inside a `write` callback. */
  putMeta(name: string, value: unknown): void;
  /**
   * Run `fn` in one write transaction: at once (before `write` returns),
   * seeing every earlier transaction, committed or not. Resolves with its
   * result once the commit is visible to readers (not necessarily durable:
   * see {@linkcode Backend.flushed}); transactions commit in the order
   * `write` was called. Rejects, with nothing written, if `fn` throws.
   */
  write<T>(fn: () => T): Promise<T>;
  /**
   * Resolves once every transaction committed so far is durable on disk.
   * An OS crash rolls the store back to its last durable transaction
   * (never to a torn state); the WAL holds what that loses.
   */
  flushed(): Promise<void>;
  /**
   * Someone waits to read the writes queued so far: commit them without
   * waiting for the commit interval (as soon as a commit in progress ends).
   */
  commitSoon(): void;
  /**
   * Make the next reads see every commit made so far, by any thread (a new
   * read snapshot). Reads may otherwise keep an older snapshot for the rest
   * of the current event-loop turn.
   */
  refresh(): void;
  /** Size of the database file in bytes, and of the pages in use. */
  size(): { dbSize: number; dbSizeInUse: number };
  /**
   * Copy the newest committed state (every table and `meta`, one consistent
   * read transaction) into directory `dir` as an environment file; resolves
   * with the file's path. Writes go on meanwhile. With `compact`, the copy
   * leaves free pages out (it is as large as the data it holds).
   */
  copyTo(dir: string, compact?: boolean): Promise<string>;
  /**
   * Close the store's files for a while (once pending writes are committed
   * and durable, and copies in progress are done). No read or write may
   * happen until {@linkcode Backend.resume}: they throw an InvariantError.
   * Every thread with the store open must suspend before its file can be
   * replaced ({@linkcode Backend.swapIn}).
   */
  suspend(): Promise<void>;
  /** Open the store's files again after {@linkcode Backend.suspend}, as they are now. */
  resume(): void;
  /**
   * Replace the store's file with `file` (an environment file written by
   * {@linkcode Backend.copyTo}, holding the same committed state): suspend,
   * move `file` into place, resume. The other threads with the store open
   * must be suspended meanwhile.
   */
  swapIn(file: string): Promise<void>;
  /** Flush and close; pending writes finish first. */
  close(): Promise<void>;
}
