/**
 * Client listeners and etcd's error when their address is taken. A member's
 * HTTP worker threads share the client port with SO_REUSEPORT, which would
 * also let a second cairn (or any program that sets SO_REUSEPORT, as the
 * same user) join the port silently; {@linkcode probeAddress} proves the
 * address free first (see server/workers.ts for the start-up sequence).
 *
 * @module
 */

/** A client address is in use; the message is etcd's (`listen tcp H:P: bind: …`). */
export class AddressInUseError extends Error {
  /**
   * Builds the error.
   * @param host the host as in the URL (IPv6 in brackets).
   * @param port the port that is taken.
   */
  constructor(host: string, port: number) {
    super(`listen tcp ${host}:${port}: bind: address already in use`);
    this.name = "AddressInUseError";
  }
}

/** `hostname` as the socket API takes it: an IPv6 literal without its brackets. */
export function socketHostname(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * `err` as {@linkcode AddressInUseError} when it is Deno's `AddrInUse` for
 * `host:port`; any other error unchanged.
 */
export function listenError(err: unknown, host: string, port: number): unknown {
  return err instanceof Deno.errors.AddrInUse ? new AddressInUseError(host, port) : err;
}

/**
 * Bind `url`'s address without SO_REUSEPORT and release it at once: this
 * fails while any socket is bound to the address, with or without
 * SO_REUSEPORT, so it proves that no other server listens there. Returns the
 * port, chosen by the kernel when the URL's port is 0.
 *
 * @throws {AddressInUseError} when the address is taken.
 */
export function probeAddress(url: URL): number {
  const port = Number(url.port || 80);
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: socketHostname(url), port });
  } catch (err) {
    throw listenError(err, url.hostname, port);
  }
  const bound = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return bound;
}
