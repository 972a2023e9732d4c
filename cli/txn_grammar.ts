/**
 * etcdctl's txn input grammar (`etcdctl/ctlv3/command/txn_command.go`):
 *
 * ```
 * <compare>*   blank line
 * <request>*   blank line     (success)
 * <request>*   blank line     (failure)
 *
 * compare := target "(" quoted-key ")" op quoted-value
 * target  := ver | version | c | create | m | mod | val | value | lease
 * op      := = | != | > | <
 * request := put <key> <value> [--lease hex] [--prev-kv] [--ignore-value] [--ignore-lease]
 *          | get <key> [range_end] [get flags]
 *          | del <key> [range_end] [--prefix] [--from-key] [--prev-kv]
 * ```
 *
 * Quoted strings use Go syntax (`"a\nb"`, `"\x00"`, backquotes); request
 * lines split words as etcdctl's `argify` does (double quotes with escapes,
 * single quotes verbatim). Operands of version/create/mod are decimal, of
 * lease hexadecimal (etcdctl 3.5 and later; 3.4 panics on any lease compare).
 *
 * @module
 */

import type { Compare, CompareResult, RequestOp } from "../core/api/types.ts";
import { CtlError, ExitCode, goPanic } from "./exit.ts";
import { FlagError, type FlagSpec, parseFlags } from "./flags.ts";
import { goQuote, parseGoInt64 } from "./go_format.ts";
import { buildDel, buildGet, buildPut, DEL_FLAGS, GET_FLAGS, PUT_FLAGS } from "./ops.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Reads a Go quoted string (`"…"` with escapes, or `` `…` `` raw) at `pos`
 * of `s`, as `fmt`'s `%q` verb scans it.
 *
 * @returns the bytes and the index after the closing quote, or null.
 */
export function scanQuoted(s: string, pos: number): { value: Uint8Array; end: number } | null {
  if (s[pos] === "`") {
    const close = s.indexOf("`", pos + 1);
    if (close < 0) return null;
    return { value: enc.encode(s.slice(pos + 1, close)), end: close + 1 };
  }
  if (s[pos] !== '"') return null;
  const out: number[] = [];
  let i = pos + 1;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') return { value: new Uint8Array(out), end: i + 1 };
    if (c === "\n") return null;
    if (c !== "\\") {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(...enc.encode(ch));
      i += ch.length;
      continue;
    }
    const e = s[i + 1];
    const simple: Record<string, number> = {
      a: 7,
      b: 8,
      f: 12,
      n: 10,
      r: 13,
      t: 9,
      v: 11,
      "\\": 92,
      '"': 34,
    };
    if (e !== undefined && e in simple) {
      out.push(simple[e]);
      i += 2;
    } else if (e === "x") {
      const h = s.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return null;
      out.push(parseInt(h, 16));
      i += 4;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const h = s.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) return null;
      const cp = parseInt(h, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
      out.push(...enc.encode(String.fromCodePoint(cp)));
      i += 2 + n;
    } else if (e !== undefined && e >= "0" && e <= "7") {
      const o = s.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) return null;
      out.push(parseInt(o, 8));
      i += 4;
    } else {
      return null;
    }
  }
  return null;
}

/**
 * Splits a txn request line into words as etcdctl's `argify`: `"double
 * quoted"` (Go escapes), `'single quoted'` (verbatim) or bare words.
 *
 * @throws {CtlError} exit 3 when a double-quoted word is not a valid Go string.
 */
export function argify(line: string): string[] {
  const re = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g;
  const words = line.match(re) ?? [];
  return words.map((w) => {
    if (w.startsWith("'")) return w.slice(1, -1);
    if (w.startsWith('"')) {
      const q = scanQuoted(w, 0);
      if (q === null) throw new CtlError(ExitCode.InvalidInput, "invalid syntax");
      return dec.decode(q.value);
    }
    return w;
  });
}

const RESULTS: Record<string, CompareResult> = {
  "=": "EQUAL",
  "!=": "NOT_EQUAL",
  ">": "GREATER",
  "<": "LESS",
};

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

/**
 * Parses one compare line, e.g. `mod("key") > "0"` or `value("k") = "v"`.
 *
 * @throws {CtlError} exit 3 `malformed comparison: …` or `invalid txn compare
 * request: …` as etcdctl words them; an unknown operator is etcdctl's panic
 * (`panic: Unknown result op`, exit 2).
 */
export function parseCompare(line: string): Compare {
  const paren = line.indexOf("(");
  if (paren < 0) throw new CtlError(ExitCode.InvalidInput, `malformed comparison: ${line}`);
  const target = line.slice(0, paren);
  const rest = line.slice(paren + 1);

  // fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
  let key: Uint8Array = new Uint8Array();
  let op = "";
  let val: Uint8Array = new Uint8Array();
  let n = 0;
  let i = 0;
  const skip = () => {
    while (isSpace(rest[i])) i++;
  };
  scan: {
    skip();
    const k = scanQuoted(rest, i);
    if (k === null) break scan;
    key = k.value;
    i = k.end;
    n++;
    if (rest[i] !== ")") break scan;
    i++;
    // A space in a Sscanf format needs at least one space in the input.
    if (i < rest.length && !isSpace(rest[i])) break scan;
    skip();
    const start = i;
    while (i < rest.length && !isSpace(rest[i])) i++;
    if (i === start) break scan;
    op = rest.slice(start, i);
    n++;
    skip();
    const v = scanQuoted(rest, i);
    if (v === null) break scan;
    val = v.value;
    n++;
  }
  if (n !== 3) {
    throw new CtlError(
      ExitCode.InvalidInput,
      `malformed comparison: ${line}; got ${target}(${goQuote(key)}) ${op} ${goQuote(val)}`,
    );
  }

  const invalid = () => new CtlError(ExitCode.InvalidInput, `invalid txn compare request: ${line}`);
  const int = (base: number): number | bigint | null => {
    try {
      const v = parseGoInt64(dec.decode(val), base);
      return base === 16 ? v : Number(v);
    } catch {
      return null;
    }
  };
  const cmp = (extra: Partial<Compare>, t: Compare["target"]): Compare => {
    const result = RESULTS[op];
    if (result === undefined) throw goPanic("Unknown result op");
    return { result, target: t, key, ...extra };
  };
  switch (target) {
    case "ver":
    case "version": {
      const v = int(10);
      if (v === null) throw invalid();
      return cmp({ version: v as number }, "VERSION");
    }
    case "c":
    case "create": {
      const v = int(10);
      if (v === null) throw invalid();
      return cmp({ create_revision: v as number }, "CREATE");
    }
    case "m":
    case "mod": {
      const v = int(10);
      if (v === null) throw invalid();
      return cmp({ mod_revision: v as number }, "MOD");
    }
    case "val":
    case "value":
      return cmp({ value: val }, "VALUE");
    case "lease": {
      const v = int(16);
      if (v === null) throw invalid();
      return cmp({ lease: v as bigint }, "LEASE");
    }
    default:
      throw new CtlError(
        ExitCode.InvalidInput,
        `malformed comparison: ${line} (unknown target ${target})`,
      );
  }
}

const OP_COMMANDS: Record<string, readonly FlagSpec[]> = {
  put: PUT_FLAGS,
  get: GET_FLAGS,
  del: DEL_FLAGS,
};

/** cobra's usage text for a txn request line whose flags do not parse (etcdctl 3.4). */
const OP_USAGE: Record<string, string> = {
  get: `Usage:
   get [options] <key> [range_end] [flags]

Flags:
      --consistency string   Linearizable(l) or Serializable(s) (default "l")
      --from-key             Get keys that are greater than or equal to the given key using byte compare
  -h, --help                 help for get
      --keys-only            Get only the keys
      --limit int            Maximum number of results
      --order string         Order of results; ASCEND or DESCEND (ASCEND by default)
      --prefix               Get keys with matching prefix
      --print-value-only     Only write values when using the "simple" output format
      --rev int              Specify the kv revision
      --sort-by string       Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION

`,
  put: `Usage:
   put [options] <key> <value> (<value> can also be given from stdin) [flags]

Flags:
  -h, --help           help for put
      --ignore-lease   updates the key using its current lease
      --ignore-value   updates the key using its current value
      --lease string   lease ID (in hexadecimal) to attach to the key (default "0")
      --prev-kv        return the previous key-value pair before modification

`,
  del: `Usage:
   del [options] <key> [range_end] [flags]

Flags:
      --from-key   delete keys that are greater than or equal to the given key using byte compare
  -h, --help       help for del
      --prefix     delete keys with matching prefix
      --prev-kv    return deleted key-value pairs

`,
};

/** cobra's command lookup: an exact name, else a unique prefix of one. */
export function matchCommand(word: string, names: readonly string[]): string | undefined {
  if (names.includes(word)) return word;
  const hits = names.filter((n) => word !== "" && n.startsWith(word));
  return hits.length === 1 ? hits[0] : undefined;
}

/**
 * Parses one request line (`put k v`, `get k --prefix`, `del k`).
 *
 * @throws {CtlError} exit 3 `invalid txn request: <line>` for an unknown
 * command or flag; put/get/del argument errors as those commands raise them.
 */
export function parseRequestOp(line: string): RequestOp {
  const args = argify(line);
  if (args.length < 2) {
    throw new CtlError(ExitCode.InvalidInput, `invalid txn compare request: ${line}`);
  }
  const name = matchCommand(args[0], Object.keys(OP_COMMANDS));
  if (name === undefined) {
    throw new CtlError(ExitCode.InvalidInput, `invalid txn request: ${line}`);
  }
  let parsed;
  try {
    parsed = parseFlags(args.slice(1), OP_COMMANDS[name]);
  } catch (e) {
    if (e instanceof FlagError) {
      const err = new CtlError(ExitCode.InvalidInput, `invalid txn request: ${line}`);
      err.usage = OP_USAGE[name];
      throw err;
    }
    throw e;
  }
  switch (name) {
    case "put":
      return { request_put: buildPut(parsed.args, parsed.values) };
    case "get":
      return { request_range: buildGet(parsed.args, parsed.values).request };
    default:
      return { request_delete_range: buildDel(parsed.args, parsed.values) };
  }
}

/** A source of input lines; `null` means end of input before a newline. */
export interface LineReader {
  /** The next line without its `\n`, or null at EOF (a partial line counts as EOF). */
  readLine(): Promise<string | null>;
}

/** Reads lines until a blank one, as etcdctl's readCompares/readOps. */
async function readSection<T>(r: LineReader, parse: (line: string) => T): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const raw = await r.readLine();
    if (raw === null) throw new CtlError(ExitCode.InvalidInput, "EOF");
    const line = raw.trim();
    if (line.length === 0) return out;
    out.push(parse(line));
  }
}

/** The three sections of a txn, each announced by `prompt` when interactive. */
export async function readTxn(
  r: LineReader,
  prompt: (text: string) => void,
): Promise<{ compare: Compare[]; success: RequestOp[]; failure: RequestOp[] }> {
  prompt("compares:");
  const compare = await readSection(r, parseCompare);
  prompt("success requests (get, put, del):");
  const success = await readSection(r, parseRequestOp);
  prompt("failure requests (get, put, del):");
  const failure = await readSection(r, parseRequestOp);
  return { compare, success, failure };
}

/** A LineReader over a byte stream (standard input). */
export class StreamLineReader implements LineReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = new Uint8Array(0);
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async readLine(): Promise<string | null> {
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl >= 0) {
        const line = this.#buf.subarray(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return dec.decode(line);
      }
      if (this.#done) return null;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        continue;
      }
      const next = new Uint8Array(this.#buf.length + value.length);
      next.set(this.#buf);
      next.set(value, this.#buf.length);
      this.#buf = next;
    }
  }

  /** Releases the stream's lock. */
  release(): void {
    this.#reader.releaseLock();
  }
}

/** A LineReader over a string (tests, scripts). */
export class StringLineReader implements LineReader {
  #rest: string;
  constructor(text: string) {
    this.#rest = text;
  }
  readLine(): Promise<string | null> {
    const nl = this.#rest.indexOf("\n");
    if (nl < 0) return Promise.resolve(null);
    const line = this.#rest.slice(0, nl);
    this.#rest = this.#rest.slice(nl + 1);
    return Promise.resolve(line);
  }
}
