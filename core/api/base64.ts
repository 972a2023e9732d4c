/**
 * Standard padded base64 (RFC 4648 §4), with decoding that fails exactly
 * where Go's `base64.StdEncoding.Decode` fails, so cairn can answer
 * `illegal base64 data at input byte N` with etcd's N. Like Go, the
 * decoder skips `\r` and `\n` anywhere in the input.
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
const PAD = 0x3d; // '='
const encoder = new TextEncoder();
const nativeToBase64 = (Uint8Array.prototype as { toBase64?: (this: Uint8Array) => string })
  .toBase64;
const nativeFromBase64 = (Uint8Array as { fromBase64?: (text: string) => Uint8Array }).fromBase64;

/**
 * Encodes bytes as standard padded base64 (what Go's `encoding/json` writes
 * for a `[]byte`).
 */
export function encodeBase64(bytes: Uint8Array): string {
  // Uint8Array.prototype.toBase64 (TC39, in Deno's V8) is several times
  // faster than the btoa path; same output (standard alphabet, padded).
  if (nativeToBase64 !== undefined) return nativeToBase64.call(bytes);
  // Chunked String.fromCharCode + btoa.
  let bin = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return btoa(bin);
}

/**
 * Decodes standard padded base64 as Go's `base64.StdEncoding.Decode` does.
 * Returns the bytes, or, on bad input, the byte offset (into the UTF-8
 * encoding of `text`) that Go's `CorruptInputError` reports.
 */
export function decodeGoBase64(text: string): Uint8Array | number {
  // Fast path: canonical input (no newlines, correct padding) via atob.
  if (text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    // Uint8Array.fromBase64 (TC39, in Deno's V8) decodes canonical input
    // as atob does (loose: overflow bits ignored), several times faster.
    if (nativeFromBase64 !== undefined) {
      try {
        return nativeFromBase64(text);
      } catch {
        // fall through
      }
    }
    try {
      const bin = atob(text);
      const out = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    } catch {
      // fall through to the exact decoder
    }
  }
  return decodeExact(encoder.encode(text));
}

/** A port of Go 1.19's `(*Encoding).Decode`/`decodeQuantum` (non-strict). */
function decodeExact(src: Uint8Array): Uint8Array | number {
  const out = new Uint8Array(Math.floor(src.length / 4) * 3 + 3);
  let n = 0;
  let si = 0;
  while (true) {
    const dbuf = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let trailing = -1;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return out.subarray(0, n);
        return si - j; // j === 1, or missing padding
      }
      const c = src[si++];
      const v = DECODE[c];
      if (v >= 0) {
        dbuf[j] = v;
        continue;
      }
      if (c === 0x0a || c === 0x0d) {
        j--;
        continue;
      }
      if (c !== PAD) return si - 1;
      // Padding reached.
      if (j === 0 || j === 1) return si - 1;
      if (j === 2) {
        while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
        if (si === src.length) return src.length;
        if (src[si] !== PAD) return si - 1;
        si++;
      }
      while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
      if (si < src.length) trailing = si;
      dlen = j;
      break;
    }
    const val = (dbuf[0] << 18) | (dbuf[1] << 12) | (dbuf[2] << 6) | dbuf[3];
    const b = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff];
    for (let k = 0; k < dlen - 1; k++) out[n++] = b[k];
    if (trailing >= 0) return trailing;
    if (dlen < 4) return out.subarray(0, n);
  }
}
