/**
 * What etcd 3.4 asks of a client's (or a peer's) certificate beyond a chain
 * to the trusted CA:
 *
 * - --peer-cert-allowed-cn: the certificate's subject CN is exactly this;
 *   --peer-cert-allowed-hostname and --client-cert-allowed-hostname: the
 *   certificate is valid for this host name or IP address (its SANs). Only
 *   with client certificate auth; refused with etcd's `client certificate
 *   authentication failed`. Both on one side fail the start with etcd's
 *   `AllowedCN and AllowedHostname are mutually exclusive (cn="…",
 *   hostname="…")`.
 * - --client-crl-file and --peer-crl-file: a certificate whose serial number
 *   the revocation list names, the leaf or any certificate of the chain the
 *   other side sent, is refused with etcd's `transport: certificate serial
 *   <hex> revoked`. The list (PEM or DER) is read again when the file
 *   changes; a list that cannot be read or parsed refuses every
 *   certificate, as etcd's does. As etcd's, the list's own signature is not
 *   checked: it is the operator's file.
 *
 * etcd fails the TLS handshake of such a connection (a bad_certificate
 * alert); cairn checks once node:tls has finished it and closes the
 * connection before reading a byte of it. Either way the member logs etcd's
 * `rejected connection` warning, and nothing the client sent is served.
 *
 * @module
 */
import type * as tls from "node:tls";
import { checkServerIdentity } from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";
import { goOsError } from "../core/go_os_error.ts";

/** The checks of one listener's certificates; every field optional. */
export interface CertificatePolicy {
  /** The subject CN a certificate must have (--peer-cert-allowed-cn). */
  allowedCn?: string;
  /** The host name or IP a certificate must be valid for (--*-cert-allowed-hostname). */
  allowedHostname?: string;
  /** Path of a certificate revocation list (--client-crl-file, --peer-crl-file). */
  crlFile?: string;
}

/** etcd's error for a certificate that is not the allowed CN or host. */
export const CERT_AUTH_FAILED = "client certificate authentication failed";

/**
 * etcd's start-up error when one side has both an allowed CN and an allowed
 * host name; undefined when the policy is fine.
 */
export function policyError(policy: CertificatePolicy): string | undefined {
  if (!policy.allowedCn || !policy.allowedHostname) return undefined;
  return `AllowedCN and AllowedHostname are mutually exclusive (cn=${
    JSON.stringify(policy.allowedCn)
  }, hostname=${JSON.stringify(policy.allowedHostname)})`;
}

/**
 * A serial number as Go's `%x` of its big-endian bytes without leading
 * zeros prints it (how etcd names a revoked certificate). `hex` may be
 * any case, with or without leading zeros.
 */
export function goSerial(hex: string): string {
  let h = hex.toLowerCase();
  if (h.length % 2 === 1) h = "0" + h;
  while (h.startsWith("00")) h = h.slice(2);
  return h;
}

/** The serial numbers a CRL revokes (as {@linkcode goSerial}), from its PEM or DER bytes. */
export function revokedSerials(data: Uint8Array): Set<string> {
  const text = new TextDecoder().decode(data);
  const pem = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  const der = pem === null ? data : Uint8Array.from(
    atob(pem[1].replace(/\s+/g, "")),
    (c) => c.charCodeAt(0),
  );
  const list = AsnConvert.parse(der, CertificateList);
  const serials = new Set<string>();
  for (const entry of list.tbsCertList.revokedCertificates ?? []) {
    const bytes = new Uint8Array(entry.userCertificate);
    serials.add(goSerial(Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")));
  }
  return serials;
}

/**
 * A revocation list file, read again when its size or modification time
 * changes (one stat per check).
 */
export class RevocationList {
  /** The list's file (--client-crl-file, --peer-crl-file). */
  readonly path: string;
  /** Size and modification time of the file last read. */
  #stamp = "";
  #serials: Set<string> | undefined;
  #error: string | undefined;

  /** A list read from `path` at its first use (nothing is read here). */
  constructor(path: string) {
    this.path = path;
  }

  /**
   * The revoked serials.
   *
   * @throws {Error} Go's wording of why the file cannot be read (`open
   *   <path>: no such file or directory`), or why it is no CRL.
   */
  serials(): Set<string> {
    let stamp: string;
    try {
      const info = Deno.statSync(this.path);
      stamp = `${info.size}:${info.mtime?.getTime()}`;
    } catch (err) {
      this.#stamp = "";
      throw new Error(`open ${this.path}: ${goOsError(err)}`);
    }
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      this.#serials = undefined;
      this.#error = undefined;
      try {
        this.#serials = revokedSerials(Deno.readFileSync(this.path));
      } catch (err) {
        this.#error =
          err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied
            ? `open ${this.path}: ${goOsError(err)}`
            : `x509: malformed crl (${(err as Error).message})`;
      }
    }
    if (this.#serials === undefined) throw new Error(this.#error);
    return this.#serials;
  }
}

/**
 * Why `cert` (node:tls's view of the certificate the other side presented,
 * with its chain; null, undefined or empty when it presented none) is refused
 * under `policy`, or undefined when it is not. `clientCertAuth`: the
 * listener requires client certificates (the allowed CN and host apply
 * only then, as in etcd). `crl` is `policy.crlFile`'s list.
 */
export function certificateRefusal(
  cert: tls.DetailedPeerCertificate | null | undefined,
  policy: CertificatePolicy,
  clientCertAuth: boolean,
  crl: RevocationList | undefined,
): string | undefined {
  const present = cert !== undefined && cert !== null && cert.raw !== undefined;
  if (clientCertAuth && (policy.allowedCn || policy.allowedHostname)) {
    if (!present) return CERT_AUTH_FAILED;
    if (policy.allowedCn && cert.subject?.CN !== policy.allowedCn) return CERT_AUTH_FAILED;
    if (
      policy.allowedHostname &&
      checkServerIdentity(policy.allowedHostname, cert) !== undefined
    ) {
      return CERT_AUTH_FAILED;
    }
  }
  if (crl !== undefined && present) {
    let revoked: Set<string>;
    try {
      revoked = crl.serials();
    } catch (err) {
      return (err as Error).message;
    }
    // The leaf, then each issuer the other side sent, up to a self-signed one.
    const seen = new Set<tls.DetailedPeerCertificate>();
    for (let c: tls.DetailedPeerCertificate | undefined = cert; c?.raw !== undefined;) {
      if (seen.has(c)) break;
      seen.add(c);
      const serial = goSerial(c.serialNumber ?? "");
      if (revoked.has(serial)) return `transport: certificate serial ${serial} revoked`;
      c = c.issuerCertificate;
    }
  }
  return undefined;
}

/**
 * The fields etcd's `rejected connection` warning gives of a certificate:
 * its IP addresses and DNS names.
 */
export function certificateFields(
  cert: tls.PeerCertificate | null | undefined,
): { "ip-addresses": string[]; "dns-names": string[] } | undefined {
  if (cert === undefined || cert === null || cert.raw === undefined) return undefined;
  const ips: string[] = [];
  const names: string[] = [];
  for (const part of (cert.subjectaltname ?? "").split(/,\s*/)) {
    if (part.startsWith("IP Address:")) ips.push(part.slice("IP Address:".length));
    else if (part.startsWith("DNS:")) names.push(part.slice("DNS:".length));
  }
  return { "ip-addresses": ips, "dns-names": names };
}
