/**
 * Go's text formats that etcdctl's output is made of: `time.Duration`
 * strings, `strconv.Quote`, `encoding/json` string escaping, go-humanize's
 * byte sizes and `strconv.ParseInt` error text. ctl prints through these so
 * its output matches etcdctl byte for byte.
 *
 * @module
 */
import { stringifyGo } from "../core/api/codec.ts";
import { goQuote, goQuoteString } from "../core/api/json.ts";

export { goQuote, goQuoteString };

const NS_PER_US = 1_000n;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/**
 * Formats a duration in nanoseconds as Go's `time.Duration.String()` does:
 * `0s`, `850ns`, `1.5µs`, `1.674697ms`, `2.5s`, `1m30s`, `1h0m0s`.
 *
 * @example
 * ```ts
 * formatGoDuration(1_674_697n); // "1.674697ms"
 * ```
 */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < NS_PER_S) {
    if (u < NS_PER_US) out = `${u}ns`;
    else if (u < NS_PER_MS) out = `${fraction(u, 3)}µs`;
    else out = `${fraction(u, 6)}ms`;
  } else {
    const secs = fraction(u % (60n * NS_PER_S), 9);
    u /= 60n * NS_PER_S;
    out = `${secs}s`;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/** `v / 10^prec` with trailing fractional zeros (and a bare dot) dropped. */
function fraction(v: bigint, prec: number): string {
  const scale = 10n ** BigInt(prec);
  const whole = v / scale;
  const frac = (v % scale).toString().padStart(prec, "0").replace(/0+$/, "");
  return frac === "" ? `${whole}` : `${whole}.${frac}`;
}

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  "μs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Parses a Go duration string (`5s`, `500ms`, `1m30s`, `1.5h`) into
 * milliseconds, as `time.ParseDuration` accepts it.
 *
 * @throws {Error} `time: invalid duration "x"` (Go's text) when it does not parse.
 */
export function parseGoDuration(s: string): number {
  const bad = () => new Error(`time: invalid duration "${s}"`);
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw bad();
  let ns = 0;
  const part = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest.length > 0) {
    const m = part.exec(rest);
    if (!m || m[1] === "" || m[1] === ".") {
      if (m === null && /^[0-9.]+$/.test(rest)) {
        throw new Error(`time: missing unit in duration "${s}"`);
      }
      throw bad();
    }
    ns += Number(m[1]) * UNIT_NS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return (sign * ns) / 1e6;
}

/**
 * Formats a byte count as go-humanize's `Bytes` (SI units, base 1000):
 * `9 B`, `20 kB`, `1.5 MB`.
 */
export function humanizeBytes(n: number): string {
  const sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  if (n < 10) return `${n} B`;
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / Math.pow(1000, e)) * 10 + 0.5) / 10;
  if (val < 10) return `${val.toFixed(1)} ${sizes[e]}`;
  // Go's %.0f rounds an exact tie (val is k/10, so x.5 is exact) to even.
  const floor = Math.floor(val);
  const whole = val - floor === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(val);
  return `${whole} ${sizes[e]}`;
}

/**
 * Encodes a string as Go's `encoding/json` does: like JSON.stringify, plus
 * `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` and so on.
 */
export function goJsonString(s: string): string {
  return stringifyGo(s);
}

/** Lower-case hex of an unsigned 64-bit value, as Go's `%x`. */
export function hexU64(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16);
}

/**
 * Parses a decimal int64 as `strconv.ParseInt(s, 10, 64)`.
 *
 * @throws {Error} Go's text: `strconv.ParseInt: parsing "x": invalid syntax`
 * or `... value out of range`.
 */
export function parseGoInt64(s: string, base = 10): bigint {
  const digits = base === 16 ? /^[+-]?[0-9a-fA-F]+$/ : /^[+-]?[0-9]+$/;
  if (!digits.test(s)) {
    throw new Error(`strconv.ParseInt: parsing ${goQuoteString(s)}: invalid syntax`);
  }
  const neg = s.startsWith("-");
  const body = s.replace(/^[+-]/, "");
  let v = BigInt(base === 16 ? `0x${body}` : body);
  if (neg) v = -v;
  if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) {
    throw new Error(`strconv.ParseInt: parsing ${goQuoteString(s)}: value out of range`);
  }
  return v;
}

/**
 * Parses an unsigned 64-bit integer as `strconv.ParseUint(s, base, 64)`
 * (no sign, no prefix, no underscores).
 *
 * @throws {Error} Go's text: `strconv.ParseUint: parsing "x": invalid syntax`
 * or `... value out of range`.
 */
export function parseGoUint64(s: string, base = 10): bigint {
  const digits = base === 16 ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/;
  if (!digits.test(s)) {
    throw new Error(`strconv.ParseUint: parsing ${goQuoteString(s)}: invalid syntax`);
  }
  const v = BigInt(base === 16 ? `0x${s}` : s);
  if (v > 0xffffffffffffffffn) {
    throw new Error(`strconv.ParseUint: parsing ${goQuoteString(s)}: value out of range`);
  }
  return v;
}
