/**
 * The client certificate's common name as the user of a gRPC request
 * (etcd's AuthInfoFromTLS, with --client-cert-auth and no token). TLS ends
 * in server/client_port.ts, which relays the decrypted HTTP/2 stream to
 * grpc-js over a private Unix socket; a connection whose certificate names
 * a user goes through a socket of that user's own, and the accepted socket
 * carries the name as its peer address (`cn:<name>`, URI-encoded), which is
 * what grpc-js reports as the call's peer. A TCP client's peer is
 * `address:port` and can never take that form. The JSON gateway does not
 * use the name, as etcd's gateway (a proxy with the server's own
 * certificate) does not.
 *
 * @module
 */
import type * as net from "node:net";

const PEER_PREFIX = "cn:";

/** Mark a relayed connection as made with a certificate naming `commonName`. */
export function markCommonName(socket: net.Socket, commonName: string): void {
  Object.defineProperty(socket, "remoteAddress", {
    value: PEER_PREFIX + encodeURIComponent(commonName),
    configurable: true,
  });
}

/** The common name a call's peer address (grpc-js `getPeer()`) carries, if any. */
export function peerCommonName(peer: string): string | undefined {
  if (!peer.startsWith(PEER_PREFIX)) return undefined;
  try {
    return decodeURIComponent(peer.slice(PEER_PREFIX.length));
  } catch {
    return undefined;
  }
}
