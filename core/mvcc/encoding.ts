/**
 * Binary encodings of the MVCC tables (documented in native/README.md).
 *
 * - revision: 8 bytes, big-endian unsigned (revisions stay below 2^53).
 * - history key: escape(user key) ‖ 00 01 ‖ revision. Escaping writes each
 *   00 byte as 00 FF, so history keys sort by user key, then revision, and
 *   one user key's versions are contiguous.
 * - record (value of `current` and `history`): flags(1) ‖ create_revision(8) ‖
 *   mod_revision(8) ‖ version(8) ‖ lease(8) ‖ key length(4) ‖ key ‖ value.
 *   flags bit 0 marks a tombstone (a deletion at mod_revision).
 *
 * @module
 */
import type { KeyValue } from "./types.ts";

const TWO32 = 0x1_0000_0000;
const HEADER = 1 + 8 * 4 + 4;

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

/** Encode a stored version. */
export function encodeRecord(kv: KeyValue, deleted: boolean): Uint8Array {
  const out = new Uint8Array(HEADER + kv.key.length + kv.value.length);
  const view = new DataView(out.buffer);
  out[0] = deleted ? 1 : 0;
  put53(view, 1, kv.create_revision);
  put53(view, 9, kv.mod_revision);
  put53(view, 17, kv.version);
  view.setBigUint64(25, BigInt.asUintN(64, kv.lease));
  view.setUint32(33, kv.key.length);
  out.set(kv.key, HEADER);
  out.set(kv.value, HEADER + kv.key.length);
  return out;
}

/**
 * Decode a stored version. `keysOnly` leaves the value empty. The returned
 * key and value are views into `bytes` (no copy): pass bytes the caller owns
 * and will not change, as Backend reads return.
 */
export function decodeRecord(bytes: Uint8Array, keysOnly = false): Record {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyLength = view.getUint32(33);
  const lease = view.getBigUint64(25);
  return {
    deleted: (bytes[0] & 1) === 1,
    kv: {
      key: plain(bytes).subarray(HEADER, HEADER + keyLength),
      create_revision: get53(view, 1),
      mod_revision: get53(view, 9),
      version: get53(view, 17),
      value: keysOnly ? new Uint8Array(0) : plain(bytes).subarray(HEADER + keyLength),
      lease: lease === 0n ? 0n : BigInt.asIntN(64, lease),
    },
  };
}

/** The mod_revision of an encoded record, without decoding the rest. */
export function recordModRevision(bytes: Uint8Array): number {
  return get53(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 9);
}

/** The user key of an encoded record (a view into `bytes`, no copy). */
export function recordKey(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return plain(bytes).subarray(HEADER, HEADER + view.getUint32(33));
}

/** Whether an encoded record is a tombstone. */
export function isTombstone(bytes: Uint8Array): boolean {
  return (bytes[0] & 1) === 1;
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

/** Bytewise comparison of two keys: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
