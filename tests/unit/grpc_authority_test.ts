/**
 * Unit tests of the `:authority` repair on the client port's HTTP/2
 * connections (server/grpc/authority.ts): header blocks that hpack.js's
 * compressor encodes the way a client does (dynamic table, Huffman, several
 * requests on one connection, table size updates, never-indexed fields)
 * come out with the repaired `:authority`, every other field equal, and no
 * dynamic table state; large blocks split into CONTINUATION frames; other
 * frames pass byte for byte and in order, however the input is chunked; the
 * first request's route (socket or rewriter); malformed input refused.
 */
import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as notEqual,
  ok as assert,
  throws,
} from "node:assert/strict";
// @ts-types="../../server/grpc/hpack.d.ts"
import hpack from "hpack.js";
import type { HpackCompressor, HpackHeaderInput } from "../../server/grpc/hpack.d.ts";
import {
  authorityNeedsRewrite,
  AuthorityRewriter,
  encodeHeaderFrames,
  FrameFlag,
  FrameType,
  HeaderBlockCodec,
  type HeaderField,
  HTTP2_DEFAULT_MAX_FRAME_SIZE,
  HTTP2_PREFACE,
  MalformedHttp2Error,
  rewriteAuthority,
  routeFirstRequest,
} from "../../server/grpc/authority.ts";
import {
  MAX_REWRITTEN_HEADER_BLOCK_BYTES,
  MAX_REWRITTEN_HEADER_LIST_BYTES,
} from "../../core/limits.ts";

// --- helpers -----------------------------------------------------------

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
) {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >>> 16;
  out[1] = (payload.length >>> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function parseFrames(bytes: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  let off = 0;
  while (off < bytes.length) {
    assert(off + 9 <= bytes.length, "a whole frame header");
    const length = (bytes[off] << 16) | (bytes[off + 1] << 8) | bytes[off + 2];
    const stream = new DataView(bytes.buffer, bytes.byteOffset + off + 5, 4).getUint32(0);
    assert(off + 9 + length <= bytes.length, "a whole frame payload");
    frames.push({
      type: bytes[off + 3],
      flags: bytes[off + 4],
      stream,
      payload: bytes.slice(off + 9, off + 9 + length),
    });
    off += 9 + length;
  }
  return frames;
}

const SETTINGS_ACK = frame(FrameType.SETTINGS, FrameFlag.ACK, 0);
const CLIENT_SETTINGS = frame(
  FrameType.SETTINGS,
  0,
  0,
  Uint8Array.of(0x0, 0x2, 0, 0, 0, 0, 0x0, 0x4, 0x00, 0x40, 0x00, 0x00),
);
const WINDOW_UPDATE = frame(FrameType.WINDOW_UPDATE, 0, 0, Uint8Array.of(0, 0x0e, 0xff, 0x01));
const PING = frame(FrameType.PING, 0, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));

/** A client's HPACK encoder: one hpack.js compressor for the connection, as clients keep. */
class ClientEncoder {
  readonly compressor: HpackCompressor;
  #out: Uint8Array[] = [];
  constructor() {
    this.compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
    this.compressor.push = (chunk: Uint8Array) => {
      this.#out.push(chunk);
      return true;
    };
  }
  /** The next header block (with any table size update emitted since the last one). */
  block(fields: HpackHeaderInput[]): Uint8Array {
    this.compressor.write(fields);
    const block = concat(this.#out);
    this.#out = [];
    return block;
  }
  /** Prepends to the next block: the updates that empty the table (RFC 7541 §4.2). */
  reset(): void {
    this.compressor.reset();
  }
}

function request(
  authority: string,
  path: string,
  extra: HpackHeaderInput[] = [],
): HpackHeaderInput[] {
  return [
    { name: ":method", value: "POST" },
    { name: ":scheme", value: "http" },
    { name: ":path", value: path },
    { name: ":authority", value: authority },
    { name: "content-type", value: "application/grpc" },
    { name: "user-agent", value: "grpc-go/1.26.0" },
    { name: "te", value: "trailers" },
    ...extra,
  ];
}

/** What a header list should decode to. */
function expected(fields: HpackHeaderInput[], authority?: string): HeaderField[] {
  return fields.map((f) => ({
    name: f.name,
    value: f.name === ":authority" && authority !== undefined ? authority : f.value,
    neverIndex: f.neverIndex === true,
  }));
}

/** One re-encoded header block: its frames' stream, END_STREAM, priority and block. */
interface Block {
  stream: number;
  endStream: boolean;
  priority: Uint8Array | undefined;
  frames: Frame[];
  block: Uint8Array;
}

function headerBlocks(frames: Frame[]): Block[] {
  const blocks: Block[] = [];
  let open: Block | undefined;
  for (const f of frames) {
    if (f.type === FrameType.HEADERS) {
      assert(open === undefined, "no header block in progress");
      assert((f.flags & FrameFlag.PADDED) === 0, "no padding in re-encoded frames");
      const prio = (f.flags & FrameFlag.PRIORITY) !== 0;
      open = {
        stream: f.stream,
        endStream: (f.flags & FrameFlag.END_STREAM) !== 0,
        priority: prio ? f.payload.slice(0, 5) : undefined,
        frames: [f],
        block: prio ? f.payload.slice(5) : f.payload,
      };
    } else if (f.type === FrameType.CONTINUATION) {
      assert(open !== undefined && f.stream === open.stream, "CONTINUATION continues its block");
      open.frames.push(f);
      open.block = concat([open.block, f.payload]);
    } else {
      assert(open === undefined, "no frame inside a header block");
      continue;
    }
    if ((f.flags & FrameFlag.END_HEADERS) !== 0) {
      blocks.push(open);
      open = undefined;
    }
  }
  assert(open === undefined, "every header block ends");
  return blocks;
}

/**
 * Decodes a re-encoded block as a decoder that has seen nothing else: its
 * fields, and proof that it left no dynamic table entry behind (a dynamic
 * index then fails).
 */
function decodeStateless(block: Uint8Array): HeaderField[] {
  const codec = new HeaderBlockCodec();
  const fields = codec.decode(block);
  throws(() => codec.decode(Uint8Array.of(0x80 | 62)), MalformedHttp2Error);
  return fields;
}

function rewriteAll(input: Uint8Array, chunkSizes?: () => number): Uint8Array {
  const rewriter = new AuthorityRewriter({ dropFirstSettingsAck: false });
  if (chunkSizes === undefined) return concat(rewriter.push(input));
  const out: Uint8Array[] = [];
  for (let off = 0; off < input.length;) {
    const n = Math.max(1, Math.min(chunkSizes(), input.length - off));
    out.push(...rewriter.push(input.subarray(off, off + n)));
    off += n;
  }
  return concat(out);
}

/** A deterministic pseudo-random sequence (xorshift32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

// --- the authority itself ----------------------------------------------

Deno.test("authority: an endpoint URL loses its scheme and path; an authority stays", () => {
  const cases: [string, boolean, string][] = [
    ["http://127.0.0.1:2379", true, "127.0.0.1:2379"],
    ["https://etcd-0.etcd:2379", true, "etcd-0.etcd:2379"],
    ["http://[::1]:2379", true, "[::1]:2379"],
    ["https://h:1/v3/kv?x=1#y", true, "h:1"],
    ["h:1/path", true, "h:1"],
    ["h:1?q", true, "h:1"],
    ["127.0.0.1:2379", false, "127.0.0.1:2379"],
    ["[::1]:2379", false, "[::1]:2379"],
    ["localhost", false, "localhost"],
  ];
  for (const [value, needs, fixed] of cases) {
    assertEquals(authorityNeedsRewrite(value), needs, value);
    assertEquals(rewriteAuthority(value), fixed, value);
  }
});

// --- header blocks -----------------------------------------------------

Deno.test("rewriter: requests encoded with the dynamic table and Huffman come out repaired and stateless", () => {
  const client = new ClientEncoder();
  const requests: HpackHeaderInput[][] = [
    request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range"),
    request("http://127.0.0.1:2379", "/etcdserverpb.KV/Put", [
      { name: "authorization", value: "token.abc", neverIndex: true },
    ]),
    // Indexed almost whole from the dynamic table now.
    request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range"),
    request("http://127.0.0.1:2379", "/etcdserverpb.Watch/Watch", [
      { name: "hasleader", value: "true", huffman: false },
      { name: "x-bin", value: "\x00\xff\x80binary", huffman: false },
    ]),
    request("127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
  ];
  const input: Uint8Array[] = [HTTP2_PREFACE, CLIENT_SETTINGS];
  requests.forEach((fields, i) => {
    const block = client.block(fields);
    if (i === 2) {
      throws(() => new HeaderBlockCodec().decode(block), MalformedHttp2Error, "it needs the table");
    }
    input.push(frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 2 * i + 1, block));
  });
  const out = rewriteAll(concat(input));
  assertEquals(out.subarray(0, HTTP2_PREFACE.length), HTTP2_PREFACE);
  const blocks = headerBlocks(parseFrames(out.subarray(HTTP2_PREFACE.length)));
  assertEquals(blocks.length, requests.length);
  blocks.forEach((b, i) => {
    assertEquals(b.stream, 2 * i + 1);
    assertEquals(b.endStream, false);
    assertEquals(decodeStateless(b.block), expected(requests[i], "127.0.0.1:2379"), `request ${i}`);
  });
  // The server's view: one decoder for the whole connection sees the same.
  const server = new HeaderBlockCodec();
  blocks.forEach((b, i) =>
    assertEquals(server.decode(b.block), expected(requests[i], "127.0.0.1:2379"))
  );
});

Deno.test("rewriter: a dynamic table size update (the table emptied) keeps the mirror in step", () => {
  const client = new ClientEncoder();
  const fields = (n: number) =>
    request("https://etcd:2379/", `/etcdserverpb.KV/Range`, [{ name: "x-n", value: `v${n}` }]);
  const input: Uint8Array[] = [HTTP2_PREFACE];
  for (let i = 0; i < 6; i++) {
    if (i === 3) client.reset();
    const block = client.block(fields(i));
    if (i === 3) assertEquals(block[0] & 0xe0, 0x20, "the block starts with a size update");
    input.push(
      frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1 + 2 * i, block),
    );
  }
  const blocks = headerBlocks(parseFrames(rewriteAll(concat(input)).subarray(24)));
  assertEquals(blocks.length, 6);
  blocks.forEach((b, i) => {
    assertEquals(b.endStream, true);
    assertEquals(decodeStateless(b.block), expected(fields(i), "etcd:2379"));
  });
});

Deno.test("rewriter: a dynamic table size update above 4096 bytes is refused", () => {
  const enc = hpack.encoder.create();
  enc.encodeBits(1, 3); // 001: dynamic table size update
  enc.encodeInt(8192);
  const update = concat(enc.render());
  const block = concat([update, new ClientEncoder().block(request("h:1", "/x"))]);
  const rewriter = new AuthorityRewriter();
  throws(
    () =>
      rewriter.push(
        concat([HTTP2_PREFACE, frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, block)]),
      ),
    MalformedHttp2Error,
  );
  // The same block with an update within the bound decodes.
  const ok = hpack.encoder.create();
  ok.encodeBits(1, 3);
  ok.encodeInt(1024);
  const fields = new HeaderBlockCodec().decode(
    concat([...ok.render(), new ClientEncoder().block(request("h:1", "/x"))]),
  );
  assertEquals(fields, expected(request("h:1", "/x")));
});

Deno.test("rewriter: PADDED and PRIORITY input; the output keeps priority, drops padding", () => {
  const fields = request("http://h:1", "/p");
  const block = new ClientEncoder().block(fields);
  const priority = Uint8Array.of(0x80, 0, 0, 3, 200); // exclusive, depends on 3, weight 200
  const padding = new Uint8Array(7).fill(0);
  const payload = concat([Uint8Array.of(padding.length), priority, block, padding]);
  const flags = FrameFlag.END_HEADERS | FrameFlag.PADDED | FrameFlag.PRIORITY |
    FrameFlag.END_STREAM;
  const out = rewriteAll(concat([HTTP2_PREFACE, frame(FrameType.HEADERS, flags, 5, payload)]));
  const frames = parseFrames(out.subarray(24));
  assertEquals(frames.length, 1);
  assertEquals(
    frames[0].flags,
    FrameFlag.END_HEADERS | FrameFlag.PRIORITY | FrameFlag.END_STREAM,
  );
  const [b] = headerBlocks(frames);
  assertEquals(b.priority, priority);
  assertEquals(decodeStateless(b.block), expected(fields, "h:1"));
});

Deno.test("rewriter: a block over the frame size is split into CONTINUATION frames", () => {
  // 60000 octets that Huffman codes in 8 bits or more: a block of > 3 frames.
  const big = Array.from({ length: 60_000 }, (_, i) => String.fromCharCode(0x21 + (i % 5) * 0x15))
    .join("");
  const fields = request("http://127.0.0.1:2379", "/big", [{
    name: "x-big",
    value: big,
    huffman: false,
  }]);
  const block = new ClientEncoder().block(fields);
  // The client's own frames: HEADERS and CONTINUATIONs of at most 16384 bytes.
  const input: Uint8Array[] = [HTTP2_PREFACE];
  for (let off = 0, first = true; off < block.length; first = false) {
    const n = Math.min(HTTP2_DEFAULT_MAX_FRAME_SIZE, block.length - off);
    const last = off + n === block.length;
    input.push(frame(
      first ? FrameType.HEADERS : FrameType.CONTINUATION,
      (last ? FrameFlag.END_HEADERS : 0) | (first ? FrameFlag.END_STREAM : 0),
      7,
      block.subarray(off, off + n),
    ));
    off += n;
  }
  input.push(frame(FrameType.DATA, FrameFlag.END_STREAM, 9, Uint8Array.of(0, 0, 0, 0, 0)));
  const frames = parseFrames(rewriteAll(concat(input)).subarray(24));
  const [b] = headerBlocks(frames);
  assert(b.frames.length >= 4, `split into ${b.frames.length} frames`);
  assertEquals(b.frames[0].type, FrameType.HEADERS);
  assertEquals(b.frames[0].flags, FrameFlag.END_STREAM);
  for (const f of b.frames.slice(1, -1)) {
    assertEquals([f.type, f.flags], [FrameType.CONTINUATION, 0]);
  }
  assertEquals(b.frames.at(-1)!.flags, FrameFlag.END_HEADERS);
  for (const f of b.frames) assert(f.payload.length <= HTTP2_DEFAULT_MAX_FRAME_SIZE);
  assertEquals(b.frames.map((f) => f.stream), b.frames.map(() => 7));
  assertEquals(decodeStateless(b.block), expected(fields, "127.0.0.1:2379"));
  assertEquals(frames.at(-1)!.type, FrameType.DATA, "the DATA frame after the block follows it");
});

Deno.test("encodeHeaderFrames: sizes, flags and priority of the frames", () => {
  const block = Uint8Array.from({ length: 23 }, (_, i) => i);
  const priority = Uint8Array.of(0, 0, 0, 1, 15);
  const frames = parseFrames(encodeHeaderFrames(3, true, priority, block, 10));
  assertEquals(frames.map((f) => [f.type, f.flags, f.stream, f.payload.length]), [
    [FrameType.HEADERS, FrameFlag.END_STREAM | FrameFlag.PRIORITY, 3, 10],
    [FrameType.CONTINUATION, 0, 3, 10],
    [FrameType.CONTINUATION, FrameFlag.END_HEADERS, 3, 8],
  ]);
  assertEquals(frames[0].payload.subarray(0, 5), priority);
  assertEquals(
    concat([frames[0].payload.subarray(5), ...frames.slice(1).map((f) => f.payload)]),
    block,
  );
  const one = parseFrames(encodeHeaderFrames(1, false, undefined, block));
  assertEquals(one.map((f) => [f.type, f.flags, f.payload.length]), [[
    FrameType.HEADERS,
    FrameFlag.END_HEADERS,
    23,
  ]]);
  const empty = parseFrames(encodeHeaderFrames(1, false, undefined, new Uint8Array()));
  assertEquals(empty.map((f) => [f.type, f.flags, f.payload.length]), [[
    FrameType.HEADERS,
    FrameFlag.END_HEADERS,
    0,
  ]]);
});

// --- other frames and chunking -----------------------------------------

/** A connection's worth of client frames: requests, DATA, SETTINGS, PING, WINDOW_UPDATE, RST_STREAM. */
function connection(): { bytes: Uint8Array; others: Uint8Array[]; requests: HpackHeaderInput[][] } {
  const client = new ClientEncoder();
  const others: Uint8Array[] = [];
  const requests: HpackHeaderInput[][] = [];
  const parts: Uint8Array[] = [HTTP2_PREFACE];
  const other = (f: Uint8Array) => {
    others.push(f);
    parts.push(f);
  };
  other(CLIENT_SETTINGS);
  other(WINDOW_UPDATE);
  other(SETTINGS_ACK);
  for (let i = 0; i < 8; i++) {
    const stream = 1 + 2 * i;
    const fields = request("http://127.0.0.1:2379", `/etcdserverpb.KV/Put${i % 3}`, [
      { name: "x-i", value: String(i) },
    ]);
    requests.push(fields);
    const block = client.block(fields);
    const cut = Math.floor(block.length / 2);
    parts.push(frame(FrameType.HEADERS, 0, stream, block.subarray(0, cut)));
    parts.push(frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, stream, block.subarray(cut)));
    other(
      frame(FrameType.DATA, 0, stream, Uint8Array.from({ length: 100 + i * 1000 }, (_, j) => j)),
    );
    other(
      frame(
        FrameType.DATA,
        FrameFlag.END_STREAM | FrameFlag.PADDED,
        stream,
        Uint8Array.of(2, 7, 7, 0, 0),
      ),
    );
    other(PING);
    other(frame(FrameType.PING, FrameFlag.ACK, 0, Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1)));
    if (i % 3 === 0) other(frame(FrameType.RST_STREAM, 0, stream, Uint8Array.of(0, 0, 0, 8)));
    other(frame(FrameType.SETTINGS, 0, 0));
  }
  return { bytes: concat(parts), others, requests };
}

Deno.test("rewriter: DATA, SETTINGS, PING, WINDOW_UPDATE and RST_STREAM pass byte for byte, in order", () => {
  const { bytes, others, requests } = connection();
  const out = rewriteAll(bytes);
  const frames = parseFrames(out.subarray(24));
  const passed = frames.filter((f) =>
    f.type !== FrameType.HEADERS && f.type !== FrameType.CONTINUATION
  );
  assertEquals(passed.map((f) => frame(f.type, f.flags, f.stream, f.payload)), others);
  // Each request's block comes where the client sent it: just before its DATA.
  frames.forEach((f, i) => {
    if (f.type === FrameType.HEADERS) {
      assertEquals([frames[i + 1].type, frames[i + 1].stream], [FrameType.DATA, f.stream]);
    }
  });
  const blocks = headerBlocks(frames);
  assertEquals(
    blocks.map((b) => decodeStateless(b.block)),
    requests.map((r) => expected(r, "127.0.0.1:2379")),
  );
});

Deno.test("rewriter: any chunking of the input gives the same bytes", () => {
  const { bytes } = connection();
  const whole = rewriteAll(bytes);
  assertEquals(rewriteAll(bytes, () => 1), whole, "one byte at a time");
  for (const seed of [1, 7, 42, 2024]) {
    const next = prng(seed);
    assertEquals(rewriteAll(bytes, () => 1 + (next() % 40)), whole, `small chunks, seed ${seed}`);
    assertEquals(rewriteAll(bytes, () => 1 + (next() % 5000)), whole, `large chunks, seed ${seed}`);
  }
});

Deno.test("rewriter: pass-through bytes are slices of the input, not copies", () => {
  const data = frame(FrameType.DATA, 0, 1, new Uint8Array(1000).fill(9));
  const input = concat([HTTP2_PREFACE, CLIENT_SETTINGS, data, PING]);
  const out = new AuthorityRewriter().push(input);
  assertEquals(out.length, 1, "one run");
  assertEquals(out[0].buffer, input.buffer);
});

Deno.test("rewriter: the first SETTINGS ACK (answering cairn's SETTINGS) is removed, later ones pass", () => {
  const input = concat([
    HTTP2_PREFACE,
    CLIENT_SETTINGS,
    SETTINGS_ACK,
    PING,
    SETTINGS_ACK,
    SETTINGS_ACK,
  ]);
  assertEquals(
    concat(new AuthorityRewriter().push(input)),
    concat([HTTP2_PREFACE, CLIENT_SETTINGS, PING, SETTINGS_ACK, SETTINGS_ACK]),
  );
  assertEquals(concat(new AuthorityRewriter({ dropFirstSettingsAck: false }).push(input)), input);
  // Split inside the ACK's frame header.
  const r = new AuthorityRewriter();
  const at = HTTP2_PREFACE.length + CLIENT_SETTINGS.length + 4;
  assertEquals(
    concat([...r.push(input.subarray(0, at)), ...r.push(input.subarray(at))]),
    concat([HTTP2_PREFACE, CLIENT_SETTINGS, PING, SETTINGS_ACK, SETTINGS_ACK]),
  );
});

Deno.test("rewriter: passAfterFirstRequest passes a connection whose first :authority is fine", () => {
  const client = new ClientEncoder();
  const data = (stream: number) => frame(FrameType.DATA, 0, stream, Uint8Array.of(0, 0, 0, 0, 0));
  const headers = (stream: number, authority: string, path: string) =>
    frame(
      FrameType.HEADERS,
      FrameFlag.END_HEADERS,
      stream,
      client.block(request(authority, path)),
    );
  // The second block indexes the first's fields in the dynamic table: it
  // decodes only after the first went as it came.
  const first = headers(1, "127.0.0.1:2379", "/etcdserverpb.KV/Range");
  const second = headers(3, "127.0.0.1:2379", "/etcdserverpb.KV/Range");
  const rest = concat([data(1), second, data(3), SETTINGS_ACK, PING]);
  const input = concat([HTTP2_PREFACE, CLIENT_SETTINGS, SETTINGS_ACK, first, rest]);
  const want = concat([HTTP2_PREFACE, CLIENT_SETTINGS, first, rest]);
  for (const size of [input.length, 1, 7, 64]) {
    const r = new AuthorityRewriter({ passAfterFirstRequest: true });
    const out: Uint8Array[] = [];
    for (let off = 0; off < input.length; off += size) {
      out.push(...r.push(input.subarray(off, off + size)));
    }
    assertEquals(concat(out), want, `chunks of ${size}`);
    assert(r.passingThrough);
    assertEquals([r.blocks, r.rewritten], [1, 0], "only the first block is parsed");
  }
  // Without the option every block is re-encoded: the output is not the input.
  notEqual(concat(new AuthorityRewriter().push(input)), want);
});

Deno.test("rewriter: passAfterFirstRequest keeps rewriting after a URL :authority, or before the ACK", () => {
  const urlFirst = new ClientEncoder();
  const fineFirst = new ClientEncoder();
  const cases: [string, Uint8Array, string][] = [
    [
      "an endpoint URL first",
      concat([
        HTTP2_PREFACE,
        CLIENT_SETTINGS,
        SETTINGS_ACK,
        frame(
          FrameType.HEADERS,
          FrameFlag.END_HEADERS,
          1,
          urlFirst.block(request("http://h:1", "/a")),
        ),
        frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, urlFirst.block(request("h:1", "/a"))),
      ]),
      "h:1",
    ],
    [
      "the first request before the ACK",
      concat([
        HTTP2_PREFACE,
        CLIENT_SETTINGS,
        frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, fineFirst.block(request("h:1", "/a"))),
        SETTINGS_ACK,
        frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, fineFirst.block(request("h:1", "/a"))),
      ]),
      "h:1",
    ],
  ];
  for (const [name, input, authority] of cases) {
    const r = new AuthorityRewriter({ passAfterFirstRequest: true });
    const out = concat(r.push(input));
    assert(!r.passingThrough, name);
    const blocks = headerBlocks(parseFrames(out.subarray(HTTP2_PREFACE.length)));
    assertEquals(
      blocks.map((b) => decodeStateless(b.block)),
      [expected(request("h:1", "/a"), authority), expected(request("h:1", "/a"), authority)],
      name,
    );
  }
});

// --- the first request's route -----------------------------------------

Deno.test("route: a valid :authority takes the fast path once cairn's SETTINGS is acknowledged", () => {
  const block = new ClientEncoder().block(request("127.0.0.1:2379", "/etcdserverpb.KV/Range"));
  const headers = frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, block);
  const data = frame(FrameType.DATA, FrameFlag.END_STREAM, 1, Uint8Array.of(0, 0, 0, 0, 0));
  const before = concat([HTTP2_PREFACE, CLIENT_SETTINGS, WINDOW_UPDATE]);
  assertEquals(routeFirstRequest(before), { route: "wait", acked: false });
  assertEquals(
    routeFirstRequest(concat([before, headers, data])),
    { route: "wait", acked: false },
    "no ACK yet",
  );
  // ACK after the request (a Go client may queue it so).
  assertEquals(routeFirstRequest(concat([before, headers, data, SETTINGS_ACK, PING])), {
    route: "socket",
    head: concat([before, headers, data, PING]),
  });
  // ACK before the request.
  assertEquals(routeFirstRequest(concat([before, SETTINGS_ACK, headers])), {
    route: "socket",
    head: concat([before, headers]),
  });
  // Partial frames wait.
  const full = concat([before, SETTINGS_ACK, headers]);
  assertEquals(routeFirstRequest(full.subarray(0, full.length - 1)), {
    route: "wait",
    acked: true,
  });
  assertEquals(routeFirstRequest(full.subarray(0, before.length + 12)), {
    route: "wait",
    acked: true,
  });
  // The ACK alone, no request yet: acknowledged, waiting.
  assertEquals(routeFirstRequest(concat([before, SETTINGS_ACK])), { route: "wait", acked: true });
  // No :authority at all (Host instead) needs nothing either.
  const noAuthority = new ClientEncoder().block([
    { name: ":method", value: "GET" },
    { name: ":scheme", value: "http" },
    { name: ":path", value: "/" },
    { name: "host", value: "h:1" },
  ]);
  assertEquals(
    routeFirstRequest(
      concat([
        before,
        SETTINGS_ACK,
        frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, noAuthority),
      ]),
    )
      .route,
    "socket",
  );
});

Deno.test("route: an endpoint URL as :authority takes the rewriter, ACK or not", () => {
  const block = new ClientEncoder().block(
    request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range"),
  );
  const cut = 10;
  const before = concat([HTTP2_PREFACE, CLIENT_SETTINGS]);
  const first = frame(FrameType.HEADERS, FrameFlag.END_STREAM, 1, block.subarray(0, cut));
  const rest = frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(cut));
  assertEquals(
    routeFirstRequest(concat([before, first])),
    { route: "wait", acked: false },
    "block incomplete",
  );
  assertEquals(routeFirstRequest(concat([before, first, rest])).route, "rewrite");
  assertEquals(routeFirstRequest(concat([before, SETTINGS_ACK, first, rest])).route, "rewrite");
});

Deno.test("route: a second request's CONTINUATION while waiting for the ACK is no error", () => {
  const client = new ClientEncoder();
  const one = client.block(request("127.0.0.1:2379", "/a"));
  const two = client.block(request("127.0.0.1:2379", "/b"));
  const head = concat([
    HTTP2_PREFACE,
    CLIENT_SETTINGS,
    frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, one),
    frame(FrameType.HEADERS, 0, 3, two.subarray(0, 2)),
    frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 3, two.subarray(2)),
  ]);
  assertEquals(routeFirstRequest(head), { route: "wait", acked: false });
  assertEquals(routeFirstRequest(concat([head, SETTINGS_ACK])).route, "socket");
});

Deno.test("route: malformed first frames go to the rewriter, which refuses them", () => {
  const block = new ClientEncoder().block(request("h:1", "/a"));
  const bad = [
    frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block),
    frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 0, block),
    frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)),
    frame(FrameType.SETTINGS, FrameFlag.ACK, 0, Uint8Array.of(0, 1, 0, 0, 0, 0)),
  ];
  for (const f of bad) {
    const head = concat([HTTP2_PREFACE, CLIENT_SETTINGS, f]);
    const route = routeFirstRequest(head);
    assertEquals(route.route, "rewrite");
    throws(() => new AuthorityRewriter().push(head), MalformedHttp2Error);
  }
});

// --- malformed input ---------------------------------------------------

Deno.test("rewriter: malformed frames and header blocks are refused, and stay refused", () => {
  const block = new ClientEncoder().block(request("http://h:1", "/a"));
  const headers = (flags: number, stream: number, payload: Uint8Array) =>
    frame(FrameType.HEADERS, flags, stream, payload);
  const cases: [string, Uint8Array[]][] = [
    ["CONTINUATION without HEADERS", [
      frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block),
    ]],
    ["DATA inside a header block", [
      headers(0, 1, block),
      frame(FrameType.DATA, 0, 1, Uint8Array.of(1)),
    ]],
    ["CONTINUATION of another stream", [
      headers(0, 1, block.subarray(0, 3)),
      frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 3, block.subarray(3)),
    ]],
    ["HEADERS on stream 0", [headers(FrameFlag.END_HEADERS, 0, block)]],
    ["PUSH_PROMISE", [frame(FrameType.PUSH_PROMISE, FrameFlag.END_HEADERS, 1, new Uint8Array(8))]],
    ["a header frame over 16384 bytes", [
      headers(0, 1, new Uint8Array(HTTP2_DEFAULT_MAX_FRAME_SIZE + 1)),
    ]],
    ["padding longer than the frame", [
      headers(FrameFlag.END_HEADERS | FrameFlag.PADDED, 1, Uint8Array.of(200, 1, 2)),
    ]],
    ["PRIORITY without room", [
      headers(FrameFlag.END_HEADERS | FrameFlag.PRIORITY, 1, Uint8Array.of(1, 2)),
    ]],
    ["an index past the tables", [
      headers(FrameFlag.END_HEADERS, 1, Uint8Array.of(0xff, 0x80, 0x01)),
    ]],
    ["a truncated literal", [
      headers(FrameFlag.END_HEADERS, 1, block.subarray(0, block.length - 2)),
    ]],
    ["a SETTINGS ACK with a payload", [
      frame(FrameType.SETTINGS, FrameFlag.ACK, 0, new Uint8Array(6)),
    ]],
  ];
  for (const [what, frames] of cases) {
    const rewriter = new AuthorityRewriter();
    throws(() => rewriter.push(concat([HTTP2_PREFACE, ...frames])), MalformedHttp2Error, what);
    throws(() => rewriter.push(PING), MalformedHttp2Error, `${what}: nothing more is taken`);
  }
});

Deno.test("rewriter: a header block or a decoded header list over its bound is refused", () => {
  // Block: CONTINUATIONs (as many as it takes) beyond MAX_REWRITTEN_HEADER_BLOCK_BYTES.
  const filler = new Uint8Array(HTTP2_DEFAULT_MAX_FRAME_SIZE);
  const frames: Uint8Array[] = [HTTP2_PREFACE, frame(FrameType.HEADERS, 0, 1, filler)];
  for (let n = filler.length; n <= MAX_REWRITTEN_HEADER_BLOCK_BYTES; n += filler.length) {
    frames.push(frame(FrameType.CONTINUATION, 0, 1, filler));
  }
  throws(() => new AuthorityRewriter().push(concat(frames)), /header block over/);

  // List: one 4000-byte entry in the dynamic table, then indexed many times
  // (a few bytes of block, far more decoded).
  const client = new ClientEncoder();
  const big = { name: "x-big", value: "v".repeat(4000), huffman: false };
  const first = client.block([big]);
  const copies = Math.ceil(MAX_REWRITTEN_HEADER_LIST_BYTES / 4000) + 1;
  const second = client.block(Array(copies).fill(big));
  assertEquals(second.length, copies, "the second block is one index per field");
  const rewriter = new AuthorityRewriter();
  rewriter.push(concat([HTTP2_PREFACE, frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, first)]));
  throws(
    () => rewriter.push(frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, second)),
    /header list over/,
  );
});

Deno.test("rewriter: a client's GOAWAY is dropped, before and after the connection passes through", () => {
  const client = new ClientEncoder();
  const data = (stream: number) => frame(FrameType.DATA, 0, stream, Uint8Array.of(0, 0, 0, 0, 0));
  const first = frame(
    FrameType.HEADERS,
    FrameFlag.END_HEADERS,
    1,
    client.block(request("127.0.0.1:2379", "/etcdserverpb.KV/Range")),
  );
  // GOAWAY: last stream 0, NO_ERROR.
  const goaway = frame(FrameType.GOAWAY, 0, 0, new Uint8Array(8));
  const rst = frame(FrameType.RST_STREAM, 0, 1, Uint8Array.of(0, 0, 0, 8));
  const input = concat([
    HTTP2_PREFACE,
    CLIENT_SETTINGS,
    goaway,
    SETTINGS_ACK,
    first,
    data(1),
    rst,
    goaway,
    PING,
  ]);
  const want = concat([HTTP2_PREFACE, CLIENT_SETTINGS, first, data(1), rst, PING]);
  for (const size of [input.length, 1, 5, 13]) {
    const r = new AuthorityRewriter({ passAfterFirstRequest: true });
    const out: Uint8Array[] = [];
    for (let off = 0; off < input.length; off += size) {
      out.push(...r.push(input.subarray(off, off + size)));
    }
    assertEquals(concat(out), want, `chunks of ${size}`);
    assert(r.passingThrough);
  }
});
