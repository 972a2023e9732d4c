/**
 * One client URL of a member, served as etcd serves it: gRPC (HTTP/2) and
 * the JSON gateway (HTTP/1.1) on the same listener, told apart by the first
 * bytes of each connection (etcd's cmux): the HTTP/2 connection preface
 * (`PRI * HTTP/2.0…`) goes to the gRPC server, anything else to the gateway.
 *
 * The runtime shapes how: `Deno.serve` is the fast HTTP/1.1 server but
 * cannot send HTTP/2 trailers (gRPC's status) nor take a connection
 * accepted elsewhere, and @grpc/grpc-js runs on `node:http2`. So a
 * `node:net` listener accepts, reads the first bytes, hands an HTTP/2
 * connection to grpc-js (its connection injector; by way of
 * server/grpc/authority.ts, which repairs an `:authority` given as a URL)
 * and relays an HTTP/1.1 connection, bytes unchanged, to the gateway's
 * `Deno.serve` on a private Unix socket. On an https URL a node:tls server
 * accepts instead (it verifies client certificates), the same peek reads
 * the decrypted bytes, and HTTP/2 is relayed to grpc-js by way of a second
 * private Unix socket (Deno's node:http2 serves sockets, not TLS streams).
 * ALPN offers `http/1.1` before `h2` when the gateway is served, so a
 * client that speaks both (curl, browsers) gets the gateway over HTTP/1.1
 * and one that speaks only `h2` (gRPC clients) gets gRPC. The relay costs
 * the gateway some throughput (bench/README.md); etcd 3.5's
 * `--listen-client-http-urls` serves the gateway on its own listener
 * without it.

 * On an https URL, changed certificate files are read before a new
 * connection's handshake (server/tls.ts's TlsReloader), and with
 * --cipher-suites a plain listener reads each ClientHello first and refuses a
 * TLS 1.2 client that offers none of them (server/cipher_suites.ts) before
 * handing the connection to node:tls. Peer URLs use the same listener with
 * an HTTP handler only (server/peer/transport.ts).
 *
 * @module
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { certificateFields, certificateRefusal, RevocationList } from "./cert_policy.ts";
import type { ConnectionInjector } from "@grpc/grpc-js";
import {
  CLIENT_CLOSE_GRACE_MS,
  CLIENT_PREFACE_PEEK_BYTES,
  CLIENT_PREFACE_TIMEOUT_MS,
  MAX_CERTIFICATE_USERS,
} from "../core/limits.ts";
import { markCommonName } from "./client_identity.ts";
import { invariant } from "../core/invariant.ts";
import { HTTP2_PREFACE, serveHttp2Connection } from "./grpc/authority.ts";
import { AddressInUseError, listenError } from "./listen.ts";
import { log } from "./log.ts";
import {
  cipherSuiteIdByOpenssl,
  HANDSHAKE_FAILURE_ALERT,
  helloAllowed,
  readClientHello,
} from "./cipher_suites.ts";
import { type ClientTls, TlsReloader } from "./tls.ts";

/** What a client listener serves. */
export interface ClientPortOptions {
  /** Address to listen on (an IP literal or host name, IPv6 without brackets). */
  hostname: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Join the port's SO_REUSEPORT group (the member's HTTP workers share it). */
  reusePort?: boolean;
  /** The gRPC server that takes HTTP/2 connections; none: the gateway only. */
  grpc?: ConnectionInjector;
  /** The JSON gateway that serves HTTP/1.1 requests; none: gRPC only. */
  http?: Deno.ServeHandler<Deno.NetAddr>;
  /** Serve TLS with these settings (an https URL); none: plain TCP. */
  tls?: ClientTls;
}

/** A listening client URL. */
export interface ClientPort {
  /** The port bound. */
  port: number;
  /** Stop accepting, end the relays and the gateway's server (watch streams should end first). */
  close(): Promise<void>;
}

// The HTTP/2 preface's first bytes ("PRI"): no HTTP/1.1 method starts with them.
invariant(CLIENT_PREFACE_PEEK_BYTES <= HTTP2_PREFACE.length, "the peek is within the preface");

/** Whether a connection's first bytes are HTTP/2's preface (as far as they go). */
function isHttp2(head: Uint8Array): boolean {
  const n = Math.min(head.length, CLIENT_PREFACE_PEEK_BYTES);
  for (let i = 0; i < n; i++) if (head[i] !== HTTP2_PREFACE[i]) return false;
  return true;
}

/**
 * etcd's warning for a connection refused at the TLS handshake, with the
 * name the client asked for and its certificate's addresses and names
 * when it sent one.
 */
function rejected(socket: net.Socket | undefined, error: string): void {
  const remote = socket?.remoteAddress;
  const secure = socket as tls.TLSSocket | undefined;
  let cert: tls.PeerCertificate | null | undefined;
  try {
    cert = secure?.getPeerCertificate?.();
  } catch {
    cert = undefined; // the handshake did not get that far
  }
  const servername = secure?.servername;
  log.warn("rejected connection", {
    ...(remote === undefined ? {} : { "remote-addr": `${remote}:${socket?.remotePort}` }),
    "server-name": typeof servername === "string" ? servername : "",
    ...certificateFields(cert),
    error,
  });
}

/** Whether a TLS 1.2 connection's suite is in `allowed` (empty: any); TLS 1.3 always is (as in Go). */
function negotiatedAllowed(socket: tls.TLSSocket, allowed: ReadonlySet<number>): boolean {
  if (allowed.size === 0 || socket.getProtocol() !== "TLSv1.2") return true;
  const id = cipherSuiteIdByOpenssl(socket.getCipher()?.name ?? "");
  return id !== undefined && allowed.has(id);
}

/**
 * Read a connection's ClientHello, then refuse it (TLS's handshake_failure
 * alert, etcd's `rejected connection` warning) when it offers neither TLS
 * 1.3 nor a suite of `allowed`, or hand it, unread, to `server`.
 */
function gateCipherSuites(socket: net.Socket, allowed: ReadonlySet<number>, server: tls.Server) {
  let head: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), CLIENT_PREFACE_TIMEOUT_MS);
  const onData = (chunk: Buffer) => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const hello = readClientHello(head);
    if (hello === undefined) return; // the record is not complete yet
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    if (hello !== null && !helloAllowed(hello, allowed)) {
      rejected(socket, "tls: no cipher suite supported by both client and server");
      socket.end(HANDSHAKE_FAILURE_ALERT);
      return;
    }
    // Not a ClientHello at all: node:tls fails it and says why.
    socket.unshift(head);
    server.emit("connection", socket);
  };
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on("data", onData);
  socket.on("error", onError);
}

/**
 * Listen on a client URL for gRPC, the gateway, or both.
 *
 * @throws {AddressInUseError} when the address is taken (outside a
 *   SO_REUSEPORT group).
 */
export async function listenClientPort(options: ClientPortOptions): Promise<ClientPort> {
  const { hostname, grpc, http } = options;
  invariant(grpc !== undefined || http !== undefined, "a client port serves something");
  if (grpc === undefined && options.tls === undefined) {
    // The gateway alone: Deno.serve on the port itself.
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname,
        port: options.port,
        reusePort: options.reusePort,
        onListen: () => {},
      }, http!);
    } catch (err) {
      throw listenError(err, hostname, options.port);
    }
    return { port: server.addr.port, close: () => server.shutdown() };
  }

  // The gateway behind the relay, on a Unix socket only this process knows;
  // on an https URL gRPC too, by way of a second one (node:http2 in Deno
  // serves a socket but not a TLS stream over one).
  const dir = await Deno.makeTempDir({ prefix: "cairn-client-" });
  let gateway: { server: Deno.HttpServer<Deno.UnixAddr>; path: string } | undefined;
  if (http !== undefined) {
    const path = `${dir}/gateway.sock`;
    const server = Deno.serve({ path, transport: "unix", onListen: () => {} }, http as never);
    gateway = { server, path };
  }

  const sockets = new Set<net.Socket>();
  /** Relay `client` (its first bytes `head` already read) to the Unix socket `path`. */
  const relay = (client: net.Socket, head: Buffer, path: string | undefined) => {
    if (path === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ path });
    sockets.add(upstream);
    upstream.setNoDelay(true);
    upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    // Each side's end ends the other (pipe), after what was written has
    // been sent; an error tears both down.
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", fail);
    upstream.on("error", fail);
    upstream.once("close", () => {
      sockets.delete(upstream);
      if (!client.writableEnded) client.end();
    });
    client.once("close", () => upstream.destroy());
    client.resume();
  };

  // Server preference: a client offering both gets the gateway.
  const alpn = [...(http !== undefined ? ["http/1.1"] : []), ...(grpc !== undefined ? ["h2"] : [])];
  let grpcPath: string | undefined;
  /**
   * Serve a connection (on an https URL, its decrypted stream): tell HTTP/2
   * from HTTP/1.1; `relayHttp2` sends HTTP/2 to gRPC by way of its socket.
   */
  const accept = (client: net.Socket, relayHttp2: boolean) => {
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.setNoDelay(true);
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), CLIENT_PREFACE_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (head.length < CLIENT_PREFACE_PEEK_BYTES && isHttp2(head)) return; // wait for more
      clearTimeout(timer);
      client.off("data", onData);
      client.off("error", onError);
      client.pause();
      if (isHttp2(head) && (grpc === undefined || relayHttp2)) {
        const user = relayHttp2 ? certificateUser(client) : undefined;
        if (user === undefined) relay(client, head, grpcPath);
        else {
          userRelay(user).then(
            (path) => relay(client, head, path),
            () => client.destroy(),
          );
        }
      } else if (isHttp2(head)) {
        // The first request's `:authority` decides between the socket
        // itself and a wrapper that repairs it (server/grpc/authority.ts).
        serveHttp2Connection(client, head, {
          inject: (connection) => grpc!.injectConnection(connection),
        });
      } else {
        relay(client, head, gateway?.path);
      }
    };
    const onError = () => {
      clearTimeout(timer);
      client.destroy();
    };
    client.on("data", onData);
    client.on("error", onError);
    client.once("end", () => {
      clearTimeout(timer);
      if (head.length === 0 || isHttp2(head)) client.destroy();
    });
  };

  let grpcRelay: net.Server | undefined;
  if (options.tls !== undefined && grpc !== undefined) {
    grpcPath = `${dir}/grpc.sock`;
    const server = net.createServer((socket) => accept(socket, false));
    grpcRelay = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path: grpcPath }, () => resolve());
    });
  }
  /**
   * With --client-cert-auth, the user a TLS connection's certificate names
   * (its subject's CN) for gRPC; undefined without one.
   */
  const certificateUser = (client: net.Socket): string | undefined => {
    if (options.tls?.commonNameAsUser !== true) return undefined;
    const cn = (client as tls.TLSSocket).getPeerCertificate?.()?.subject?.CN;
    return typeof cn === "string" && cn !== "" ? cn : undefined;
  };
  /**
   * The private socket gRPC connections of `user` are relayed to: one per
   * user, made at its first connection (server/client_identity.ts); past
   * MAX_CERTIFICATE_USERS users, the anonymous one.
   */
  const userRelays = new Map<string, Promise<string | undefined>>();
  const userServers: net.Server[] = [];
  const userRelay = (user: string): Promise<string | undefined> => {
    const known = userRelays.get(user);
    if (known !== undefined) return known;
    if (userRelays.size >= MAX_CERTIFICATE_USERS) {
      log.warn("too many client certificate names; serving this one without a user", {
        "common-name": user,
      });
      return Promise.resolve(grpcPath);
    }
    const path = `${dir}/grpc-${userRelays.size + 1}.sock`;
    const server = net.createServer((socket) => {
      markCommonName(socket, user);
      accept(socket, false);
    });
    userServers.push(server);
    const made = new Promise<string | undefined>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path }, () => resolve(path));
    });
    userRelays.set(user, made);
    return made;
  };
  const closeRelays = async () => {
    await gateway?.server.shutdown();
    for (const server of [...(grpcRelay === undefined ? [] : [grpcRelay]), ...userServers]) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  let listener: net.Server;
  if (options.tls === undefined) {
    listener = net.createServer({ noDelay: true }, (socket) => accept(socket, false));
  } else {
    // node:tls's server verifies client certificates (a TLSSocket made over
    // an accepted socket does not, in Deno); a failed handshake (plain
    // HTTP, no or a wrong client certificate) closes the connection.
    const settings = options.tls;
    const allowed = new Set(settings.cipherSuites);
    const policy = settings.policy ?? {};
    const crl = policy.crlFile ? new RevocationList(policy.crlFile) : undefined;
    const server = tls.createServer({
      cert: settings.cert,
      key: settings.key,
      ca: settings.ca,
      requestCert: settings.clientCertAuth,
      rejectUnauthorized: settings.clientCertAuth,
      ALPNProtocols: alpn,
      handshakeTimeout: CLIENT_PREFACE_TIMEOUT_MS,
      noDelay: true,
      minVersion: "TLSv1.2",
    }, (socket) => {
      if (!negotiatedAllowed(socket, allowed)) {
        // A suite outside --cipher-suites (the client preferred it to an
        // allowed one it also offered): refused, as Go would not pick it.
        rejected(socket, "tls: negotiated cipher suite is not in --cipher-suites");
        socket.destroy();
        return;
      }
      if (settings.policy !== undefined) {
        const refusal = certificateRefusal(
          socket.getPeerCertificate(true),
          policy,
          settings.clientCertAuth,
          crl,
        );
        if (refusal !== undefined) {
          rejected(socket, refusal);
          socket.destroy();
          return;
        }
      }
      accept(socket, true);
    });
    // Changed certificate files are read before a new connection's
    // handshake (at most every TLS_RELOAD_CHECK_MS).
    const reloader = new TlsReloader(settings);
    server.prependListener("connection", () => {
      const next = reloader.check();
      if (next !== undefined) {
        server.setSecureContext({ cert: next.cert, key: next.key, ca: next.ca });
      }
    });
    server.on("tlsClientError", (err: Error, socket?: tls.TLSSocket) => {
      // etcd's warning for a failed handshake.
      rejected(socket, err.message);
      socket?.destroy();
    });
    // With --cipher-suites, the ClientHello is read first: a TLS 1.2 client
    // offering none of them is refused as Go refuses it.
    listener = allowed.size === 0 ? server : net.createServer(
      { noDelay: true },
      (socket) => gateCipherSuites(socket, allowed, server),
    );
  }
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(
        {
          host: hostname,
          port: options.port,
          reusePort: options.reusePort === true,
        } as net.ListenOptions,
        () => {
          listener.off("error", reject);
          resolve();
        },
      );
    });
  } catch (err) {
    await closeRelays();
    if ((err as { code?: string }).code === "EADDRINUSE") {
      throw new AddressInUseError(
        hostname.includes(":") ? `[${hostname}]` : hostname,
        options.port,
      );
    }
    throw err;
  }
  listener.on("error", (err) => log.warn("client listener error", { error: err }));
  const port = (listener.address() as net.AddressInfo).port;
  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      // The gateway's server ends its responses first (relays then close
      // with them, so a client sees a finished stream, not a reset).
      await gateway?.server.shutdown();
      // A relay closes itself once the gateway closed its side and what it
      // held reached the client (a destroy here would reset a client
      // mid-response); the stragglers are closed after a grace period.
      const closedAll = [...sockets].map((s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) resolve();
          else s.once("close", () => resolve());
        })
      );
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(closedAll),
        new Promise<void>((resolve) => grace = setTimeout(resolve, CLIENT_CLOSE_GRACE_MS)),
      ]);
      clearTimeout(grace);
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
      await closeRelays();
    },
  };
}
