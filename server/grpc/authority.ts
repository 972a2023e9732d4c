/**
 * `:authority` repair for the gRPC (HTTP/2) connections of the client port.
 *
 * etcdctl 3.4 and Go clientv3 3.4 send their endpoint string as each
 * request's `:authority`: `--endpoints http://127.0.0.1:2379` sends
 * `:authority: http://127.0.0.1:2379`. etcd's grpc-go server takes it; the
 * nghttp2-based `node:http2` server under grpc-js does not (not an RFC 3986
 * authority) and closes the whole connection. So cairn rewrites such an
 * `:authority` to its host and port (`http://h:1/x` → `h:1`) in the client's
 * bytes, before nghttp2 sees them, and costs other clients nothing:
 *
 * 1. After HTTP/2's connection preface cairn sends the client an empty
 *    SETTINGS frame (no setting changed, as nghttp2's own first frame): a Go
 *    client sends no request before the server's SETTINGS, and the gRPC
 *    server has not got the connection yet. The client's ACK of it is removed
 *    from what the gRPC server receives (its own SETTINGS get their own ACK).
 * 2. The client's first frames are held ({@linkcode HTTP2_FIRST_REQUEST_PEEK_BYTES},
 *    {@linkcode HTTP2_FIRST_REQUEST_TIMEOUT_MS}) until its first request's
 *    header block is complete and that ACK has come; the block is decoded.
 * 3. Fast path: its `:authority` is an authority (or absent): the held bytes,
 *    less the ACK, go back into the socket and grpc-js gets the socket itself.
 * 4. Otherwise, or when the peek runs out of bytes or time, grpc-js gets an
 *    {@linkcode AuthorityRewritingSocket}: the client's frames pass through
 *    in order and unchanged except header blocks, each decoded with a
 *    dynamic table that mirrors the client's encoder and re-encoded, the
 *    `:authority` repaired, without the dynamic table (so the server's
 *    decoder needs nothing it did not see). The server's bytes pass through.
 *    A connection whose first request, seen there, has an authority (a
 *    grpc-js client that waited for its SETTINGS ACK) is judged by it as
 *    the fast path judges: that block and everything after it pass
 *    unchanged, without being parsed.
 *
 * The dynamic table's bound is HPACK's default 4096 bytes: neither SETTINGS
 * the client gets (cairn's, nghttp2's) changes SETTINGS_HEADER_TABLE_SIZE,
 * and the server's SETTINGS_MAX_FRAME_SIZE is the default 16384 too
 * (tests/integration/grpc_authority_test.ts checks both). A client that
 * breaks HTTP/2's framing or HPACK on a rewritten connection is closed, as
 * nghttp2 would close it.
 *
 * HPACK is hpack.js's (npm `hpack.js`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type * as net from "node:net";
import { Duplex } from "node:stream";
// @ts-types="./hpack.d.ts"
import hpack from "hpack.js";
import type {
  HpackCompressor,
  HpackDecompressor,
  HpackHeader,
  HpackHeaderInput,
} from "./hpack.d.ts";
import {
  HTTP2_FIRST_REQUEST_AFTER_ACK_MS,
  HTTP2_FIRST_REQUEST_PEEK_BYTES,
  HTTP2_FIRST_REQUEST_TIMEOUT_MS,
  MAX_REWRITTEN_HEADER_BLOCK_BYTES,
  MAX_REWRITTEN_HEADER_LIST_BYTES,
} from "../../core/limits.ts";
import { invariant } from "../../core/invariant.ts";
import { log } from "../log.ts";

/** HTTP/2's client connection preface (RFC 9113 §3.4). */
export const HTTP2_PREFACE: Uint8Array = new TextEncoder().encode(
  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
);
/** Bytes of an HTTP/2 frame header: length (24 bits), type, flags, stream (31 bits). */
export const FRAME_HEADER_BYTES = 9;
/** SETTINGS_MAX_FRAME_SIZE's initial value: the largest frame payload a peer must accept, in bytes. */
export const HTTP2_DEFAULT_MAX_FRAME_SIZE = 16_384;
/** SETTINGS_HEADER_TABLE_SIZE's initial value: the HPACK dynamic table's bound, in bytes. */
export const HPACK_DEFAULT_TABLE_BYTES = 4_096;

/** HTTP/2 frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** HTTP/2 frame flags (RFC 9113 §6). */
export const FrameFlag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Bytes of a HEADERS frame's priority fields: exclusive bit and stream dependency (4), weight (1). */
const PRIORITY_BYTES = 5;

/**
 * The SETTINGS frame cairn sends first: length 0, type SETTINGS (0x4), no
 * flags, stream 0; no parameters, every setting as it is.
 */
export const EMPTY_SETTINGS_FRAME: Uint8Array = Uint8Array.of(0, 0, 0, 0x4, 0, 0, 0, 0, 0);

/** An HTTP/2 client's bytes that break the framing or HPACK: the connection is closed. */
export class MalformedHttp2Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedHttp2Error";
  }
}

/**
 * Whether an `:authority` value needs {@linkcode rewriteAuthority}: it has a
 * `/`, `?` or `#` (a scheme, a path, a query), which no authority has.
 */
export function authorityNeedsRewrite(value: string): boolean {
  return /[/?#]/.test(value);
}

/**
 * The authority in an endpoint URL sent as `:authority`: without a scheme
 * (`http://`, `https://`, any `scheme://`) and from the first `/`, `?` or
 * `#` on.
 *
 * @example
 * ```ts
 * rewriteAuthority("http://127.0.0.1:2379"); // "127.0.0.1:2379"
 * rewriteAuthority("https://etcd-0:2379/v3"); // "etcd-0:2379"
 * ```
 */
export function rewriteAuthority(value: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value);
  const rest = scheme === null ? value : value.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  return end < 0 ? rest : rest.slice(0, end);
}

/** One decoded header field: name and value hold one char per octet. */
export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "literal never indexed"; re-encoded the same way. */
  neverIndex: boolean;
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The HPACK side of one connection's client→server direction: decodes its
 * header blocks in order, with a dynamic table that mirrors the client's
 * encoder (dynamic table size updates included, up to
 * {@linkcode HPACK_DEFAULT_TABLE_BYTES}), and encodes header lists with no
 * state at all: every field a literal without indexing (or never indexed,
 * as it came), names indexed in the static table only.
 */
export class HeaderBlockCodec {
  readonly #decompressor: HpackDecompressor;
  readonly #compressor: HpackCompressor;
  #decoded: HeaderField[] = [];
  #listBytes = 0;
  #encoded: Uint8Array[] = [];
  #error: Error | undefined;
  #broken = false;

  constructor() {
    this.#decompressor = hpack.decompressor.create({
      table: { maxSize: HPACK_DEFAULT_TABLE_BYTES },
    });
    // hpack.js hands each decoded field to push(); taking it there bounds
    // the decoded list as it grows (a one-octet index can name a 4 KiB
    // entry) and skips the Readable side's buffering.
    this.#decompressor.push = (field: HpackHeader) => {
      this.#listBytes += field.name.length + field.value.length + 32;
      if (this.#listBytes > MAX_REWRITTEN_HEADER_LIST_BYTES) {
        throw new MalformedHttp2Error(
          `header list over ${MAX_REWRITTEN_HEADER_LIST_BYTES} bytes`,
        );
      }
      this.#decoded.push({ name: field.name, value: field.value, neverIndex: field.neverIndex });
      return true;
    };
    this.#decompressor.on("error", (err: Error) => {
      this.#error ??= err;
    });
    // Nothing is ever added to this table (every field is encoded with
    // incremental: false), so the peer's decoder needs no state from it.
    this.#compressor = hpack.compressor.create({
      table: { maxSize: HPACK_DEFAULT_TABLE_BYTES },
    });
    this.#compressor.push = (chunk: Uint8Array) => {
      this.#encoded.push(chunk);
      return true;
    };
  }

  /**
   * Decodes the next header block of the connection (fields in order).
   *
   * @throws {MalformedHttp2Error} when HPACK cannot decode it or its list
   *   is over {@linkcode MAX_REWRITTEN_HEADER_LIST_BYTES}; the codec is
   *   unusable after that (its table no longer mirrors the client's).
   */
  decode(block: Uint8Array): HeaderField[] {
    if (this.#broken) throw new MalformedHttp2Error("an earlier header block failed to decode");
    this.#decoded = [];
    this.#listBytes = 0;
    this.#error = undefined;
    if (block.length > 0) {
      try {
        this.#decompressor.write(block);
        this.#decompressor.execute();
      } catch (err) {
        this.#error ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (this.#error !== undefined) {
      this.#broken = true;
      const reason = this.#error.message;
      throw this.#error instanceof MalformedHttp2Error
        ? this.#error
        : new MalformedHttp2Error(`Cannot decode a header block: ${reason}`);
    }
    return this.#decoded;
  }

  /** Encodes a header list as a block that uses no dynamic table. */
  encode(fields: readonly HeaderField[]): Uint8Array {
    this.#encoded = [];
    const input: HpackHeaderInput[] = fields.map((f) => ({
      name: f.name,
      value: f.value,
      neverIndex: f.neverIndex,
      incremental: false,
    }));
    this.#compressor.write(input);
    invariant(
      fields.length === 0 || this.#encoded.length > 0,
      "hpack.js encodes a header block synchronously",
    );
    return concatBytes(this.#encoded);
  }
}

function writeFrameHeader(
  out: Uint8Array,
  off: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): number {
  out[off] = length >>> 16;
  out[off + 1] = (length >>> 8) & 0xff;
  out[off + 2] = length & 0xff;
  out[off + 3] = type;
  out[off + 4] = flags;
  new DataView(out.buffer, out.byteOffset + off + 5, 4).setUint32(0, stream & 0x7fffffff);
  return off + FRAME_HEADER_BYTES;
}

/**
 * One header block as HTTP/2 frames: a HEADERS frame (END_STREAM as given,
 * PRIORITY when `priority` holds its 5 bytes, never PADDED) and, past
 * `maxFrameSize` bytes of payload, CONTINUATION frames; END_HEADERS on the
 * last.
 */
export function encodeHeaderFrames(
  stream: number,
  endStream: boolean,
  priority: Uint8Array | undefined,
  block: Uint8Array,
  maxFrameSize: number = HTTP2_DEFAULT_MAX_FRAME_SIZE,
): Uint8Array {
  invariant(stream > 0, "a header block belongs to a stream");
  invariant(
    priority === undefined || priority.length === PRIORITY_BYTES,
    "priority fields are 5 bytes",
  );
  const prio = priority?.length ?? 0;
  invariant(maxFrameSize > prio, "a HEADERS frame has room for its priority fields");
  const first = Math.min(block.length, maxFrameSize - prio);
  const rest = block.length - first;
  const continuations = Math.ceil(rest / maxFrameSize);
  const out = new Uint8Array(
    FRAME_HEADER_BYTES * (1 + continuations) + prio + block.length,
  );
  let flags = (endStream ? FrameFlag.END_STREAM : 0) |
    (priority !== undefined ? FrameFlag.PRIORITY : 0) |
    (continuations === 0 ? FrameFlag.END_HEADERS : 0);
  let off = writeFrameHeader(out, 0, prio + first, FrameType.HEADERS, flags, stream);
  if (priority !== undefined) {
    out.set(priority, off);
    off += prio;
  }
  out.set(block.subarray(0, first), off);
  off += first;
  for (let from = first, i = 1; from < block.length; i++) {
    const n = Math.min(maxFrameSize, block.length - from);
    flags = i === continuations ? FrameFlag.END_HEADERS : 0;
    off = writeFrameHeader(out, off, n, FrameType.CONTINUATION, flags, stream);
    out.set(block.subarray(from, from + n), off);
    off += n;
    from += n;
  }
  invariant(off === out.length, "the header frames fill their buffer");
  return out;
}

/** A frame header's fields. */
interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  stream: number;
}

function readFrameHeader(b: Uint8Array, off: number): FrameHeader {
  return {
    length: (b[off] << 16) | (b[off + 1] << 8) | b[off + 2],
    type: b[off + 3],
    flags: b[off + 4],
    stream: ((b[off + 5] & 0x7f) << 24 | (b[off + 6] << 16) | (b[off + 7] << 8) | b[off + 8]) >>>
      0,
  };
}

/** A HEADERS frame's header block fragment and priority fields, without its padding. */
function headersFragment(
  flags: number,
  payload: Uint8Array,
): { fragment: Uint8Array; priority: Uint8Array | undefined } {
  let start = 0;
  let end = payload.length;
  if ((flags & FrameFlag.PADDED) !== 0) {
    if (end < 1) throw new MalformedHttp2Error("a PADDED HEADERS frame without its pad length");
    end -= payload[0];
    start = 1;
  }
  let priority: Uint8Array | undefined;
  if ((flags & FrameFlag.PRIORITY) !== 0) {
    priority = payload.slice(start, start + PRIORITY_BYTES);
    start += PRIORITY_BYTES;
  }
  if (end < start) {
    throw new MalformedHttp2Error("a HEADERS frame's padding and priority exceed its payload");
  }
  return { fragment: payload.subarray(start, end), priority };
}

/** Checks a frame header against where it is: inside a header block or not. */
function checkFrame(h: FrameHeader, blockStream: number | undefined): void {
  if (blockStream !== undefined) {
    if (h.type !== FrameType.CONTINUATION || h.stream !== blockStream) {
      throw new MalformedHttp2Error(
        `frame type ${h.type} on stream ${h.stream} inside the header block of stream ${blockStream}`,
      );
    }
  } else if (h.type === FrameType.CONTINUATION) {
    throw new MalformedHttp2Error("a CONTINUATION frame outside a header block");
  } else if (h.type === FrameType.PUSH_PROMISE) {
    throw new MalformedHttp2Error("a PUSH_PROMISE frame from a client");
  } else if (h.type === FrameType.HEADERS && h.stream === 0) {
    throw new MalformedHttp2Error("a HEADERS frame on stream 0");
  }
  if (
    (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION) &&
    h.length > HTTP2_DEFAULT_MAX_FRAME_SIZE
  ) {
    throw new MalformedHttp2Error(
      `a ${h.length}-byte header frame (SETTINGS_MAX_FRAME_SIZE is ${HTTP2_DEFAULT_MAX_FRAME_SIZE})`,
    );
  }
}

function isSettingsAck(h: FrameHeader): boolean {
  if (h.type !== FrameType.SETTINGS || (h.flags & FrameFlag.ACK) === 0) return false;
  if (h.length !== 0 || h.stream !== 0) {
    throw new MalformedHttp2Error("a SETTINGS ACK with a payload or a stream");
  }
  return true;
}

/** A header block being collected. */
interface OpenBlock {
  stream: number;
  endStream: boolean;
  priority: Uint8Array | undefined;
  fragments: Uint8Array[];
  bytes: number;
}

/** Options of {@linkcode AuthorityRewriter}. */
export interface AuthorityRewriterOptions {
  /**
   * Remove the client's first SETTINGS ACK (it answers the SETTINGS frame
   * cairn sent before the gRPC server had the connection). Default true.
   */
  dropFirstSettingsAck?: boolean;
  /**
   * Judge the connection by its first request, as the fast path of
   * {@linkcode serveHttp2Connection} does: when the first header block's
   * `:authority` needs no rewrite (a client keeps one `:authority` per
   * connection) and the first SETTINGS ACK is already removed, that block
   * and every header block after it pass through unchanged and undecoded
   * (the server's HPACK decoder then sees exactly the client's encoder's
   * blocks); frame headers are still read, to drop the client's GOAWAY.
   * Default false: every header block is re-encoded.
   */
  passAfterFirstRequest?: boolean;
}

/**
 * The client→server byte stream of one HTTP/2 connection, from its preface
 * on, with every header block re-encoded without the dynamic table and its
 * `:authority` repaired ({@linkcode rewriteAuthority}); every other byte
 * passes through unchanged and in order (but the first SETTINGS ACK, see
 * {@linkcode AuthorityRewriterOptions.dropFirstSettingsAck}).
 *
 * Holds at most one frame header, one header frame's payload (at most
 * {@linkcode HTTP2_DEFAULT_MAX_FRAME_SIZE}) and one header block (at most
 * {@linkcode MAX_REWRITTEN_HEADER_BLOCK_BYTES}); other frames stream through.
 *
 * @example
 * ```ts
 * const rewriter = new AuthorityRewriter();
 * for (const bytes of rewriter.push(chunk)) server.write(bytes);
 * ```
 */
export class AuthorityRewriter {
  readonly #codec = new HeaderBlockCodec();
  #prefaceLeft = HTTP2_PREFACE.length;
  #passLeft = 0;
  #dropLeft = 0;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #frame: FrameHeader | undefined;
  #payload: Uint8Array | undefined;
  #payloadFill = 0;
  #block: OpenBlock | undefined;
  #dropSettingsAck: boolean;
  readonly #passAfterFirstRequest: boolean;
  #firstBlockSeen = false;
  #failed = false;
  /**
   * Whether header blocks from here on pass unchanged, undecoded (see
   * {@linkcode AuthorityRewriterOptions.passAfterFirstRequest}); frame
   * headers are still read, to drop GOAWAY.
   */
  passingThrough = false;
  /** `:authority` values rewritten so far. */
  rewritten = 0;
  /** Header blocks re-encoded so far. */
  blocks = 0;

  constructor(options: AuthorityRewriterOptions = {}) {
    this.#dropSettingsAck = options.dropFirstSettingsAck ?? true;
    this.#passAfterFirstRequest = options.passAfterFirstRequest ?? false;
  }

  /**
   * The bytes to send on for the next bytes from the client (possibly
   * none, while a frame is incomplete).
   *
   * @throws {MalformedHttp2Error} when they break HTTP/2's framing or HPACK;
   *   the rewriter takes nothing more after that.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw new MalformedHttp2Error("the connection already failed");
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  #push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    // Bytes [run, i) of chunk pass through; one subarray for all of them.
    let run = -1;
    const flush = (end: number) => {
      if (run >= 0 && end > run) out.push(chunk.subarray(run, end));
      run = -1;
    };
    let i = 0;
    while (i < chunk.length) {
      if (this.#dropLeft > 0) {
        const n = Math.min(this.#dropLeft, chunk.length - i);
        flush(i);
        i += n;
        this.#dropLeft -= n;
        continue;
      }
      const pass = this.#prefaceLeft > 0 ? this.#prefaceLeft : this.#passLeft;
      if (pass > 0) {
        const n = Math.min(pass, chunk.length - i);
        if (run < 0) run = i;
        i += n;
        if (this.#prefaceLeft > 0) this.#prefaceLeft -= n;
        else this.#passLeft -= n;
        continue;
      }
      if (this.#payload !== undefined) {
        const n = Math.min(this.#payload.length - this.#payloadFill, chunk.length - i);
        this.#payload.set(chunk.subarray(i, i + n), this.#payloadFill);
        this.#payloadFill += n;
        i += n;
        if (this.#payloadFill === this.#payload.length) {
          const frames = this.#headerFrame(this.#frame!, this.#payload);
          this.#payload = undefined;
          if (frames !== undefined) out.push(frames);
        }
        continue;
      }
      // A frame header, whole in this chunk or pieced together.
      const start = i;
      let header: Uint8Array;
      let inChunk: boolean;
      if (this.#headerFill === 0 && chunk.length - i >= FRAME_HEADER_BYTES) {
        header = chunk.subarray(i, i + FRAME_HEADER_BYTES);
        inChunk = true;
        i += FRAME_HEADER_BYTES;
      } else {
        flush(start);
        const n = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - i);
        this.#header.set(chunk.subarray(i, i + n), this.#headerFill);
        this.#headerFill += n;
        i += n;
        if (this.#headerFill < FRAME_HEADER_BYTES) break;
        this.#headerFill = 0;
        header = this.#header;
        inChunk = false;
      }
      const h = readFrameHeader(header, 0);
      checkFrame(h, this.#block?.stream);
      if (
        !this.passingThrough &&
        (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION)
      ) {
        flush(start);
        this.#frame = h;
        this.#payload = new Uint8Array(h.length);
        this.#payloadFill = 0;
        if (h.length === 0) {
          const frames = this.#headerFrame(h, this.#payload);
          this.#payload = undefined;
          if (frames !== undefined) out.push(frames);
        }
      } else if (this.#dropSettingsAck && isSettingsAck(h)) {
        this.#dropSettingsAck = false;
        flush(start);
      } else if (h.type === FrameType.GOAWAY) {
        // A client's GOAWAY is dropped: it only says the client starts no
        // more streams, and the connection's close follows. Deno's
        // node:http2 (nghttp2) aborts the whole process when a client's
        // GOAWAY arrives with calls still open and the connection then
        // closes (find_stream_on_goaway_func's assertion), as grpc-js
        // clients do when they close with calls in flight.
        flush(start);
        this.#dropLeft = h.length;
      } else {
        if (inChunk) {
          if (run < 0) run = start;
        } else {
          flush(start);
          out.push(header.slice());
        }
        this.#passLeft = h.length;
      }
    }
    flush(i);
    return out;
  }

  /** Takes a complete HEADERS or CONTINUATION frame; the re-encoded frames once its block is whole. */
  #headerFrame(h: FrameHeader, payload: Uint8Array): Uint8Array | undefined {
    let block = this.#block;
    if (h.type === FrameType.HEADERS) {
      const { fragment, priority } = headersFragment(h.flags, payload);
      block = {
        stream: h.stream,
        endStream: (h.flags & FrameFlag.END_STREAM) !== 0,
        priority,
        fragments: [fragment],
        bytes: fragment.length,
      };
      this.#block = block;
    } else {
      invariant(block !== undefined, "a CONTINUATION frame continues an open header block");
      block.fragments.push(payload);
      block.bytes += payload.length;
    }
    if (block.bytes > MAX_REWRITTEN_HEADER_BLOCK_BYTES) {
      throw new MalformedHttp2Error(
        `a header block over ${MAX_REWRITTEN_HEADER_BLOCK_BYTES} bytes`,
      );
    }
    if ((h.flags & FrameFlag.END_HEADERS) === 0) return undefined;
    this.#block = undefined;
    const original = concatBytes(block.fragments);
    const fields = this.#codec.decode(original);
    const first = !this.#firstBlockSeen;
    this.#firstBlockSeen = true;
    let rewrite = false;
    for (const f of fields) {
      if (f.name === ":authority" && authorityNeedsRewrite(f.value)) {
        f.value = rewriteAuthority(f.value);
        this.rewritten++;
        rewrite = true;
      }
    }
    this.blocks++;
    if (first && !rewrite && this.#passAfterFirstRequest && !this.#dropSettingsAck) {
      // No block was re-encoded before this one, so the server's decoder
      // is in step with the client's encoder: the block goes as it came.
      this.passingThrough = true;
      return encodeHeaderFrames(block.stream, block.endStream, block.priority, original);
    }
    return encodeHeaderFrames(
      block.stream,
      block.endStream,
      block.priority,
      this.#codec.encode(fields),
    );
  }
}

/** How to serve a connection, from its first frames. */
export type FirstRequestRoute =
  /** Not decided yet: hold the bytes and wait for more (`acked`: cairn's SETTINGS is acknowledged). */
  | { route: "wait"; acked: boolean }
  /** Fast path: give grpc-js the socket itself, after putting `head` (ACK removed) back into it. */
  | { route: "socket"; head: Uint8Array }
  /** Serve it through an {@linkcode AuthorityRewritingSocket}. */
  | { route: "rewrite"; reason: string };

/**
 * Routes a connection by its first bytes `head` (HTTP/2's whole preface
 * and the frames after it; cairn's empty SETTINGS sent): "socket" once its
 * first request's header block is complete, with an `:authority` that
 * needs no rewrite (or none), and the client's ACK of cairn's SETTINGS is
 * in; "rewrite" once that `:authority` needs a rewrite, or the frames or
 * the block are malformed (the rewriter then closes the connection);
 * "wait" until one of these holds.
 */
export function routeFirstRequest(head: Uint8Array): FirstRequestRoute {
  invariant(head.length >= HTTP2_PREFACE.length, "the peek starts after the whole preface");
  let ackAt = -1;
  let open: number | undefined; // the stream of the header block in progress
  let first: Uint8Array[] | undefined; // the first request's header block fragments
  let firstDone = false;
  let off = HTTP2_PREFACE.length;
  try {
    while (off + FRAME_HEADER_BYTES <= head.length && !(firstDone && ackAt >= 0)) {
      const h = readFrameHeader(head, off);
      const end = off + FRAME_HEADER_BYTES + h.length;
      if (end > head.length) break;
      checkFrame(h, open);
      const payload = head.subarray(off + FRAME_HEADER_BYTES, end);
      if (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION) {
        const fragment = h.type === FrameType.HEADERS
          ? headersFragment(h.flags, payload).fragment
          : payload;
        if (first === undefined) first = [fragment];
        else if (!firstDone) first.push(fragment);
        const endHeaders = (h.flags & FrameFlag.END_HEADERS) !== 0;
        open = endHeaders ? undefined : h.stream;
        if (endHeaders) firstDone = true;
      } else if (ackAt < 0 && isSettingsAck(h)) {
        ackAt = off;
      }
      off = end;
    }
    if (!firstDone) return { route: "wait", acked: ackAt >= 0 };
    const fields = new HeaderBlockCodec().decode(concatBytes(first!));
    const authority = fields.find((f) => f.name === ":authority");
    if (authority !== undefined && authorityNeedsRewrite(authority.value)) {
      return { route: "rewrite", reason: "the first request's :authority is not an authority" };
    }
  } catch (err) {
    if (err instanceof MalformedHttp2Error) return { route: "rewrite", reason: err.message };
    throw err;
  }
  if (ackAt < 0) return { route: "wait", acked: false };
  const out = new Uint8Array(head.length - FRAME_HEADER_BYTES);
  out.set(head.subarray(0, ackAt));
  out.set(head.subarray(ackAt + FRAME_HEADER_BYTES), ackAt);
  return { route: "socket", head: out };
}

/**
 * A client's HTTP/2 connection as grpc-js sees it when its `:authority`
 * needs repair: what the client sends goes through an
 * {@linkcode AuthorityRewriter}; what the server writes goes to the socket
 * unchanged. Either side's end or close ends or closes the other; malformed
 * client bytes close both (never an `error` event: nothing throws out of
 * the socket's handlers).
 *
 * Bounded: the socket is paused while grpc-js has not read what is pushed;
 * a write waits for the socket's `drain`.
 */
export class AuthorityRewritingSocket extends Duplex {
  readonly #socket: net.Socket;
  readonly #rewriter: AuthorityRewriter;

  /**
   * Wraps `socket` (paused); `first` is what `rewriter` already made of the
   * bytes read before.
   */
  constructor(socket: net.Socket, rewriter: AuthorityRewriter, first: Uint8Array[] = []) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#rewriter = rewriter;
    for (const bytes of first) this.push(bytes);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.push(null));
    socket.on("error", () => this.destroy());
    socket.on("close", () => this.destroy());
  }

  /** The client's address (what grpc-js reports as a call's peer). */
  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }
  /** The client's port. */
  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }
  /** The client's address family. */
  get remoteFamily(): string | undefined {
    return this.#socket.remoteFamily;
  }
  /** The listener's address. */
  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }
  /** The listener's port. */
  get localPort(): number | undefined {
    return this.#socket.localPort;
  }
  /** `:authority` values rewritten on this connection so far. */
  get rewritten(): number {
    return this.#rewriter.rewritten;
  }

  /** Forwards to the socket. */
  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }
  /** Forwards to the socket. */
  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.#socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  #onData(chunk: Buffer): void {
    if (this.destroyed) return;
    let out: Uint8Array[];
    try {
      out = this.#rewriter.push(chunk);
    } catch (err) {
      log.debug("closing a gRPC connection: malformed HTTP/2", {
        remote: this.#socket.remoteAddress,
        error: err instanceof Error ? err.message : String(err),
      });
      this.destroy();
      return;
    }
    let full = false;
    for (const bytes of out) if (!this.push(bytes)) full = true;
    if (full) this.#socket.pause();
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) {
      callback(); // the socket's close destroys this wrapper too
      return;
    }
    if (socket.write(chunk)) {
      callback();
      return;
    }
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      callback();
    };
    socket.on("drain", done);
    socket.on("close", done);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(_error: Error | null, callback: (error?: Error | null) => void): void {
    // An error given to destroy() is not re-emitted: the socket's close is
    // what tells the HTTP/2 session, as for a socket it was given itself.
    this.#socket.destroy();
    callback(null);
  }
}

/** Options of {@linkcode serveHttp2Connection}. */
export interface Http2ConnectionOptions {
  /** Hands the connection to the gRPC server: the socket itself, or its rewriting wrapper. */
  inject(connection: net.Socket | AuthorityRewritingSocket): void;
  /** Bytes held while waiting for the first request; default {@linkcode HTTP2_FIRST_REQUEST_PEEK_BYTES}. */
  peekBytes?: number;
  /** Milliseconds to wait for the first request; default {@linkcode HTTP2_FIRST_REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Serves an accepted connection whose first bytes (`head`, read already;
 * the socket paused, no `data` listener) begin HTTP/2's preface: sends
 * cairn's empty SETTINGS, peeks at the first request
 * ({@linkcode routeFirstRequest}) and hands grpc-js the socket or an
 * {@linkcode AuthorityRewritingSocket}. Bytes that are not HTTP/2's preface
 * after all go to grpc-js as they are (it closes the connection); a
 * connection that ends, fails or stays silent before its preface is whole,
 * or whose rewriting fails at once, is closed. Never throws.
 */
export function serveHttp2Connection(
  socket: net.Socket,
  head: Uint8Array,
  options: Http2ConnectionOptions,
): void {
  const { inject } = options;
  const peekBytes = options.peekBytes ?? HTTP2_FIRST_REQUEST_PEEK_BYTES;
  let held: Uint8Array = head;
  let settingsSent = false;
  let done = false;
  let ackTimer: ReturnType<typeof setTimeout> | undefined;

  const finish = () => {
    done = true;
    clearTimeout(timer);
    clearTimeout(ackTimer);
    socket.off("data", onData);
    socket.off("error", close);
    socket.off("end", close);
    socket.pause();
  };
  const close = () => {
    finish();
    socket.destroy();
  };
  const toSocket = (bytes: Uint8Array) => {
    finish();
    socket.unshift(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    inject(socket);
    socket.resume();
  };
  const toRewriter = (reason: string) => {
    finish();
    const rewriter = new AuthorityRewriter({ passAfterFirstRequest: true });
    let first: Uint8Array[];
    try {
      first = rewriter.push(held);
    } catch (err) {
      log.debug("closing a gRPC connection: malformed HTTP/2", {
        remote: socket.remoteAddress,
        error: err instanceof Error ? err.message : String(err),
      });
      socket.destroy();
      return;
    }
    log.debug("rewriting a gRPC connection's :authority", { remote: socket.remoteAddress, reason });
    inject(new AuthorityRewritingSocket(socket, rewriter, first));
  };
  const step = () => {
    if (!settingsSent) {
      const n = Math.min(held.length, HTTP2_PREFACE.length);
      for (let i = 0; i < n; i++) {
        if (held[i] !== HTTP2_PREFACE[i]) return toSocket(held);
      }
      if (held.length < HTTP2_PREFACE.length) return;
      socket.write(EMPTY_SETTINGS_FRAME);
      settingsSent = true;
    }
    const route = routeFirstRequest(held);
    if (route.route === "socket") toSocket(route.head);
    else if (route.route === "rewrite") toRewriter(route.reason);
    else if (held.length > peekBytes) toRewriter(`no first request within ${peekBytes} bytes`);
    else if (route.acked && ackTimer === undefined) {
      // A client that acknowledged cairn's SETTINGS and sends no request
      // waits for its own SETTINGS to be acknowledged (nghttp2-based
      // clients such as grpc-js do; Go's sends its first request at once):
      // it is served through the rewriter rather than kept waiting.
      ackTimer = setTimeout(() => {
        if (!done) toRewriter("no request right after the SETTINGS ACK");
      }, HTTP2_FIRST_REQUEST_AFTER_ACK_MS);
    }
  };
  const run = () => {
    try {
      step();
    } catch (err) {
      log.warn("closing a gRPC connection", { error: err });
      close();
    }
  };
  const onData = (chunk: Buffer) => {
    held = concatBytes([held, chunk]);
    run();
  };
  const timer = setTimeout(() => {
    if (done) return;
    if (settingsSent) {
      toRewriter(
        `no first request within ${options.timeoutMs ?? HTTP2_FIRST_REQUEST_TIMEOUT_MS} ms`,
      );
    } else close();
  }, options.timeoutMs ?? HTTP2_FIRST_REQUEST_TIMEOUT_MS);
  socket.on("data", onData);
  socket.on("error", close);
  socket.on("end", close);
  run();
  if (!done) socket.resume();
}
