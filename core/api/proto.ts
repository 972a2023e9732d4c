/**
 * Protobuf (proto3 binary wire format) codec for etcd's v3 messages, driven
 * by the same message table as the JSON gateway's codec ({@linkcode SCHEMA}
 * in codec.ts): the gRPC transport's serializer and deserializer.
 *
 * - {@linkcode encodeMessage}: internal message → bytes. Carries exactly what
 *   `toJson` carries: zero-valued scalars and enums are left out, a set oneof
 *   member is written even at its zero value (only the first set member of a
 *   oneof, in declaration order), a present nested message is written even
 *   when empty, repeated numbers/bools/enums are packed (as etcd's gogoproto
 *   code writes them). Its length is `protoSize(type, value)`.
 * - {@linkcode decodeMessage}: bytes → internal message, the same value
 *   `fromJson` gives for the same request through the JSON gateway: absent
 *   scalars and enums get their proto zero value (`zeroOf`: empty bytes, "",
 *   false, 0, 0n, the enum's first name), absent repeated fields `[]`, absent
 *   singular messages and unset oneof members stay absent (no property); an
 *   enum number without a name decodes as the enum's first name. Wire rules:
 *   unknown fields are skipped, packed and unpacked repeated scalars are both
 *   accepted, the last of repeated occurrences of a scalar wins, a message
 *   field that occurs twice is merged, the last oneof member set wins.
 *
 * 64-bit integers: `int64`/`uint64` fields are JS numbers (revisions, counts,
 * sizes; a decoded value beyond ±(2^53 - 1) is an error), `int64n`/`uint64n`
 * are bigints over the full 64-bit range (lease, member and cluster IDs;
 * negative int64 values are two's complement, as protobuf's int64).
 *
 * Both directions walk nested messages with an explicit stack (no recursion),
 * over lookup tables built once at module load; the wire primitives are
 * protobufjs's `Reader` and `Writer`.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./proto.ts";
 * const bytes = encodeMessage("RangeRequest", { key: new Uint8Array([0x61]), limit: 10 });
 * // bytes: 0a 01 61 18 0a
 * const req = decodeMessage("RangeRequest", bytes);
 * // req.key is Uint8Array [0x61], req.limit is 10, req.revision is 0, req.sort_order is "NONE"
 * ```
 *
 * @module
 */

import protobuf from "protobufjs";
import { invariant, InvariantError } from "../invariant.ts";
import {
  type EnumSpec,
  type FieldSpec,
  type MessageName,
  type MessageTypes,
  type ScalarKind,
  SCHEMA,
  zeroOf,
} from "./codec.ts";

const { Reader, Writer } = protobuf;
type Reader = protobuf.Reader;
type Writer = protobuf.Writer;

/**
 * Thrown by {@linkcode decodeMessage} for bytes that are not a valid encoding
 * of the message (truncated, a wrong wire type for a known field, a bad
 * varint, an int64 beyond the safe integer range, nesting over
 * {@linkcode MAX_DECODE_DEPTH}). Bad client input, not a bug: the gRPC
 * server answers it with an error status.
 */
export class ProtoDecodeError extends Error {
  /**
   * Builds the error.
   * @param message says which message failed to decode and why.
   * @param options the underlying error, if any, as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtoDecodeError";
  }
}

/**
 * Deepest nesting of messages {@linkcode decodeMessage} accepts (the root is
 * depth 1): Go protobuf's default recursion limit. A txn nested through JSON
 * reaches about 6,700 (Go's JSON parser stops at 10,000 levels of objects
 * and arrays, three per txn level), so every request the gateway accepts is
 * accepted here too.
 */
export const MAX_DECODE_DEPTH = 10_000;

// ---------------------------------------------------------------------------
// Lookup tables, built once
// ---------------------------------------------------------------------------

const BYTES = 0;
const STRING = 1;
const BOOL = 2;
const INT32 = 3;
const UINT32 = 4;
const INT64 = 5;
const UINT64 = 6;
const INT64N = 7;
const UINT64N = 8;
const ENUM = 9;
const MESSAGE = 10;

const KIND: { readonly [k in ScalarKind]: number } = {
  bytes: BYTES,
  string: STRING,
  bool: BOOL,
  int32: INT32,
  uint32: UINT32,
  int64: INT64,
  uint64: UINT64,
  int64n: INT64N,
  uint64n: UINT64N,
};

/** One field as the codec uses it. */
class Field {
  /** Property name (the proto field name). */
  readonly name: string;
  /** One of the kind constants above. */
  readonly kind: number;
  /** The field's tag as written: `no << 3 | wire type` (packed: wire type 2). */
  readonly tag: number;
  /** Repeated. */
  readonly repeated: boolean;
  /** Repeated and packable (a number, bool or enum): written packed. */
  readonly packed: boolean;
  /** Member of a oneof. */
  readonly inOneof: boolean;
  /** The other members of its oneof, declared before it (the encoder writes only the first set). */
  readonly before: readonly string[];
  /** The other members of its oneof (the decoder removes them when this one is set). */
  readonly siblings: readonly string[];
  /** Enum value names by number. */
  readonly enumNames: readonly string[] | undefined;
  /** Enum value numbers by name. */
  readonly enumNumbers: ReadonlyMap<string, number> | undefined;
  /** Enum Go type name, for messages. */
  readonly enumName: string | undefined;
  /** The proto zero value of a singular scalar or enum. */
  readonly zero: unknown;
  /** A message field's message table (set once every table exists). */
  table: Table | undefined = undefined;

  constructor(f: FieldSpec, fields: readonly FieldSpec[]) {
    this.name = f.name;
    this.kind = f.message !== undefined ? MESSAGE : f.enum !== undefined ? ENUM : KIND[f.scalar!];
    this.repeated = f.repeated === true;
    this.packed = this.repeated && this.kind !== BYTES && this.kind !== STRING &&
      this.kind !== MESSAGE;
    const wireType = this.kind === BYTES || this.kind === STRING || this.kind === MESSAGE ||
        this.packed
      ? 2
      : 0;
    invariant(f.no >= 1 && f.no < 2 ** 29, `${f.name}: a field number is in [1, 2^29)`);
    this.tag = f.no * 8 + wireType;
    this.inOneof = f.oneof !== undefined;
    const others = f.oneof === undefined ? [] : fields.filter((g) => g.oneof === f.oneof);
    this.before = others.slice(0, others.indexOf(f)).map((g) => g.name);
    this.siblings = others.filter((g) => g !== f).map((g) => g.name);
    const e: EnumSpec | undefined = f.enum;
    this.enumNames = e?.values;
    this.enumNumbers = e === undefined ? undefined : new Map(e.values.map((v, i) => [v, i]));
    this.enumName = e?.goName;
    this.zero = this.kind === MESSAGE || this.repeated ? undefined : zeroOf(f);
  }
}

/** One message as the codec uses it. */
class Table {
  /** The fields in declaration order (the encoding order). */
  readonly fields: readonly Field[];
  /** The fields by field number (a dense array: etcd's numbers are small). */
  readonly byNo: readonly (Field | undefined)[];
  /**
   * What a new decoded message starts as: singular scalars and enums at their
   * zero value, repeated fields at `null` (each message gets its own `[]`).
   * Cloned with `Object.assign`: far cheaper than adding the properties one by
   * one from a loop shared by every message type.
   */
  readonly template: Readonly<Record<string, unknown>>;
  /** Names of the repeated fields. */
  readonly repeated: readonly string[];

  constructor(readonly name: MessageName, spec: { readonly fields: readonly FieldSpec[] }) {
    this.fields = spec.fields.map((f) => new Field(f, spec.fields));
    const byNo: (Field | undefined)[] = [];
    spec.fields.forEach((f, i) => {
      invariant(byNo[f.no] === undefined, `${name}: field numbers are unique`);
      for (let n = byNo.length; n < f.no; n++) byNo[n] = undefined;
      byNo[f.no] = this.fields[i];
    });
    this.byNo = byNo;
    const template: Record<string, unknown> = {};
    for (const f of this.fields) {
      if (f.repeated) template[f.name] = null;
      else if (f.kind !== MESSAGE && !f.inOneof) template[f.name] = f.zero;
    }
    this.template = template;
    this.repeated = this.fields.filter((f) => f.repeated).map((f) => f.name);
  }
}

const TABLES = {} as { [K in MessageName]: Table };
for (const name of Object.keys(SCHEMA) as MessageName[]) {
  TABLES[name] = new Table(name, SCHEMA[name]);
}
for (const name of Object.keys(SCHEMA) as MessageName[]) {
  const table = TABLES[name];
  SCHEMA[name].fields.forEach((f, i) => {
    if (f.message !== undefined) table.fields[i].table = TABLES[f.message];
  });
}

// ---------------------------------------------------------------------------
// Encoding: internal → bytes
// ---------------------------------------------------------------------------

/**
 * Encodes an internal message in the protobuf wire format; the bytes carry
 * exactly what `toJson(type, value)` carries, and their length is
 * `protoSize(type, value)`. `undefined` and `null` fields count as absent.
 * The result is a `Buffer` from protobufjs's `Writer` (a `Uint8Array`, possibly
 * a view into a shared pool: use its byteOffset/byteLength).
 *
 * @throws {TypeError} if a field holds a value of the wrong type (as `toJson`).
 * @throws {InvariantError} if an int64/uint64 number is not a safe integer
 *   (or a uint64 is negative), or a bigint is outside its 64-bit range.
 */
export function encodeMessage<K extends MessageName>(type: K, value: MessageTypes[K]): Uint8Array {
  const w = Writer.create();
  let depth = 0;
  encTables[0] = TABLES[type];
  encValues[0] = asMessage(value, type);
  encField[0] = 0;
  encItem[0] = 0;
  try {
    for (;;) {
      const child = encodeFields(w, depth);
      if (child !== undefined) {
        depth++;
        encTables[depth] = child.table!;
        encValues[depth] = pendingChild;
        encField[depth] = 0;
        encItem[depth] = 0;
        continue;
      }
      encValues[depth] = undefined;
      if (depth === 0) break;
      w.ldelim();
      depth--;
    }
  } catch (e) {
    encValues.fill(undefined, 0, depth + 1);
    pendingChild = undefined;
    throw e;
  }
  pendingChild = undefined;
  return w.finish();
}

/** The encoder's stack (module-level and reused: encoding is synchronous and never re-entered). */
const encTables: Table[] = [];
const encValues: (Record<string, unknown> | undefined)[] = [];
/** Index of the field being encoded. */
const encField: number[] = [];
/** Next element of a repeated message field in progress. */
const encItem: number[] = [];
/** The nested message `encodeFields` returned a field for. */
let pendingChild: Record<string, unknown> | undefined;

/** `v` as a message object; `where` names the field (or message) in the error, on failure only. */
function asMessage(v: unknown, where: string, f?: Field): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new TypeError(
      `${where}${f === undefined ? "" : "." + f.name}: expected a message object`,
    );
  }
  return v as Record<string, unknown>;
}

/**
 * Writes the fields of the message at `depth` until one holds a nested
 * message: opens it (tag, fork) and returns its field, its value in
 * `pendingChild`; or returns `undefined` once every field is written.
 */
function encodeFields(w: Writer, depth: number): Field | undefined {
  const t = encTables[depth];
  const value = encValues[depth]!;
  const fields = t.fields;
  for (let i = encField[depth]; i < fields.length; i++) {
    const f = fields[i];
    const v = value[f.name];
    if (v === undefined || v === null) continue;
    if (f.inOneof && firstSetAmong(value, f.before)) continue;
    if (f.kind === MESSAGE) {
      if (!f.repeated) {
        encField[depth] = i + 1;
        pendingChild = asMessage(v, t.name, f);
        w.uint32(f.tag).fork();
        return f;
      }
      const items = asArray(v, t.name, f);
      const j = encItem[depth];
      if (j < items.length) {
        encField[depth] = i;
        encItem[depth] = j + 1;
        pendingChild = asMessage(items[j], t.name, f);
        w.uint32(f.tag).fork();
        return f;
      }
      encItem[depth] = 0;
      continue;
    }
    if (!f.repeated) {
      writeSingle(w, t, f, v, f.inOneof);
      continue;
    }
    const items = asArray(v, t.name, f);
    if (items.length === 0) continue;
    if (f.packed) {
      w.uint32(f.tag).fork();
      for (const e of items) writeValue(w, t, f, e);
      w.ldelim();
    } else {
      for (const e of items) {
        w.uint32(f.tag);
        writeValue(w, t, f, e);
      }
    }
  }
  encField[depth] = fields.length;
  return undefined;
}

function firstSetAmong(value: Record<string, unknown>, names: readonly string[]): boolean {
  for (const name of names) {
    const v = value[name];
    if (v !== undefined && v !== null) return true;
  }
  return false;
}

function asArray(v: unknown, type: string, f: Field): unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`${type}.${f.name}: expected an array`);
  return v;
}

/** Writes a singular scalar or enum field; a zero value only when `force` (a oneof member). */
function writeSingle(w: Writer, t: Table, f: Field, v: unknown, force: boolean): void {
  if (!force && isZero(t, f, v)) return;
  w.uint32(f.tag);
  writeValue(w, t, f, v);
}

/** Whether `v` is the proto zero value of a singular scalar or enum field (type-checked). */
function isZero(t: Table, f: Field, v: unknown): boolean {
  switch (f.kind) {
    case BYTES:
      if (!(v instanceof Uint8Array)) {
        throw new TypeError(`${t.name}.${f.name}: expected a Uint8Array`);
      }
      return v.length === 0;
    case STRING:
      if (typeof v !== "string") throw new TypeError(`${t.name}.${f.name}: expected a string`);
      return v === "";
    case BOOL:
      if (typeof v !== "boolean") throw new TypeError(`${t.name}.${f.name}: expected a boolean`);
      return !v;
    case ENUM:
      return enumNumber(t, f, v) === 0;
    default:
      if (typeof v !== "number" && typeof v !== "bigint") {
        throw new TypeError(`${t.name}.${f.name}: expected a number or bigint`);
      }
      // deno-lint-ignore eqeqeq
      return v == 0;
  }
}

function enumNumber(t: Table, f: Field, v: unknown): number {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) outOfRange(t, f, v);
    return v;
  }
  const n = f.enumNumbers!.get(v as string);
  if (n === undefined) {
    throw new TypeError(`${t.name}.${f.name}: unknown ${f.enumName} value ${String(v)}`);
  }
  return n;
}

/** What each integer kind holds, for the invariant a bad value violates. */
const RANGE: { readonly [kind: number]: string } = {
  [ENUM]: "an int32",
  [INT32]: "an integer in [-2^31, 2^31)",
  [UINT32]: "an integer in [0, 2^32)",
  [INT64]: "a safe integer (or a bigint in [-2^63, 2^63))",
  [UINT64]: "a safe integer ≥ 0 (or a bigint in [0, 2^64))",
  [INT64N]: "a bigint in [-2^63, 2^63) (or a safe integer)",
  [UINT64N]: "a bigint in [0, 2^64) (or a safe integer ≥ 0)",
};

function outOfRange(t: Table, f: Field, v: unknown): never {
  invariant(false, `${t.name}.${f.name} holds ${RANGE[f.kind]}, not ${String(v)}`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Writes one scalar or enum value, without its tag. */
function writeValue(w: Writer, t: Table, f: Field, v: unknown): void {
  switch (f.kind) {
    case BYTES:
      if (!(v instanceof Uint8Array)) {
        throw new TypeError(`${t.name}.${f.name}: expected a Uint8Array`);
      }
      w.bytes(v);
      return;
    case STRING:
      if (typeof v !== "string") throw new TypeError(`${t.name}.${f.name}: expected a string`);
      w.string(v);
      return;
    case BOOL:
      if (typeof v !== "boolean") throw new TypeError(`${t.name}.${f.name}: expected a boolean`);
      w.bool(v);
      return;
    case ENUM:
      w.int32(enumNumber(t, f, v));
      return;
    case INT32:
      if (!Number.isInteger(v) || (v as number) < -(2 ** 31) || (v as number) >= 2 ** 31) {
        outOfRange(t, f, v);
      }
      w.int32(v as number);
      return;
    case UINT32:
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= 2 ** 32) {
        outOfRange(t, f, v);
      }
      w.uint32(v as number);
      return;
  }
  // 64-bit integers, from a number or a bigint whichever the kind (as toJson).
  const unsigned = f.kind === UINT64 || f.kind === UINT64N;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || (unsigned && v < 0)) outOfRange(t, f, v);
    w.int64(v);
    return;
  }
  if (typeof v !== "bigint") {
    throw new TypeError(`${t.name}.${f.name}: expected a number or bigint`);
  }
  if (unsigned ? v < 0n || v > UINT64_MAX : v < INT64_MIN || v > INT64_MAX) outOfRange(t, f, v);
  if (v >= SAFE_MIN && v <= SAFE_MAX) w.int64(Number(v));
  else w.int64(bitsOf(v));
}

/** Scratch 64-bit value for the Writer (it copies the bits at once). */
const bits: protobuf.Long = { low: 0, high: 0, unsigned: false };

/**
 * The last few bigints written beyond the safe range, with their 32-bit
 * halves: IDs repeat (every header carries the same cluster and member ID, a
 * keep-alive stream the same lease), and splitting a bigint allocates.
 */
const recent: bigint[] = [0n, 0n, 0n, 0n];
const recentLow = new Int32Array(4);
const recentHigh = new Int32Array(4);
let recentNext = 0;

/** `v`'s two's complement bits in `bits`. */
function bitsOf(v: bigint): protobuf.Long {
  for (let i = 0; i < 4; i++) {
    if (recent[i] === v) {
      bits.low = recentLow[i];
      bits.high = recentHigh[i];
      return bits;
    }
  }
  bits.low = Number(BigInt.asUintN(32, v)) | 0;
  bits.high = Number(BigInt.asUintN(32, v >> 32n)) | 0;
  const i = recentNext;
  recentNext = (i + 1) & 3;
  recent[i] = v;
  recentLow[i] = bits.low;
  recentHigh[i] = bits.high;
  return bits;
}

// ---------------------------------------------------------------------------
// Decoding: bytes → internal
// ---------------------------------------------------------------------------

/**
 * Decodes protobuf bytes into an internal message: the value `fromJson` gives
 * for the same request (see the module doc for defaults and wire rules).
 * Non-empty bytes fields are plain `Uint8Array` views into `bytes` (as
 * protobufjs decodes them; allocating a typed array costs ten times a view):
 * `bytes` must not be modified while the result is in use, and a retained
 * field keeps `bytes`' buffer alive. grpc-js hands each message its own
 * buffer (small ones in a slice of Node's shared 8 KiB pool), which satisfies
 * both; a caller that reuses its buffer passes a copy.
 *
 * @throws {ProtoDecodeError} if `bytes` is not a valid encoding of `type`.
 */
export function decodeMessage<K extends MessageName>(type: K, bytes: Uint8Array): MessageTypes[K] {
  // A plain Uint8Array view (a Node Buffer's slices would be Buffers).
  const buf = Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const root = TABLES[type];
  const out = newMessage(root);
  let depth = 0;
  decOuts[0] = out;
  decTables[0] = root;
  decEnds[0] = buf.length;
  try {
    let t = root;
    let o = out;
    let end = buf.length;
    for (;;) {
      if (r.pos >= end) {
        // Values check their end; a nested message's fields cannot overrun it.
        invariant(r.pos === end, "a decoded field ends within its message");
        decOuts[depth] = undefined;
        if (depth === 0) break;
        depth--;
        t = decTables[depth];
        o = decOuts[depth]!;
        end = decEnds[depth];
        continue;
      }
      readVarint(r, end);
      if (hi !== 0 || lo >>> 3 === 0) fail(`bad field tag at offset ${r.pos}`);
      const no = lo >>> 3;
      const wireType = lo & 7;
      const f = no < t.byNo.length ? t.byNo[no] : undefined;
      if (f === undefined) {
        skipField(r, wireType, end);
        continue;
      }
      if (f.kind !== MESSAGE) {
        readField(r, t, o, f, wireType, end);
        continue;
      }
      if (wireType !== 2) wrongWireType(t, f, wireType);
      const childEnd = readLength(r, end);
      if (depth + 1 >= MAX_DECODE_DEPTH) {
        fail(`messages nested deeper than ${MAX_DECODE_DEPTH} levels`);
      }
      const child = childMessage(o, f);
      depth++;
      t = f.table!;
      o = child;
      end = childEnd;
      decOuts[depth] = o;
      decTables[depth] = t;
      decEnds[depth] = end;
    }
  } catch (e) {
    decOuts.fill(undefined, 0, depth + 1);
    if (e instanceof InvariantError) throw e;
    if (e instanceof ProtoDecodeError) {
      throw new ProtoDecodeError(`Cannot decode ${type}: ${e.message}`);
    }
    throw new ProtoDecodeError(`Cannot decode ${type}: ${(e as Error).message}`, { cause: e });
  }
  return out as unknown as MessageTypes[K];
}

/** The decoder's stack (module-level and reused: decoding is synchronous and never re-entered). */
const decOuts: (Record<string, unknown> | undefined)[] = [];
const decTables: Table[] = [];
const decEnds: number[] = [];

function fail(message: string): never {
  throw new ProtoDecodeError(message);
}

function wrongWireType(t: Table, f: Field, wireType: number): never {
  fail(
    `field ${t.name}.${f.name} (${f.tag >>> 3}) has wire type ${wireType}, want ${f.tag & 7}${
      f.packed ? " or 0" : ""
    }`,
  );
}

/** A new decoded message: zero values and empty lists, nothing else. */
function newMessage(t: Table): Record<string, unknown> {
  const out: Record<string, unknown> = Object.assign({}, t.template);
  for (const name of t.repeated) out[name] = [];
  return out;
}

/** The message a message field's bytes decode into: a new element, a new value, or (merge) the existing one. */
function childMessage(o: Record<string, unknown>, f: Field): Record<string, unknown> {
  if (f.repeated) {
    const child = newMessage(f.table!);
    (o[f.name] as unknown[]).push(child);
    return child;
  }
  if (f.inOneof) clearSiblings(o, f);
  const existing = o[f.name];
  if (existing !== undefined) return existing as Record<string, unknown>;
  const child = newMessage(f.table!);
  o[f.name] = child;
  return child;
}

function clearSiblings(o: Record<string, unknown>, f: Field): void {
  for (const name of f.siblings) {
    if (o[name] !== undefined) delete o[name];
  }
}

/** Low and high 32 bits of the last varint `readVarint` read (module-level: no allocation). */
let lo = 0;
let hi = 0;

/**
 * Reads one varint (up to 10 bytes) into `lo`/`hi`, checking it ends within
 * `end` and is terminated. protobufjs's `uint32()` serves varints of up to 4
 * bytes without allocating; longer ones are read again with `int64()`, which
 * checks the 10-byte limit.
 */
function readVarint(r: Reader, end: number): void {
  const start = r.pos;
  // uint32() reads 5 bytes unchecked, then skips 5 more; only safe with 10 left.
  if (r.len - start >= 10) {
    const v = r.uint32();
    if (r.pos - start <= 4) {
      lo = v;
      hi = 0;
      if (r.pos > end) fail(`truncated varint at offset ${start}`);
      return;
    }
    r.pos = start;
  }
  const l = r.int64();
  lo = l.low;
  hi = l.high;
  // int64() may take a 4th byte without looking at its continuation bit, or a
  // byte past the end: both are a truncated varint.
  if (r.pos > end || r.buf[r.pos - 1] > 0x7f) fail(`truncated varint at offset ${start}`);
}

/** Reads a length prefix and returns where the bytes it announces end (checked against `end`). */
function readLength(r: Reader, end: number): number {
  const start = r.pos;
  readVarint(r, end);
  const n = lo >>> 0;
  if (hi !== 0 || n > end - r.pos) {
    fail(`length ${hi !== 0 ? "≥ 2^32" : n} at offset ${start} runs past the end of its message`);
  }
  return r.pos + n;
}

/** Skips an unknown field's value. */
function skipField(r: Reader, wireType: number, end: number): void {
  const start = r.pos;
  switch (wireType) {
    case 0:
      readVarint(r, end);
      return;
    case 1:
    case 5: {
      const n = wireType === 1 ? 8 : 4;
      if (end - r.pos < n) fail(`truncated fixed${n * 8} at offset ${start}`);
      r.pos += n;
      return;
    }
    case 2:
      r.pos = readLength(r, end);
      return;
    case 3:
      // A group (proto2); protobufjs skips it to its end-group tag, with a nesting limit.
      r.skipType(3);
      if (r.pos > end) fail(`truncated group at offset ${start}`);
      return;
    default:
      fail(`bad wire type ${wireType} at offset ${start}`);
  }
}

/** Reads one occurrence of a scalar or enum field into `o`. */
function readField(
  r: Reader,
  t: Table,
  o: Record<string, unknown>,
  f: Field,
  wireType: number,
  end: number,
): void {
  const kind = f.kind;
  if (kind === BYTES || kind === STRING) {
    if (wireType !== 2) wrongWireType(t, f, wireType);
    const valueEnd = readLength(r, end);
    const s = r.pos;
    r.pos = valueEnd;
    let v: unknown;
    if (s === valueEnd) v = kind === STRING ? "" : EMPTY;
    else if (kind === STRING) v = utf8.decode(r.buf.subarray(s, valueEnd));
    else v = r.buf.subarray(s, valueEnd);
    store(o, f, v);
    return;
  }
  if (wireType === 0) {
    readVarint(r, end);
    store(o, f, varintValue(t, f));
    return;
  }
  if (wireType !== 2 || !f.packed) wrongWireType(t, f, wireType);
  const valueEnd = readLength(r, end);
  const items = o[f.name] as unknown[];
  while (r.pos < valueEnd) {
    readVarint(r, valueEnd);
    items.push(varintValue(t, f));
  }
}

/** UTF-8, invalid sequences as U+FFFD (etcd 3.4's gogoproto code does not check), a BOM kept. */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
/** Empty bytes: `fromJson`'s shared, frozen zero value. */
const EMPTY: Uint8Array = zeroOf({ name: "", no: 1, scalar: "bytes" }) as Uint8Array;

function store(o: Record<string, unknown>, f: Field, v: unknown): void {
  if (f.repeated) (o[f.name] as unknown[]).push(v);
  else {
    if (f.inOneof) clearSiblings(o, f);
    o[f.name] = v;
  }
}

/** The value of the varint in `lo`/`hi` as field `f`'s kind. */
function varintValue(t: Table, f: Field): unknown {
  switch (f.kind) {
    case BOOL:
      return lo !== 0 || hi !== 0;
    case INT32:
      return lo | 0;
    case UINT32:
      return lo >>> 0;
    case ENUM:
      return f.enumNames![lo | 0] ?? f.enumNames![0];
    case INT64:
    case UINT64: {
      const n = (f.kind === INT64 ? hi : hi >>> 0) * 4294967296 + (lo >>> 0);
      if (!Number.isSafeInteger(n)) {
        fail(`field ${t.name}.${f.name} holds ${bigOf(f.kind === INT64)}, beyond ±(2^53 - 1)`);
      }
      return n;
    }
    case INT64N:
      return bigOf(true);
    default: // UINT64N
      return bigOf(false);
  }
}

/** The varint in `lo`/`hi` as a bigint, two's complement when `signed`. */
function bigOf(signed: boolean): bigint {
  const h = signed ? hi : hi >>> 0;
  // Exact in a double while |value| < 2^53.
  if (h >= -0x200000 && h < 0x200000) return BigInt(h * 4294967296 + (lo >>> 0));
  const u = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return signed ? BigInt.asIntN(64, u) : u;
}
