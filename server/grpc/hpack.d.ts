/**
 * Types of the part of hpack.js (npm `hpack.js`, RFC 7541 HPACK) that
 * server/grpc/authority.ts uses. The package ships no types.
 *
 * Both coders are readable-stream Duplexes; cairn drives them synchronously:
 * `write()` runs `_write` at once, `execute()` decodes what was written, and
 * each decoded header (or each rendered chunk of an encoded block) goes to
 * the instance's `push()`.
 *
 * @module
 */
import type { EventEmitter } from "node:events";

/** One header field as hpack.js decodes it; name and value hold one char per octet. */
export interface HpackHeader {
  name: string;
  value: string;
  /** Sent as "literal never indexed" (RFC 7541 §6.2.3). */
  neverIndex: boolean;
}

/** One header field to encode. */
export interface HpackHeaderInput {
  name: string;
  value: string;
  /** Literal never indexed. */
  neverIndex?: boolean;
  /** false: literal without indexing (nothing enters the dynamic table). Default true. */
  incremental?: boolean;
  /** false: string literals are not Huffman-coded. Default true. */
  huffman?: boolean;
}

/** Options of both coders. */
export interface HpackCoderOptions {
  /** The dynamic table; maxSize in bytes (SETTINGS_HEADER_TABLE_SIZE, 4096 by default). */
  table: { maxSize: number };
}

/** Decodes header blocks; its dynamic table lives as long as it does. */
export interface HpackDecompressor extends EventEmitter {
  /** Queues bytes of a header block. */
  write(block: Uint8Array): boolean;
  /** Decodes everything queued; a failure is emitted as `error`. */
  execute(): void;
  /** Receives each decoded header (the Readable side's push). */
  push(header: HpackHeader): boolean;
}

/** Encodes header blocks; its dynamic table lives as long as it does. */
export interface HpackCompressor extends EventEmitter {
  /** Encodes one header block. */
  write(headers: HpackHeaderInput[]): boolean;
  /** Receives the encoded block's chunks (the Readable side's push). */
  push(chunk: Uint8Array): boolean;
  /** Empties the dynamic table, sending the size updates that say so. */
  reset(): void;
}

/** Integer and bit writer that the coders use. */
export interface HpackEncoder {
  encodeBits(bits: number, length: number): void;
  encodeInt(value: number): void;
  render(): Uint8Array[];
}

declare const hpack: {
  decompressor: { create(options: HpackCoderOptions): HpackDecompressor };
  compressor: { create(options: HpackCoderOptions): HpackCompressor };
  encoder: { create(): HpackEncoder };
};
export default hpack;
