/**
 * How a member reaches its peers: the `Deno.HttpClient` its peer requests
 * and WebSockets go through. With peer TLS it presents the member's peer
 * certificate (--peer-cert-file, --peer-key-file) and verifies the other
 * member against --peer-trusted-ca-file, as etcd's peer transport does; when
 * the certificate files change on disk the next connections use the new ones
 * (looked at, at most, every TLS_RELOAD_CHECK_MS).
 *
 * With --peer-auto-tls the peers' certificates are self-signed: etcd does
 * not verify them at all. Deno's HTTP client cannot skip verification, so
 * the dialer reads a peer's certificate with a handshake of its own the
 * first time it reaches the peer's URL and trusts exactly that certificate
 * from then on (read again after a failed connection, at most every
 * TLS_RELOAD_CHECK_MS).
 *
 * @module
 */
import * as tls from "node:tls";
import {
  PEER_CERT_FETCH_TIMEOUT_MS,
  PEER_SNAPSHOT_TIMEOUT_MS,
  TLS_RELOAD_CHECK_MS,
} from "../../core/limits.ts";
import { log } from "../log.ts";
import { type TlsInfo, TlsReloader } from "../tls.ts";

/** A pinned self-signed peer certificate and when it was read (ms since the epoch). */
interface Pin {
  pem: string;
  at: number;
}

/**
 * The HTTP client of a member's outgoing peer connections (see the module
 * doc). {@linkcode PeerDialer.close} closes every client it made.
 */
export class PeerDialer {
  readonly #tls: TlsInfo | undefined;
  readonly #reloader: TlsReloader | undefined;
  #client: Deno.HttpClient;
  /** --peer-auto-tls: each peer origin's certificate, trusted as it is. */
  readonly #pins = new Map<string, Pin>();
  /** Origins whose certificate is being read. */
  readonly #pinning = new Map<string, Promise<void>>();
  /** Clients replaced by a newer one, closed once their connections are surely done. */
  readonly #retired = new Set<Deno.HttpClient>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;

  /** A dialer presenting `tls` (none: plain http peers, or https ones verified against the system's roots). */
  constructor(tls?: TlsInfo) {
    this.#tls = tls;
    this.#reloader = tls === undefined ? undefined : new TlsReloader(tls);
    this.#client = this.#make();
  }

  /** Whether connections carry this member's certificate. */
  get tls(): boolean {
    return this.#tls !== undefined;
  }

  /**
   * The client for a new connection: rebuilt when the certificate files
   * changed since the last one (the old one stays open for the connections
   * it carries, at most PEER_SNAPSHOT_TIMEOUT_MS).
   */
  client(): Deno.HttpClient {
    if (this.#reloader?.check() !== undefined) this.#replace();
    return this.#client;
  }

  /**
   * Whether a connection to `origin` (e.g. `https://10.0.0.6:2380`) can be
   * made now: always, except with --peer-auto-tls before the peer's
   * certificate was read, which this starts.
   */
  ready(origin: string): boolean {
    if (!this.#selfSigned || !origin.startsWith("https:")) return true;
    if (this.#pins.has(origin)) return true;
    void this.prepare(origin);
    return false;
  }

  /** With --peer-auto-tls: read `origin`'s certificate if not yet done; otherwise nothing. Never rejects. */
  prepare(origin: string): Promise<void> {
    if (!this.#selfSigned || !origin.startsWith("https:") || this.#pins.has(origin)) {
      return Promise.resolve();
    }
    let pending = this.#pinning.get(origin);
    if (pending === undefined) {
      pending = this.#pin(origin).finally(() => this.#pinning.delete(origin));
      this.#pinning.set(origin, pending);
    }
    return pending;
  }

  /**
   * A connection to `origin` failed: with --peer-auto-tls its certificate is
   * read again on the next attempt (the peer may have a new one), at most
   * every TLS_RELOAD_CHECK_MS.
   */
  failed(origin: string): void {
    const pin = this.#pins.get(origin);
    if (pin !== undefined && Date.now() - pin.at >= TLS_RELOAD_CHECK_MS) this.#pins.delete(origin);
  }

  /** Close every client made. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    for (const c of this.#retired) c.close();
    this.#retired.clear();
    this.#client.close();
  }

  get #selfSigned(): boolean {
    return this.#tls?.selfSigned === true;
  }

  #make(): Deno.HttpClient {
    const info = this.#reloader?.current;
    if (info === undefined) return Deno.createHttpClient({});
    const caCerts = this.#selfSigned
      ? [...this.#pins.values()].map((p) => p.pem)
      : info.ca === undefined
      ? undefined
      : [info.ca];
    return Deno.createHttpClient({
      ...(caCerts === undefined ? {} : { caCerts }),
      cert: info.cert,
      key: info.key,
    });
  }

  #replace(): void {
    if (this.#closed) return;
    const old = this.#client;
    this.#client = this.#make();
    this.#retired.add(old);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#retired.delete(old);
      old.close();
    }, PEER_SNAPSHOT_TIMEOUT_MS);
    Deno.unrefTimer(Number(timer));
    this.#timers.add(timer);
  }

  async #pin(origin: string): Promise<void> {
    const url = new URL(origin);
    const info = this.#reloader!.current;
    try {
      const pem = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
          port: Number(url.port || 443),
          rejectUnauthorized: false,
          cert: info.cert,
          key: info.key,
          ALPNProtocols: ["http/1.1"],
        }, () => {
          const raw = socket.getPeerCertificate()?.raw;
          socket.destroy();
          if (raw === undefined) reject(new Error("no certificate"));
          else resolve(toPem(raw));
        });
        socket.setTimeout(PEER_CERT_FETCH_TIMEOUT_MS, () => {
          socket.destroy();
          reject(new Error("timed out"));
        });
        socket.once("error", reject);
      });
      if (this.#closed) return;
      const known = this.#pins.get(origin);
      this.#pins.set(origin, { pem, at: Date.now() });
      if (known?.pem !== pem) this.#replace();
    } catch (err) {
      log.debug("cannot read a peer's self-signed certificate", {
        "peer-url": origin,
        error: (err as Error).message,
      });
    }
  }
}

/** A DER certificate as PEM. */
function toPem(der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
