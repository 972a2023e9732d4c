/**
 * TLS of a member's listeners, as etcd 3.4 sets it up. Client URLs: the
 * certificate and key of --cert-file/--key-file (or, with --auto-tls and no
 * --cert-file, a self-signed one made at start in `<data-dir>/fixtures/client`,
 * kept for later starts as etcd keeps it), and with --client-cert-auth or
 * --trusted-ca-file (etcd 3.4 requires client certificates with either) a
 * client certificate required and verified against --trusted-ca-file. Peer
 * URLs: the same with the --peer-* flags (`<data-dir>/fixtures/peer` for
 * --peer-auto-tls); a member presents its peer certificate to the members it
 * reaches, too. --cipher-suites applies to both. Certificate files are read
 * again when they change on disk ({@linkcode TlsReloader}). The TLS itself is
 * node:tls; certificates are made by the `selfsigned` library.
 *
 * @module
 */
import * as tls from "node:tls";
import selfsigned from "selfsigned";
import { AUTO_TLS_VALIDITY_DAYS, TLS_RELOAD_CHECK_MS } from "../core/limits.ts";
import type { ServerConfig } from "./config.ts";
import { log } from "./log.ts";
import { type CertificatePolicy, policyError } from "./cert_policy.ts";
import { goOsError } from "../core/go_os_error.ts";

/**
 * What an https listener serves with (etcd's transport.TLSInfo, resolved):
 * PEM texts and file paths, so it crosses to worker threads as it is.
 */
export interface TlsInfo {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
  /** CA certificates, PEM, that the other side's certificates are verified against. */
  ca?: string;
  /**
   * Require a client certificate signed by `ca` (or, without `ca`, by the
   * system's roots) at the handshake: --client-cert-auth, or
   * --trusted-ca-file alone, as etcd 3.4 (and the --peer-* twins).
   */
  clientCertAuth: boolean;
  /**
   * --client-cert-auth itself (client side only): a gRPC request without a
   * token runs as the user its client certificate's CN names, as etcd's.
   */
  commonNameAsUser?: boolean;
  /** Where `cert`, `key` and `ca` were read from, to read them again when they change; absent for a self-signed certificate. */
  files?: { cert: string; key: string; ca?: string };
  /** IANA numbers of the TLS 1.2 cipher suites allowed (--cipher-suites); empty: any. */
  cipherSuites: number[];
  /** The certificate is self-signed (--auto-tls, --peer-auto-tls): the other side cannot verify it. */
  selfSigned: boolean;
  /**
   * What else a client's certificate must satisfy (allowed CN or host
   * name, revocation list; server/cert_policy.ts); absent: nothing.
   */
  policy?: CertificatePolicy;
}

/** What an https client URL serves with (see {@linkcode TlsInfo}). */
export type ClientTls = TlsInfo;

/** The files and switches of one side (client or peer URLs). */
interface TlsFlags {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  policy: CertificatePolicy;
}

/**
 * The TLS settings of the https client URLs in `config`, or undefined when
 * none is https. Reads --cert-file, --key-file and --trusted-ca-file, or
 * makes the --auto-tls certificate for the URLs' hosts.
 *
 * @throws {Error} etcd's `open <path>: no such file or directory` (or
 *   `permission denied`) when a file cannot be read; node:tls's error for a
 *   certificate or key it cannot use; etcd's `AllowedCN and AllowedHostname
 *   are mutually exclusive …` when a side has both.
 */
export function loadClientTls(config: ServerConfig): Promise<ClientTls | undefined> {
  const urls = [...config.listenClientUrls, ...config.listenClientHttpUrls];
  if (!urls.some((u) => u.protocol === "https:")) return Promise.resolve(undefined);
  return loadTls(
    config,
    {
      certFile: config.certFile,
      keyFile: config.keyFile,
      trustedCaFile: config.trustedCaFile,
      clientCertAuth: config.clientCertAuth,
      autoTls: config.autoTls,
      policy: {
        allowedHostname: config.clientCertAllowedHostname,
        crlFile: config.clientCrlFile,
      },
    },
    "client",
    urls,
  );
}

/**
 * The TLS settings of the member's peer traffic, or undefined when no peer
 * URL (listened on, advertised, or of --initial-cluster) is https: the
 * listener's certificate, and the identity and CA of outgoing connections.
 * Reads --peer-cert-file, --peer-key-file and --peer-trusted-ca-file, or
 * makes the --peer-auto-tls certificate (in `<data-dir>/fixtures/peer`) for
 * the hosts of --listen-peer-urls and --initial-advertise-peer-urls.
 *
 * @throws {Error} as {@linkcode loadClientTls}.
 */
export function loadPeerTls(config: ServerConfig): Promise<TlsInfo | undefined> {
  const urls = [...config.listenPeerUrls, ...config.initialAdvertisePeerUrls];
  const cluster = [...config.initialCluster.values()].flat();
  if (![...urls, ...cluster].some((u) => u.protocol === "https:")) {
    return Promise.resolve(undefined);
  }
  if (config.peerCertFile === "" && config.peerKeyFile === "" && !config.peerAutoTls) {
    // https peers reached without a certificate of this member's own.
    return Promise.resolve(undefined);
  }
  return loadTls(
    config,
    {
      certFile: config.peerCertFile,
      keyFile: config.peerKeyFile,
      trustedCaFile: config.peerTrustedCaFile,
      clientCertAuth: config.peerClientCertAuth,
      autoTls: config.peerAutoTls,
      policy: {
        allowedCn: config.peerCertAllowedCn,
        allowedHostname: config.peerCertAllowedHostname,
        crlFile: config.peerCrlFile,
      },
    },
    "peer",
    urls,
  );
}

async function loadTls(
  config: ServerConfig,
  flags: TlsFlags,
  side: "client" | "peer",
  urls: URL[],
): Promise<TlsInfo> {
  const refused = policyError(flags.policy);
  if (refused !== undefined) throw new Error(refused);
  const policy = compactPolicy(flags.policy);
  const read = (path: string) =>
    Deno.readTextFile(path).catch((err) => {
      throw new Error(`open ${path}: ${goOsError(err)}`, { cause: err });
    });
  let cert: string;
  let key: string;
  const selfSigned = flags.certFile === "" && flags.keyFile === "" && flags.autoTls;
  if (selfSigned) {
    ({ cert, key } = await autoCert(
      `${config.dataDir}/fixtures/${side}`,
      urls.map((u) => u.hostname.replace(/^\[(.*)\]$/, "$1")),
      side,
    ));
  } else {
    cert = await read(flags.certFile);
    key = await read(flags.keyFile);
  }
  const ca = flags.trustedCaFile === "" ? undefined : await read(flags.trustedCaFile);
  // As etcd 3.4: a trusted CA alone requires client certificates too.
  const clientCertAuth = flags.clientCertAuth || ca !== undefined;
  const settings: TlsInfo = {
    cert,
    key,
    ca,
    clientCertAuth,
    commonNameAsUser: side === "client" && flags.clientCertAuth,
    cipherSuites: config.cipherSuites,
    selfSigned,
    ...(Object.keys(policy).length > 0 ? { policy } : {}),
    ...(selfSigned ? {} : {
      files: {
        cert: flags.certFile,
        key: flags.keyFile,
        ...(flags.trustedCaFile === "" ? {} : { ca: flags.trustedCaFile }),
      },
    }),
  };
  // A bad certificate or key fails the start, not the first handshake.
  secureContext(settings);
  return settings;
}

/** `policy` without its empty fields. */
function compactPolicy(policy: CertificatePolicy): CertificatePolicy {
  return Object.fromEntries(Object.entries(policy).filter(([, v]) => v)) as CertificatePolicy;
}

/**
 * The node:tls context for `settings`.
 *
 * @throws {Error} node:tls's error for a certificate or key it cannot use.
 */
export function secureContext(settings: TlsInfo): tls.SecureContext {
  return tls.createSecureContext({ cert: settings.cert, key: settings.key, ca: settings.ca });
}

/**
 * `<dir>/cert.pem` and `<dir>/key.pem`, made first if either is missing: a
 * self-signed certificate (ECDSA P-256 key, organization `etcd`, valid one year, for server
 * and client authentication) for `hosts` (names and IP addresses), as
 * etcd's --auto-tls and --peer-auto-tls make (`side` names it in the log).
 * The directory is created with mode 0700, the key written with mode 0600.
 */
export async function autoCert(
  dir: string,
  hosts: string[],
  side: "client" | "peer" = "client",
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
  log.info(`created self-signed ${side} certificate`, { path: certPath, hosts });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Reads a listener's (or peer client's) certificate files again when they
 * change on disk, so new handshakes use the new certificate without a
 * restart (etcd reads them at every handshake). Looks at most every
 * TLS_RELOAD_CHECK_MS; a change that does not make a usable certificate and
 * key (a half-written pair) is logged and tried again at the next look,
 * and the certificate in use stays.
 */
export class TlsReloader {
  #current: TlsInfo;
  #lastLook: number;

  /** Watch the files of `initial` (none for a self-signed certificate: it never changes). */
  constructor(initial: TlsInfo, now: number = Date.now()) {
    this.#current = initial;
    this.#lastLook = now;
  }

  /** The settings in use. */
  get current(): TlsInfo {
    return this.#current;
  }

  /**
   * Look at the files, unless the last look was less than
   * TLS_RELOAD_CHECK_MS before `now` (ms since the epoch): the new settings
   * when they changed and make a usable certificate, else undefined. Reads
   * synchronously (a few small files), so a caller can switch before the
   * handshake it is about to serve.
   */
  check(now: number = Date.now()): TlsInfo | undefined {
    const files = this.#current.files;
    if (files === undefined || now - this.#lastLook < TLS_RELOAD_CHECK_MS) return undefined;
    this.#lastLook = now;
    let cert: string;
    let key: string;
    let ca: string | undefined;
    try {
      cert = Deno.readTextFileSync(files.cert);
      key = Deno.readTextFileSync(files.key);
      ca = files.ca === undefined ? undefined : Deno.readTextFileSync(files.ca);
    } catch (err) {
      log.warn("cannot read TLS files", { "cert-file": files.cert, error: String(err) });
      return undefined;
    }
    const old = this.#current;
    if (cert === old.cert && key === old.key && ca === old.ca) return undefined;
    const next: TlsInfo = { ...old, cert, key, ca };
    try {
      secureContext(next);
    } catch (err) {
      log.warn("cannot use changed TLS files; keeping the certificate in use", {
        "cert-file": files.cert,
        "key-file": files.key,
        error: (err as Error).message,
      });
      return undefined;
    }
    this.#current = next;
    log.info("reloaded TLS certificate", { "cert-file": files.cert, "key-file": files.key });
    return next;
  }
}
