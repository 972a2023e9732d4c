/**
 * JSON parsing with Go `encoding/json`'s acceptance rules and error texts,
 * so cairn's gateway rejects malformed bodies with the message etcd sends
 * (`unexpected EOF`, `invalid character '}' looking for beginning of object
 * key string`, …).
 *
 * Numbers are returned as {@linkcode JsonNumber}s holding the literal text,
 * so int64 values keep their precision and the codec can reject literals Go
 * rejects for integer fields (`1e2`, `1.5`); strings written with escapes
 * are {@linkcode JsonString}s that keep their raw text.
 *
 * @module
 */

import { Errors } from "../errors.ts";

/** A JSON number as written in the input (e.g. `"12"`, `"1e2"`, `"-0"`). */
export class JsonNumber {
  /** The literal text of the number. */
  readonly literal: string;
  /** Wraps the literal text of a JSON number. */
  constructor(literal: string) {
    this.literal = literal;
  }
  /** The literal, so `String(n)` and template strings show the number. */
  toString(): string {
    return this.literal;
  }
}

/**
 * How much of the input is read, mirroring the two Go entry points etcd
 * goes through:
 * - `"decoder"`: `json.Decoder.Decode` on a request body. Only the first
 *   value is read and anything after it is ignored; an empty or all-blank
 *   body yields `undefined` (grpc-gateway treats that `io.EOF` as an empty
 *   request); a truncated value fails with `unexpected EOF`.
 * - `"unmarshal"`: `json.Unmarshal` (jsonpb re-reads a quoted int64 this
 *   way). Trailing non-blank text fails with `invalid character 'x' after
 *   top-level value`; truncated or empty input with
 *   `unexpected end of JSON input`.
 */
export type GoJsonMode = "decoder" | "unmarshal";

/**
 * A JSON string written with escapes (`"\u0041"`), keeping its text as
 * written: jsonpb reads enum names and quoted int64s from the raw bytes
 * between the quotes, so `"\u0041SCEND"` is not `ASCEND` to etcd. Strings
 * without a backslash are plain JS strings (their raw text is their value).
 */
export class JsonString {
  /** The decoded string. */
  readonly value: string;
  /** The text between the quotes, escapes not decoded. */
  readonly raw: string;
  /** Wraps a decoded string and its text as written. */
  constructor(value: string, raw: string) {
    this.value = value;
    this.raw = raw;
  }
  /** The decoded string. */
  toString(): string {
    return this.value;
  }
}

function reviver(this: unknown, _key: string, value: unknown, context?: { source?: string }) {
  if (typeof value === "number") {
    return new JsonNumber(context?.source ?? String(value));
  }
  if (typeof value === "string" && context?.source !== undefined && context.source.includes("\\")) {
    return new JsonString(value, context.source.slice(1, -1));
  }
  return value;
}

const NUMBER_TOKEN = /(?:^|[:[,])[ \t\r\n]*-?[0-9]/;

/** True when `text` has at most MAX_DEPTH brackets, so cannot nest deeper. */
function shallow(text: string): boolean {
  if (text.length <= MAX_DEPTH) return true;
  let n = 0;
  for (const open of ["[", "{"]) {
    for (let i = text.indexOf(open); i >= 0; i = text.indexOf(open, i + 1)) {
      if (++n > MAX_DEPTH) return false;
    }
  }
  return true;
}

/**
 * Parses JSON text as Go would (see {@linkcode GoJsonMode}).
 *
 * @throws {EtcdError} InvalidArgument with Go's error message.
 */
export function parseGoJson(text: string, mode: GoJsonMode): unknown {
  try {
    // Without escapes or number tokens the reviver has nothing to keep:
    // skip it (the common request, keys and values in base64 strings).
    // A number token follows `:`, `[` or `,` or starts the text.
    // Go also refuses nesting over 10000 levels, which JSON.parse allows.
    if (!text.includes("\\") && !NUMBER_TOKEN.test(text) && shallow(text)) {
      return JSON.parse(text);
    }
    return JSON.parse(text, reviver as (k: string, v: unknown) => unknown);
  } catch {
    // Either a syntax error, trailing text, an empty body, or nesting too
    // deep for the (recursive) reviver: let the Go scanner decide, with
    // Go's words.
  }
  const end = scanGo(text, mode);
  if (end < 0) return undefined;
  const value = text.slice(0, end);
  try {
    return JSON.parse(value, reviver as (k: string, v: unknown) => unknown);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    // Valid but deeply nested (the scanner accepted ≤ 10000 levels): parse
    // without the reviver; numbers and strings lose their raw text, which
    // only matters for fields that nesting this deep cannot be.
    return JSON.parse(value);
  }
}

/**
 * Where the first JSON value of `text` ends (exclusive), as Go's
 * `json.Decoder` reads a stream of concatenated values: -1 when `text` holds
 * only blanks. Used to split a streaming request body into messages.
 *
 * @throws {EtcdError} `unexpected EOF` when the value is cut short (more
 *   input may complete it), or Go's syntax error.
 */
export function firstValueEnd(text: string): number {
  return scanGo(text, "decoder");
}

const MAX_DEPTH = 10000;

const enum Ctx {
  ObjectKey,
  ObjectValue,
  ArrayValue,
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * Go strconv's one-letter escapes for control characters (`\a \b \f \n
 * \r \t \v`), by byte value.
 */
export const GO_SHORT_ESCAPES: Readonly<Record<number, string>> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
};

/** Go's `quoteChar` for the byte at `text[i]` (the first UTF-8 byte for non-ASCII). */
function quoteChar(text: string, i: number): string {
  const cp = text.codePointAt(i)!;
  let b: number;
  if (cp < 0x80) b = cp;
  else if (cp < 0x800) b = 0xc0 | (cp >> 6);
  else if (cp < 0x10000) b = 0xe0 | (cp >> 12);
  else b = 0xf0 | (cp >> 18);
  if (b === 0x27) return "'\\''";
  if (b === 0x22) return "'\"'";
  if (b === 0x5c) return "'\\\\'";
  if (GO_SHORT_ESCAPES[b] !== undefined) return `'${GO_SHORT_ESCAPES[b]}'`;
  if (b < 0x20 || b === 0x7f) return `'\\x${b.toString(16).padStart(2, "0")}'`;
  if (b >= 0x80 && (b < 0xa1 || b === 0xad)) return `'\\u00${b.toString(16)}'`;
  return `'${String.fromCharCode(b)}'`;
}

function syntaxError(text: string, i: number, context: string): never {
  throw Errors.InvalidArgument(`invalid character ${quoteChar(text, i)} ${context}`);
}

/**
 * Runs Go's JSON scanner over `text`. Returns the index just past the first
 * value, or -1 for blank input in decoder mode; throws Go's error otherwise.
 */
function scanGo(text: string, mode: GoJsonMode): number {
  const n = text.length;
  const stack: Ctx[] = [];
  let i = 0;
  const eof = (): never => {
    throw Errors.InvalidArgument(
      mode === "decoder" ? "unexpected EOF" : "unexpected end of JSON input",
    );
  };
  const skipSpace = () => {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
  };

  skipSpace();
  if (i === n) {
    if (mode === "decoder") return -1;
    eof();
  }

  // Parse one value starting at i; on return i is just past it. Iterative:
  // `stack` holds the open containers.
  for (;;) {
    // --- begin value ---
    skipSpace();
    if (i === n) eof();
    let c = text.charCodeAt(i);
    let openedEmpty = false;
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_DEPTH) syntaxError(text, i, "exceeded max depth");
      i++;
      skipSpace();
      if (i === n) eof();
      const d = text.charCodeAt(i);
      if (c === 0x7b) {
        if (d === 0x7d) {
          i++;
          openedEmpty = true;
        } else {
          stack.push(Ctx.ObjectKey);
          if (d !== 0x22) syntaxError(text, i, "looking for beginning of object key string");
          scanString();
          afterKey();
          continue;
        }
      } else {
        if (d === 0x5d) {
          i++;
          openedEmpty = true;
        } else {
          stack.push(Ctx.ArrayValue);
          continue;
        }
      }
    }
    if (!openedEmpty) {
      if (c === 0x22) scanString();
      else if (c === 0x2d || isDigit(c)) scanNumber();
      else if (c === 0x74) scanLiteral("true");
      else if (c === 0x66) scanLiteral("false");
      else if (c === 0x6e) scanLiteral("null");
      else syntaxError(text, i, "looking for beginning of value");
    }
    // --- end of a value: close containers as far as possible ---
    for (;;) {
      if (stack.length === 0) {
        if (mode === "unmarshal") {
          skipSpace();
          if (i < n) syntaxError(text, i, "after top-level value");
        }
        return i;
      }
      skipSpace();
      if (i === n) eof();
      c = text.charCodeAt(i);
      const top = stack[stack.length - 1];
      if (top === Ctx.ObjectValue) {
        if (c === 0x2c) {
          i++;
          skipSpace();
          if (i === n) eof();
          if (text.charCodeAt(i) !== 0x22) {
            syntaxError(text, i, "looking for beginning of object key string");
          }
          scanString();
          stack[stack.length - 1] = Ctx.ObjectKey;
          afterKey();
          break;
        }
        if (c === 0x7d) {
          i++;
          stack.pop();
          continue;
        }
        syntaxError(text, i, "after object key:value pair");
      } else {
        if (c === 0x2c) {
          i++;
          break;
        }
        if (c === 0x5d) {
          i++;
          stack.pop();
          continue;
        }
        syntaxError(text, i, "after array element");
      }
    }
  }

  function afterKey(): void {
    skipSpace();
    if (i === n) eof();
    if (text.charCodeAt(i) !== 0x3a) syntaxError(text, i, "after object key");
    i++;
    stack[stack.length - 1] = Ctx.ObjectValue;
  }

  function scanString(): void {
    i++; // opening quote
    for (;;) {
      if (i >= n) eof();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x5c) {
        i++;
        if (i >= n) eof();
        const e = text.charCodeAt(i);
        if ('bfnrt\\/"'.includes(text[i])) {
          i++;
          continue;
        }
        if (e === 0x75) {
          i++;
          for (let k = 0; k < 4; k++) {
            if (i >= n) eof();
            if (!isHex(text.charCodeAt(i))) {
              syntaxError(text, i, "in \\u hexadecimal character escape");
            }
            i++;
          }
          continue;
        }
        syntaxError(text, i, "in string escape code");
      }
      if (c < 0x20) syntaxError(text, i, "in string literal");
      i++;
    }
  }

  function scanNumber(): void {
    if (text.charCodeAt(i) === 0x2d) {
      i++;
      if (i >= n) eof();
      if (!isDigit(text.charCodeAt(i))) syntaxError(text, i, "in numeric literal");
    }
    if (text.charCodeAt(i) === 0x30) i++;
    else while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i < n && text.charCodeAt(i) === 0x2e) {
      i++;
      if (i >= n) eof();
      if (!isDigit(text.charCodeAt(i))) {
        syntaxError(text, i, "after decimal point in numeric literal");
      }
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    if (i < n && (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45)) {
      i++;
      if (i < n && (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d)) i++;
      if (i >= n) eof();
      if (!isDigit(text.charCodeAt(i))) syntaxError(text, i, "in exponent of numeric literal");
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
  }

  function scanLiteral(word: string): void {
    i++;
    for (let k = 1; k < word.length; k++) {
      if (i >= n) eof();
      if (text[i] !== word[k]) {
        syntaxError(text, i, `in literal ${word} (expecting '${word[k]}')`);
      }
      i++;
    }
  }
}

/**
 * Quotes a string as Go's `strconv.Quote` (`%q`): printable characters stay,
 * `\a \b \f \n \r \t \v \\ \"` are escaped, other control characters and
 * invalid UTF-8 bytes become `\x..`, other non-printable runes (as
 * `unicode.IsPrint` says) `\u....` or `\U........`.
 */
export function goQuote(bytes: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < bytes.length) {
    const [cp, size] = decodeRune(bytes, i);
    if (cp < 0) {
      out += `\\x${hex2(bytes[i])}`;
    } else if (cp === 0x22 || cp === 0x5c) {
      out += `\\${String.fromCodePoint(cp)}`;
    } else if (cp < 0x20 || cp === 0x7f) {
      out += GO_SHORT_ESCAPES[cp] ?? `\\x${hex2(cp)}`;
    } else if (cp >= 0x80 && !GO_PRINTABLE.test(String.fromCodePoint(cp))) {
      out += cp < 0x10000
        ? `\\u${cp.toString(16).padStart(4, "0")}`
        : `\\U${cp.toString(16).padStart(8, "0")}`;
    } else {
      out += String.fromCodePoint(cp);
    }
    i += size;
  }
  return out + '"';
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** Decodes one UTF-8 rune at `i`: [code point or -1 if invalid, byte length]. */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c = b[i];
  if (c < 0x80) return [c, 1];
  const need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
  if (need < 0 || c >= 0xf5 || i + need >= b.length) return [-1, 1];
  let cp = c & (0x3f >> need);
  for (let k = 1; k <= need; k++) {
    const d = b[i + k];
    if ((d & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (d & 0x3f);
  }
  const min = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [-1, 1];
  return [cp, need + 1];
}

/**
 * Go's `unicode.IsPrint` beyond ASCII: letters, marks, numbers,
 * punctuation and symbols (spaces other than U+0020, format, control,
 * private-use and unassigned code points are escaped by `%q`).
 */
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** `strconv.Quote` of a JS string (its UTF-8 bytes). */
export function goQuoteString(s: string): string {
  return goQuote(new TextEncoder().encode(s));
}
