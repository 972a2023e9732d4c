/**
 * etcd's --cipher-suites: Go's TLS cipher suite names (those of Go's
 * `tls.CipherSuites()` and `tls.InsecureCipherSuites()`, plus the two
 * CHACHA20 names without `_SHA256` that etcd 3.4 also takes), their IANA
 * numbers and OpenSSL names, and the check a listener makes of a client's
 * ClientHello.
 *
 * As in etcd 3.4 (Go's crypto/tls), the list applies to TLS 1.2: a client
 * that speaks TLS 1.3 is served with TLS 1.3 whatever the list says (Go does
 * not let TLS 1.3's suites be chosen), and TLS below 1.2 is never served.
 * node:tls in Deno (rustls) does not take OpenSSL's `ciphers`, so the
 * listener reads the ClientHello itself: a TLS 1.2 client that offers none
 * of the listed suites gets a `handshake_failure` alert (what Go sends), and
 * a connection that ends up on a suite outside the list is closed.
 *
 * @module
 */
import { TLS_CLIENT_HELLO_MAX_BYTES } from "../core/limits.ts";

/** A cipher suite etcd accepts in --cipher-suites. */
export interface CipherSuite {
  /** Go's name, as --cipher-suites spells it. */
  name: string;
  /** The IANA number the ClientHello carries. */
  id: number;
  /** OpenSSL's name (node:tls `ciphers`, `openssl s_client -cipher`); TLS 1.3 suites keep their IANA name. */
  openssl: string;
  /** Whether cairn's TLS (rustls, in Deno's node:tls) can negotiate it. */
  available: boolean;
}

/** Every name etcd 3.4 takes in --cipher-suites, with its number and OpenSSL name. */
export const CIPHER_SUITES: readonly CipherSuite[] = [
  // Go's tls.CipherSuites()
  ["TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f, "AES128-SHA", false],
  ["TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035, "AES256-SHA", false],
  ["TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c, "AES128-GCM-SHA256", false],
  ["TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d, "AES256-GCM-SHA384", false],
  ["TLS_AES_128_GCM_SHA256", 0x1301, "TLS_AES_128_GCM_SHA256", true],
  ["TLS_AES_256_GCM_SHA384", 0x1302, "TLS_AES_256_GCM_SHA384", true],
  ["TLS_CHACHA20_POLY1305_SHA256", 0x1303, "TLS_CHACHA20_POLY1305_SHA256", true],
  ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009, "ECDHE-ECDSA-AES128-SHA", false],
  ["TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a, "ECDHE-ECDSA-AES256-SHA", false],
  ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013, "ECDHE-RSA-AES128-SHA", false],
  ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014, "ECDHE-RSA-AES256-SHA", false],
  ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b, "ECDHE-ECDSA-AES128-GCM-SHA256", true],
  ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c, "ECDHE-ECDSA-AES256-GCM-SHA384", true],
  ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f, "ECDHE-RSA-AES128-GCM-SHA256", true],
  ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030, "ECDHE-RSA-AES256-GCM-SHA384", true],
  ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8, "ECDHE-RSA-CHACHA20-POLY1305", true],
  ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9, "ECDHE-ECDSA-CHACHA20-POLY1305", true],
  // Go's tls.InsecureCipherSuites()
  ["TLS_RSA_WITH_RC4_128_SHA", 0x0005, "RC4-SHA", false],
  ["TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a, "DES-CBC3-SHA", false],
  ["TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c, "AES128-SHA256", false],
  ["TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007, "ECDHE-ECDSA-RC4-SHA", false],
  ["TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011, "ECDHE-RSA-RC4-SHA", false],
  ["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012, "ECDHE-RSA-DES-CBC3-SHA", false],
  ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023, "ECDHE-ECDSA-AES128-SHA256", false],
  ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027, "ECDHE-RSA-AES128-SHA256", false],
  // Go's older names of the CHACHA20 suites, which etcd 3.4 also takes.
  ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8, "ECDHE-RSA-CHACHA20-POLY1305", true],
  ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9, "ECDHE-ECDSA-CHACHA20-POLY1305", true],
].map(([name, id, openssl, available]) => ({
  name: name as string,
  id: id as number,
  openssl: openssl as string,
  available: available as boolean,
}));

const byName = new Map(CIPHER_SUITES.map((s) => [s.name, s]));
const byId = new Map(CIPHER_SUITES.map((s) => [s.id, s]));

/** A --cipher-suites name etcd does not know; the message is etcd's. */
export class CipherSuiteError extends Error {
  /** `unexpected TLS cipher suite "<name>"`, etcd's words. */
  constructor(name: string) {
    super(`unexpected TLS cipher suite ${JSON.stringify(name)}`);
    this.name = "CipherSuiteError";
  }
}

/**
 * The suites of a --cipher-suites value (comma-separated Go names, taken as
 * they are: etcd does not trim spaces), in order. An empty value is an empty
 * list (every suite the TLS library offers).
 *
 * @throws {CipherSuiteError} for a name etcd 3.4 does not take, with its
 *   text: `unexpected TLS cipher suite "<name>"`.
 */
export function parseCipherSuites(value: string): CipherSuite[] {
  if (value === "") return [];
  return value.split(",").map((name) => {
    const suite = byName.get(name);
    if (suite === undefined) throw new CipherSuiteError(name);
    return suite;
  });
}

/** The cipher suite numbered `id` in the ClientHello, if etcd knows it. */
export function cipherSuiteById(id: number): CipherSuite | undefined {
  return byId.get(id);
}

/** The OpenSSL name of a negotiated suite (node:tls `getCipher().name`) → its IANA number. */
export function cipherSuiteIdByOpenssl(name: string): number | undefined {
  return CIPHER_SUITES.find((s) => s.openssl === name)?.id;
}

/** What a ClientHello offers. */
export interface ClientHello {
  /** IANA numbers of the cipher suites offered, in the client's order. */
  suites: number[];
  /** The client offers TLS 1.3 (its supported_versions extension lists 0x0304). */
  tls13: boolean;
}

/**
 * The ClientHello at the start of `head` (the bytes a client sent first):
 * `undefined` while its first record is incomplete, `null` when it is not
 * a TLS handshake record carrying a ClientHello (or is longer than
 * TLS_CLIENT_HELLO_MAX_BYTES).
 */
export function readClientHello(head: Uint8Array): ClientHello | undefined | null {
  if (head.length < 5) return undefined;
  if (head[0] !== 22 || head[1] !== 3) return null; // a handshake record, TLS 1.x
  const recordLength = (head[3] << 8) | head[4];
  if (recordLength + 5 > TLS_CLIENT_HELLO_MAX_BYTES) return null;
  if (head.length < 5 + recordLength) return undefined;
  const body = head.subarray(5, 5 + recordLength);
  let at = 0;
  const need = (n: number) => at + n <= body.length;
  if (!need(4) || body[0] !== 1) return null; // ClientHello
  at = 4 + 2 + 32; // handshake header, client_version, random
  if (!need(1)) return null;
  at += 1 + body[at]; // session_id
  if (!need(2)) return null;
  const suitesLength = (body[at] << 8) | body[at + 1];
  at += 2;
  if (!need(suitesLength) || suitesLength % 2 !== 0) return null;
  const suites: number[] = [];
  for (let i = 0; i < suitesLength; i += 2) suites.push((body[at + i] << 8) | body[at + i + 1]);
  at += suitesLength;
  if (!need(1)) return null;
  at += 1 + body[at]; // compression methods
  let tls13 = false;
  if (need(2)) {
    const end = Math.min(body.length, at + 2 + ((body[at] << 8) | body[at + 1]));
    at += 2;
    while (at + 4 <= end) {
      const type = (body[at] << 8) | body[at + 1];
      const length = (body[at + 2] << 8) | body[at + 3];
      at += 4;
      if (type === 43 && at + length <= end && length >= 1) { // supported_versions
        for (let i = at + 1; i + 1 < at + 1 + body[at] && i + 1 < end; i += 2) {
          if (body[i] === 3 && body[i + 1] === 4) tls13 = true;
        }
      }
      at += length;
    }
  }
  return { suites, tls13 };
}

/**
 * Whether a client with this ClientHello can be served under `allowed` (IANA
 * numbers; empty: any): it offers TLS 1.3, or at least one allowed suite.
 */
export function helloAllowed(hello: ClientHello, allowed: ReadonlySet<number>): boolean {
  if (allowed.size === 0 || hello.tls13) return true;
  return hello.suites.some((s) => allowed.has(s));
}

/** TLS's fatal `handshake_failure` alert (TLS 1.2 record): what Go sends when no suite is shared. */
export const HANDSHAKE_FAILURE_ALERT: Uint8Array = new Uint8Array([21, 3, 3, 0, 2, 2, 40]);
