/**
 * Binary encodings of the MVCC tables (documented in native/README.md).
 *
 * - revision: 8 bytes, big-endian unsigned (revisions stay below 2^53).
 * - history key: escape(user key) ‖ 00 01 ‖ revision. Escaping writes each
 *   00 byte as 00 FF, so history keys sort by user key, then revision, and
 *   one user key's versions are contiguous.
 * - record (value of `current` and `history`): flags(1) ‖ varint
 *   create_revision ‖ varint mod_revision ‖ varint version ‖ [lease(8)] ‖
 *   value. flags bit 0 marks a tombstone (a deletion at mod_revision), bit 1
 *   a lease (its 8 bytes, big-endian two's complement, follow the version).
 *   Varints are unsigned LEB128. The user key is not in the record: it is the
 *   `current` key, and the unescaped prefix of the `history` key.
 *
 * @module
 */
import type { KeyValue } from "../api/types.ts";

const TWO32 = 0x1_0000_0000;
const TOMBSTONE = 1;
const LEASED = 2;

/** A stored version of a key: a KeyValue, or a tombstone when `deleted`. */
export interface Record {
  /** The key-value; a tombstone has only its key and mod_revision (the deletion's). */
  kv: KeyValue;
  /** True for a tombstone: the key was deleted at `kv.mod_revision`. */
  deleted: boolean;
}

function put53(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, Math.floor(n / TWO32));
  view.setUint32(offset + 4, n >>> 0);
}

function get53(view: DataView, offset: number): number {
  return view.getUint32(offset) * TWO32 + view.getUint32(offset + 4);
}

/** 8-byte big-endian encoding of a revision (or any integer < 2^53). */
export function encodeRevision(rev: number): Uint8Array {
  const out = new Uint8Array(8);
  put53(new DataView(out.buffer), 0, rev);
  return out;
}

/** Inverse of {@linkcode encodeRevision}, reading 8 bytes at `offset`. */
export function decodeRevision(bytes: Uint8Array, offset = 0): number {
  return get53(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
}

/** The revision in the last 8 bytes of a history key. */
export function historyKeyRevision(key: Uint8Array): number {
  return get53(new DataView(key.buffer, key.byteOffset, key.byteLength), key.length - 8);
}

/** Revision log key: main revision (8 bytes) ‖ sub index (4 bytes). */
export function encodeRevlogKey(main: number, sub: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  put53(view, 0, main);
  view.setUint32(8, sub);
  return out;
}

/** The revision (main) of a `revlog` key made by {@linkcode encodeRevlogKey}. */
export function revlogKeyRevision(key: Uint8Array): number {
  return get53(new DataView(key.buffer, key.byteOffset, key.byteLength), 0);
}

/**
 * Longest key storage takes, in bytes (lmdb-js's limit for 4 KiB pages, kept
 * for larger pages too, where lmdb-js would take up to 4026).
 * A user key is stored raw in `current` and escaped (+ 8 revision bytes) in
 * `history`, so both forms must fit.
 */
export const MAX_STORED_KEY_BYTES = 1978;

/** Whether `key` can be stored: raw and escaped-plus-revision forms both fit. */
export function isStorableKey(key: Uint8Array): boolean {
  if (key.length > MAX_STORED_KEY_BYTES) return false;
  let zeros = 0;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) zeros++;
  return key.length + zeros + 2 + 8 <= MAX_STORED_KEY_BYTES;
}

/** Order-preserving escape of a user key, terminated by 00 01. */
export function escapeKey(key: Uint8Array): Uint8Array {
  let zeros = 0;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) zeros++;
  const out = new Uint8Array(key.length + zeros + 2);
  let j = 0;
  for (let i = 0; i < key.length; i++) {
    out[j++] = key[i];
    if (key[i] === 0) out[j++] = 0xff;
  }
  out[j++] = 0;
  out[j] = 1;
  return out;
}

/** History key of `key` at revision `rev`. */
export function historyKey(key: Uint8Array, rev: number): Uint8Array {
  const esc = escapeKey(key);
  const out = new Uint8Array(esc.length + 8);
  out.set(esc, 0);
  put53(new DataView(out.buffer), esc.length, rev);
  return out;
}

/** Bytes of `n` (0 ≤ n < 2^53) as an unsigned LEB128 varint. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function putVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[at++] = n;
  return at;
}

/** Read position of {@linkcode getVarint} (records are decoded one at a time). */
let cursor = 0;

function getVarint(bytes: Uint8Array): number {
  let b = bytes[cursor++];
  if (b < 0x80) return b;
  let n = b & 0x7f;
  let scale = 0x80;
  do {
    b = bytes[cursor++];
    n += (b & 0x7f) * scale;
    scale *= 0x80;
  } while (b >= 0x80);
  return n;
}

/** Encode a stored version (its key is stored as the table's key, not here). */
export function encodeRecord(kv: KeyValue, deleted: boolean): Uint8Array {
  const leased = kv.lease !== 0n;
  const head = 1 + varintSize(kv.create_revision) + varintSize(kv.mod_revision) +
    varintSize(kv.version) + (leased ? 8 : 0);
  const out = new Uint8Array(head + kv.value.length);
  out[0] = (deleted ? TOMBSTONE : 0) | (leased ? LEASED : 0);
  let at = putVarint(out, 1, kv.create_revision);
  at = putVarint(out, at, kv.mod_revision);
  at = putVarint(out, at, kv.version);
  if (leased) {
    new DataView(out.buffer).setBigUint64(at, BigInt.asUintN(64, kv.lease));
    at += 8;
  }
  out.set(kv.value, at);
  return out;
}

/**
 * Decode the stored version of `key`. `keysOnly` leaves the value empty. The
 * returned kv holds `key` itself and a view into `bytes` (no copies: a typed
 * array allocation costs more than the whole decode): pass arrays that
 * nothing will change, as Backend reads and decoded requests are.
 */
export function decodeRecord(key: Uint8Array, bytes: Uint8Array, keysOnly = false): Record {
  const flags = bytes[0];
  cursor = 1;
  const create_revision = getVarint(bytes);
  const mod_revision = getVarint(bytes);
  const version = getVarint(bytes);
  let lease = 0n;
  if ((flags & LEASED) !== 0) {
    lease = BigInt.asIntN(
      64,
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(cursor),
    );
    cursor += 8;
  }
  return {
    deleted: (flags & TOMBSTONE) !== 0,
    kv: {
      key,
      create_revision,
      mod_revision,
      version,
      value: keysOnly ? new Uint8Array(0) : plain(bytes).subarray(cursor),
      lease,
    },
  };
}

/** The mod_revision of an encoded record, without decoding the rest. */
export function recordModRevision(bytes: Uint8Array): number {
  cursor = 1;
  getVarint(bytes);
  return getVarint(bytes);
}

/** Whether an encoded record is a tombstone. */
export function isTombstone(bytes: Uint8Array): boolean {
  return (bytes[0] & TOMBSTONE) !== 0;
}

/** The user key of a history key (a new array). */
export function historyKeyUserKey(key: Uint8Array): Uint8Array {
  const end = key.length - 10; // the 00 01 terminator and the revision
  let zeros = 0;
  for (let i = 0; i < end; i++) if (key[i] === 0) zeros++;
  const out = new Uint8Array(end - zeros); // each 00 was followed by an FF
  let j = 0;
  for (let i = 0; i < end; i++) {
    out[j++] = key[i];
    if (key[i] === 0) i++; // skip the FF after an escaped 00
  }
  return out;
}

/**
 * A copy of `bytes` as a plain Uint8Array. (Buffers that storage returns may
 * be views into memory it reuses, and `Buffer#slice` does not copy.)
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return plain(bytes).slice();
}

/**
 * A plain Uint8Array view of the same memory. (Slicing a Buffer makes a
 * Buffer, which is slow to construct; slicing a plain view is a memcpy.)
 */
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A key as a JS map key: one UTF-16 unit per byte, so two keys are the same
 * map key exactly when they are the same bytes.
 */
export function keyId(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i += 4096) {
    s += String.fromCharCode(...key.subarray(i, i + 4096));
  }
  return s;
}

/** Bytewise comparison of two keys: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
