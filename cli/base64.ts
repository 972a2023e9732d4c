/**
 * Standard padded base64 (RFC 4648 §4), the encoding etcd uses for bytes in
 * JSON. (`@std/encoding` is not reachable here.)
 *
 * @module
 */

/** Encodes bytes as standard padded base64. */
export function encodeBase64(data: Uint8Array): string {
  let s = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < data.length; i += CHUNK) {
    s += String.fromCharCode(...data.subarray(i, i + CHUNK));
  }
  return btoa(s);
}

/**
 * Decodes standard base64 (padding optional).
 *
 * @throws {Error} when the input is not base64.
 */
export function decodeBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
