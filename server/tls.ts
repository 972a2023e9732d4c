/**
 * TLS on the client URLs, as etcd 3.4 sets it up: the certificate and key of
 * --cert-file/--key-file (or, with --auto-tls and no --cert-file, a
 * self-signed one made at start in `<data-dir>/fixtures/client`, kept for
 * later starts as etcd keeps it), and with --client-cert-auth or
 * --trusted-ca-file (etcd 3.4 requires client certificates with either) a
 * client certificate required and verified against --trusted-ca-file. The TLS
 * itself is node:tls; certificates are made by the `selfsigned` library.
 *
 * @module
 */
import * as tls from "node:tls";
import selfsigned from "selfsigned";
import { AUTO_TLS_VALIDITY_DAYS } from "../core/limits.ts";
import type { ServerConfig } from "./config.ts";
import { log } from "./log.ts";

/** What an https client URL serves with: PEM texts, so they cross to worker threads. */
export interface ClientTls {
  /** The server's certificate chain, PEM. */
  cert: string;
  /** The server's private key, PEM. */
  key: string;
  /** CA certificates, PEM, that client certificates are verified against (--trusted-ca-file). */
  ca?: string;
  /**
   * Require a client certificate signed by `ca` (or, without `ca`, by the
   * system's roots) at the handshake: --client-cert-auth, or
   * --trusted-ca-file alone, as etcd 3.4.
   */
  clientCertAuth: boolean;
}

/**
 * The TLS settings of the https client URLs in `config`, or undefined when
 * none is https. Reads --cert-file, --key-file and --trusted-ca-file, or
 * makes the --auto-tls certificate for the URLs' hosts.
 *
 * @throws {Error} etcd's `open <path>: no such file or directory` (or
 *   `permission denied`) when a file cannot be read.
 */
export async function loadClientTls(config: ServerConfig): Promise<ClientTls | undefined> {
  const urls = [...config.listenClientUrls, ...config.listenClientHttpUrls];
  if (!urls.some((u) => u.protocol === "https:")) return undefined;
  const read = (path: string) =>
    Deno.readTextFile(path).catch((err) => {
      throw new Error(`open ${path}: ${goFileError(err)}`, { cause: err });
    });
  let cert: string;
  let key: string;
  if (config.certFile === "" && config.keyFile === "" && config.autoTls) {
    ({ cert, key } = await autoCert(
      `${config.dataDir}/fixtures/client`,
      urls.map((u) => u.hostname.replace(/^\[(.*)\]$/, "$1")),
    ));
  } else {
    cert = await read(config.certFile);
    key = await read(config.keyFile);
  }
  const ca = config.trustedCaFile === "" ? undefined : await read(config.trustedCaFile);
  // As etcd 3.4: a trusted CA alone requires client certificates too.
  const clientCertAuth = config.clientCertAuth || ca !== undefined;
  const settings: ClientTls = { cert, key, ca, clientCertAuth };
  // A bad certificate or key fails the start, not the first handshake.
  secureContext(settings);
  return settings;
}

/** A file error as Go words it. */
function goFileError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  return (err as Error).message;
}

/**
 * The node:tls context for `settings`.
 *
 * @throws {Error} node:tls's error for a certificate or key it cannot use.
 */
export function secureContext(settings: ClientTls): tls.SecureContext {
  return tls.createSecureContext({ cert: settings.cert, key: settings.key, ca: settings.ca });
}

/**
 * `<dir>/cert.pem` and `<dir>/key.pem`, made first if either is missing: a
 * self-signed certificate (ECDSA P-256 key, organization `etcd`, valid one year, for server
 * and client authentication) for `hosts` (names and IP addresses), as
 * etcd's --auto-tls makes. The directory is created with mode 0700, the key
 * written with mode 0600.
 */
export async function autoCert(
  dir: string,
  hosts: string[],
): Promise<{ cert: string; key: string }> {
  const certPath = `${dir}/cert.pem`;
  const keyPath = `${dir}/key.pem`;
  try {
    return { cert: await Deno.readTextFile(certPath), key: await Deno.readTextFile(keyPath) };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const altNames = [...new Set(hosts)].map((host) =>
    /^[0-9.]+$|:/.test(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host }
  );
  const pems = await selfsigned.generate([{ name: "organizationName", value: "etcd" }], {
    keyType: "ec",
    curve: "P-256",
    notAfterDate: new Date(Date.now() + AUTO_TLS_VALIDITY_DAYS * 86_400_000),
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames },
    ],
  });
  await Deno.writeTextFile(keyPath, pems.private, { mode: 0o600 });
  await Deno.writeTextFile(certPath, pems.cert);
  log.info("created self-signed client certificate", { path: certPath, hosts });
  return { cert: pems.cert, key: pems.private };
}
