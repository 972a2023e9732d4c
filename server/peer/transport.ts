/**
 * The Raft transport between members: HTTP on the peer URLs, in the shape of
 * etcd's rafthttp (a bounded queue per peer, batched and pipelined message
 * requests, a separate streamed path for snapshots).
 *
 * Sending, per peer: {@linkcode PeerTransport.send} queues messages (at most
 * MAX_PEER_QUEUE_MESSAGES and MAX_PEER_QUEUE_BYTES; beyond, they are
 * dropped and Raft resends). Everything queued while requests are in flight
 * goes in the next request, up to MAX_PEER_REQUEST_BYTES, so one POST
 * carries many messages. At most MAX_PEER_INFLIGHT_REQUESTS requests to a
 * peer are in flight, numbered within a window of that many. A failed
 * request (connection error, timeout, HTTP error) drops its batch, reports
 * the peer unreachable, and the next request goes to the peer's next URL.
 *
 * Receiving: requests are numbered per sender instance (`X-Cairn-Stream`,
 * `X-Cairn-Seq`), and each request says the lowest number the sender still
 * has in flight (`X-Cairn-Floor`); every number below it was answered or
 * given up. The receiver delivers batches in number order, holds a batch
 * that arrives before an earlier one still in flight, skips numbers the
 * sender gave up, and drops a batch that arrives after a later one was
 * delivered. So messages from one peer are delivered in the order they were
 * sent, some possibly missing, never reordered.
 *
 * Wire format (server/peer/codec.ts): POST /raft/messages carries a msgpack
 * batch; POST /raft/snapshot carries a length-prefixed message then the
 * database file, streamed. Both carry `X-Etcd-Cluster-ID` (hex) and
 * `X-Server-From` / `X-Raft-To` (decimal raft IDs); another cluster's
 * requests get HTTP 412 `cluster ID mismatch`, as in etcd.
 *
 * Callbacks (`reportUnreachable`, `reportSnapshot`) are never called from
 * inside `send`, so the raft node may call `send` from its Ready loop and
 * step Raft in the callbacks. No callback is called after `close`.
 *
 * @module
 */
import type { Message } from "../../core/raft/types.ts";
import { isLocalMsg } from "../../core/raft/types.ts";
import { invariant, InvariantError } from "../../core/invariant.ts";
import {
  MAX_PEER_BODY_BYTES,
  MAX_PEER_INFLIGHT_REQUESTS,
  MAX_PEER_QUEUE_BYTES,
  MAX_PEER_QUEUE_MESSAGES,
  MAX_PEER_REQUEST_BYTES,
  MAX_PEER_SENDERS,
  MAX_PEER_STREAM_BUFFER_BYTES,
  PEER_MISMATCH_LOG_MS,
  PEER_PROBE_INTERVAL_MS,
  PEER_PROBE_TIMEOUT_MS,
  PEER_RECONNECT_MS,
  PEER_REQUEST_TIMEOUT_MS,
  PEER_SNAPSHOT_TIMEOUT_MS,
} from "../../core/limits.ts";
import { listenClientPort } from "../client_port.ts";
import { listenError, socketHostname } from "../listen.ts";
import type { TlsInfo } from "../tls.ts";
import { PeerDialer } from "./dialer.ts";
import { log } from "../log.ts";
import {
  decodeMessage,
  decodeMessages,
  encodeMessages,
  encodeSnapshotHead,
  messageSize,
  PeerCodecError,
} from "./codec.ts";

/** Path of message batches on the peer port. */
export const RAFT_MESSAGES_PATH = "/raft/messages";
/** Path of a member's WebSocket to a peer (the websocket mode). */
export const RAFT_SOCKET_PATH = "/raft/socket";
/** Path of a member's long-lived message stream to a peer. */
export const RAFT_STREAM_PATH = "/raft/stream";
/** Path of snapshot streams on the peer port. */
export const RAFT_SNAPSHOT_PATH = "/raft/snapshot";
/** etcd's round-trip probe path on the peer port (GET; answers `{"Health":true,"Now":…}`). */
export const RAFT_PROBING_PATH = "/raft/probing";

/**
 * Told what the transport does, by raft ID, for etcd's etcd_network_*
 * metrics: bytes of message batches sent and received, failed sends and
 * receives, connections up and down, and a round trip to each peer (a GET
 * of {@linkcode RAFT_PROBING_PATH} every PEER_PROBE_INTERVAL_MS).
 */
export interface PeerObserver {
  /** A batch of `bytes` bytes went to peer `to`. */
  sent(to: number, bytes: number): void;
  /** A batch of `bytes` bytes came from peer `from`. */
  received(from: number, bytes: number): void;
  /** A connection or request to peer `to` failed (its messages are lost; Raft sends again). */
  sendFailed(to: number): void;
  /** A batch from peer `from` was refused (undecodable or misaddressed). */
  receiveFailed(from: number): void;
  /** The connection to peer `to` opened (`up`) or ended. */
  connected(to: number, up: boolean): void;
  /** A probe to peer `to` took `seconds`. */
  roundTrip(to: number, seconds: number): void;
}

/** Callbacks and identity of a PeerTransport. */
export interface PeerTransportOptions {
  /** This member's raft node ID (a small positive integer). */
  id: number;
  /** The cluster's 64-bit ID; requests from another cluster are refused (HTTP 412, etcd's "cluster ID mismatch"). Sent as header X-Etcd-Cluster-ID (hex, as etcd). */
  clusterId: bigint;
  /** Messages received from peers, in arrival order per peer; called synchronously as each batch is decoded. */
  deliver(messages: Message[]): void;
  /** A MsgSnap arrived with its database file, fully received and fsynced at `file` (under snapDir). The receiver owns the file. */
  deliverSnapshot(message: Message, file: string): void;
  /** Build the database file that goes with an outgoing MsgSnap: returns the message to send (its snapshot metadata may be rewritten by the node), the path of a file to stream, and `done()` to call after streaming (it deletes the file). */
  openSnapshot(message: Message): Promise<{ message: Message; file: string; done(): void }>;
  /** A peer could not be reached (etcd's transport calls raft's ReportUnreachable). */
  reportUnreachable(id: number): void;
  /** An outgoing snapshot finished (failed = true when it did not arrive); raft's ReportSnapshot. */
  reportSnapshot(id: number, failed: boolean): void;
  /** Directory where received snapshot files are written. */
  snapDir: string;
  /** Extra GET handlers on the peer port, by path, e.g. "/members" (returns a JSON-serialisable value). Peer endpoints serve no client (KV) requests. */
  handlers?: Record<string, () => unknown>;
  /**
   * POST handlers on the peer port for requests between members (e.g. a
   * lease keep-alive forwarded to the leader), by path: JSON in, JSON out;
   * only from members of this cluster (the cluster ID header is checked).
   * A handler's EtcdError travels back as `{error, code}` with status 500.
   */
  postHandlers?: Record<string, (body: unknown) => Promise<unknown>>;
  /** Whether the member with raft ID `id` was removed from the cluster (its requests get 410). */
  isRemoved?(id: number): boolean;
  /** A peer answered 410: this member was removed from the cluster. */
  onRemoved?(): void;
  /**
   * Send messages over one long-lived streaming POST per peer (default),
   * or, when false, one POST per batch with numbered requests.
   */
  streams?: boolean;
  /**
   * Milliseconds a stream may take nothing before it is given up and
   * another opened. Default PEER_REQUEST_TIMEOUT_MS.
   */
  stallTimeoutMs?: number;
  /**
   * Send messages over one WebSocket per peer (default: the cheapest of the
   * modes measured, bench/README.md); when false, over one streaming POST
   * per peer (`streams`) or a POST per batch.
   */
  websocket?: boolean;
  /** Told of bytes, failures, connections and round trips (metrics). */
  observer?: PeerObserver;
  /**
   * TLS of the https peer URLs (server/tls.ts's loadPeerTls): the
   * listener's certificate and client-certificate check, and the identity
   * outgoing connections present. Needed to listen on an https URL.
   */
  tls?: TlsInfo;
  /** How peers are reached (default: a dialer of `tls`); the caller closes one it gives. */
  dialer?: PeerDialer;
}

interface Queued {
  message: Message;
  size: number;
}

interface Peer {
  id: number;
  urls: string[];
  /** Index into `urls` of the URL the next request goes to. */
  urlIndex: number;
  queue: Queued[];
  queueBytes: number;
  /** Number of the next message request. */
  nextSeq: number;
  /** Numbers of the message requests in flight. */
  inflight: Set<number>;
  snapshotInFlight: boolean;
  pumpScheduled: boolean;
  /** The open message stream to this peer (one long POST), if any. */
  stream: PeerStream | undefined;
  /** The open WebSocket to this peer, if any (the websocket mode). */
  socket: PeerSocket | undefined;
  /** No new socket before this time (ms since the epoch) after one failed. */
  retryAt: number;
  /** A pump is set for `retryAt`. */
  retryScheduled: boolean;
  removed: boolean;
  /** Aborts this peer's requests when it is removed or the transport closes. */
  abort: AbortController;
}

/** One long-lived streaming POST to a peer, carrying framed message batches. */
interface PeerStream {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** The request ended (the peer went away, refused it, or the stream was replaced). */
  ended: boolean;
  /** Since when (ms) the stream has taken nothing more: a peer that stopped reading. */
  stalledSince: number | undefined;
  /** Ends the request. */
  abort: AbortController;
}

/** A WebSocket to a peer carrying message batches, one per WebSocket message. */
interface PeerSocket {
  ws: WebSocket;
  open: boolean;
  ended: boolean;
  /** Since when (ms) its send buffer has stayed full. */
  stalledSince: number | undefined;
}

/** What a receiver keeps per sender to deliver its batches in order. */
interface SenderState {
  stream: string;
  /** Number of the next batch to deliver. */
  next: number;
  /** Batches that arrived before `next`'s, by number (at most MAX_PEER_INFLIGHT_REQUESTS). */
  held: Map<number, Message[]>;
}

const textHeaders = { "content-type": "text/plain; charset=utf-8" };

/**
 * Raft messages between members over HTTP (see the module doc for the
 * protocol). Build one with {@linkcode PeerTransport.listen}.
 */
export class PeerTransport {
  readonly #options: PeerTransportOptions;
  readonly #clusterHex: string;
  /** When a cluster ID mismatch was last logged (ms since the epoch). */
  #mismatchLogged = 0;
  /** Names this instance's request numbering to receivers; new on every start. */
  readonly #stream = crypto.randomUUID();
  /** Stop each listener (Deno.serve's, or an https URL's TLS listener). */
  readonly #servers: (() => Promise<void>)[] = [];
  readonly #urls: string[] = [];
  readonly #peers = new Map<number, Peer>();
  readonly #senders = new Map<number, SenderState>();
  readonly #pending = new Set<Promise<void>>();
  readonly #receiving = new Set<string>();
  readonly #closing = new AbortController();
  readonly #dialer: PeerDialer;
  #fault: ((m: Message) => boolean) | undefined;
  #closed = false;
  #prober: ReturnType<typeof setInterval> | undefined;

  private constructor(options: PeerTransportOptions) {
    this.#options = options;
    this.#clusterHex = options.clusterId.toString(16);
    this.#dialer = options.dialer ?? new PeerDialer(options.tls);
  }

  /**
   * Listen on each of `urls` (http:, or https: with `options.tls`: a
   * node:tls listener that verifies peer certificates when the settings say
   * so, relaying to the same handler); port 0 picks a free port.
   *
   * Creates `options.snapDir` if it does not exist.
   * @throws {Error} for an https: URL without `options.tls` (etcd's
   *   `cannot listen on TLS for <host:port>: KeyFile and CertFile are not
   *   presented`), or another scheme (naming it).
   * @throws {AddressInUseError} when a URL's address is taken.
   * @throws {InvariantError} when `options.id` is not a positive safe integer, or
   *   `options.clusterId` is not a 64-bit unsigned value.
   */
  static async listen(urls: URL[], options: PeerTransportOptions): Promise<PeerTransport> {
    invariant(
      Number.isSafeInteger(options.id) && options.id > 0,
      "a raft ID is a positive integer",
    );
    invariant(
      options.clusterId >= 0n && options.clusterId < 1n << 64n,
      "a cluster ID is 64-bit unsigned",
    );
    for (const url of urls) {
      if (url.protocol === "https:" && options.tls === undefined) {
        throw new Error(
          `cannot listen on TLS for ${url.hostname}:${
            url.port || "443"
          }: KeyFile and CertFile are not presented`,
        );
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new Error(`peer URL ${url.href}: the scheme must be http or https`);
      }
    }
    await Deno.mkdir(options.snapDir, { recursive: true });
    const t = new PeerTransport(options);
    try {
      for (const url of urls) {
        if (url.protocol === "https:") {
          // node:tls ends TLS (Deno.serve verifies no client certificates)
          // and relays the connection to a Deno.serve of the same handler.
          const port = await listenClientPort({
            hostname: socketHostname(url),
            port: Number(url.port || 443),
            http: (req) => t.#handle(req),
            tls: options.tls,
          });
          t.#servers.push(() => port.close());
          t.#urls.push(`https://${url.hostname}:${port.port}`);
          continue;
        }
        const port = Number(url.port || 80);
        let server: Deno.HttpServer<Deno.NetAddr>;
        try {
          server = Deno.serve(
            { hostname: socketHostname(url), port, onListen: () => {} },
            (req) => t.#handle(req),
          );
        } catch (err) {
          throw listenError(err, url.hostname, port);
        }
        t.#servers.push(() => server.shutdown());
        t.#urls.push(`http://${url.hostname}:${server.addr.port}`);
      }
    } catch (err) {
      await t.close();
      throw err;
    }
    if (options.observer !== undefined) {
      const observer = options.observer;
      t.#prober = setInterval(() => t.#probe(observer), PEER_PROBE_INTERVAL_MS);
      Deno.unrefTimer(Number(t.#prober));
    }
    return t;
  }

  /** One round-trip probe to every peer (at its current URL). */
  #probe(observer: PeerObserver): void {
    for (const peer of this.#peers.values()) {
      const url = peer.urls[peer.urlIndex % peer.urls.length];
      if (!this.#dialer.ready(url)) continue;
      const start = performance.now();
      const done = fetch(url + RAFT_PROBING_PATH, {
        client: this.#dialer.client(),
        signal: AbortSignal.any([peer.abort.signal, AbortSignal.timeout(PEER_PROBE_TIMEOUT_MS)]),
      }).then(async (res) => {
        await res.body?.cancel();
        if (res.ok && !peer.removed) {
          observer.roundTrip(peer.id, (performance.now() - start) / 1000);
        }
      }, () => {});
      this.#track(done);
    }
  }

  /** The URLs actually listened on (port 0 resolved). */
  get urls(): string[] {
    return [...this.#urls];
  }

  /**
   * Add or replace the peer with raft ID `id`, reachable at `urls` (peer URLs like http://127.0.0.1:2380 or https://…).
   * Replacing keeps the peer's queue and requests in flight.
   * @throws {InvariantError} when `id` is not a positive integer other than this member's, or
   *   `urls` is empty or holds a URL that is not http: or https:.
   */
  setPeer(id: number, urls: string[]): void {
    invariant(Number.isSafeInteger(id) && id > 0, "a peer's raft ID is a positive integer");
    invariant(id !== this.#options.id, "a member is not its own peer");
    invariant(urls.length > 0, "a peer has at least one URL");
    const bases = urls.map((u) => {
      const url = new URL(u);
      invariant(url.protocol === "http:" || url.protocol === "https:", "peer URLs are http(s):");
      return url.origin;
    });
    const peer = this.#peers.get(id);
    if (peer) {
      peer.urls = bases;
      peer.urlIndex = 0;
      return;
    }
    this.#peers.set(id, {
      id,
      urls: bases,
      urlIndex: 0,
      queue: [],
      queueBytes: 0,
      nextSeq: 1,
      inflight: new Set(),
      snapshotInFlight: false,
      pumpScheduled: false,
      stream: undefined,
      socket: undefined,
      retryAt: 0,
      retryScheduled: false,
      removed: false,
      abort: new AbortController(),
    });
  }

  /**
   * POST `body` (JSON) to `path` of peer `id`, trying its URLs in turn;
   * resolves with the JSON answer.
   *
   * @throws {PeerRequestError} with the peer's error (message and gRPC
   *   code) when it answered one; {Error} when no URL of it answered, or
   *   the peer is unknown.
   */
  async request(id: number, path: string, body: unknown): Promise<unknown> {
    const peer = this.#peers.get(id);
    if (peer === undefined) throw new Error(`unknown peer ${id}`);
    let last: unknown;
    for (const base of peer.urls) {
      let res: Response;
      try {
        await this.#dialer.prepare(base);
        res = await fetch(base + path, {
          method: "POST",
          client: this.#dialer.client(),
          headers: {
            "content-type": "application/json",
            "x-etcd-cluster-id": this.#clusterHex,
            "x-server-from": String(this.#options.id),
            "x-raft-to": String(id),
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(PEER_REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        last = err;
        this.#dialer.failed(base);
        continue;
      }
      const answer = await res.json().catch(() => undefined) as
        | { error?: string; code?: number }
        | undefined;
      if (res.status === 500 && typeof answer?.error === "string") {
        throw new PeerRequestError(answer.error, answer.code ?? 2);
      }
      if (!res.ok) throw new Error(`peer ${id} answered ${res.status}`);
      return answer;
    }
    throw new Error(`peer ${id} is unreachable: ${String(last)}`);
  }

  /** The raft IDs of the peers this transport reaches. */
  peers(): number[] {
    return [...this.#peers.keys()];
  }

  /** Forget the peer `id`: its queue is dropped and its requests in flight are aborted (no callbacks for them). Unknown IDs are ignored. */
  removePeer(id: number): void {
    const peer = this.#peers.get(id);
    if (!peer) return;
    peer.removed = true;
    peer.queue = [];
    peer.queueBytes = 0;
    peer.abort.abort();
    if (peer.socket !== undefined) this.#endSocket(peer, peer.socket, false);
    this.#peers.delete(id);
    this.#senders.delete(id);
  }

  /**
   * Queue messages for their `to` peers; never waits, never throws for unreachable peers (raft retries). MsgSnap goes through the snapshot path. Messages to unknown peers are dropped.
   *
   * A message that does not fit the peer's queue is dropped (a MsgApp also
   * reports the peer unreachable); a MsgSnap while another snapshot to that
   * peer is in flight is dropped (the one in flight reports). Messages
   * dropped by the fault hook are lost silently (a MsgSnap reports a failed
   * snapshot). Does nothing after `close`.
   * @throws {InvariantError} for a message not from this member or of a local type.
   */
  send(messages: Message[]): void {
    if (this.#closed) return;
    for (const m of messages) {
      // A proposal a follower forwarded may be forwarded again (to a new
      // leader) with its proposer as `from`; everything else is this member's.
      invariant(
        m.from === this.#options.id || m.type === "MsgProp",
        "an outgoing message is from this member, or a forwarded proposal",
      );
      invariant(!isLocalMsg(m.type), "local messages never cross the network");
      const peer = this.#peers.get(m.to);
      if (!peer) continue;
      if (m.type === "MsgSnap") {
        invariant(m.snapshot !== undefined, "a MsgSnap carries snapshot metadata");
        if (this.#fault?.(m)) {
          this.#later(() => this.#options.reportSnapshot(peer.id, true), peer);
        } else if (!peer.snapshotInFlight) {
          this.#track(this.#sendSnapshot(peer, m));
        }
        continue;
      }
      if (this.#fault?.(m)) continue;
      const size = messageSize(m);
      if (
        peer.queue.length >= MAX_PEER_QUEUE_MESSAGES ||
        peer.queueBytes + size > MAX_PEER_QUEUE_BYTES
      ) {
        if (m.type === "MsgApp") this.#later(() => this.#options.reportUnreachable(peer.id), peer);
        continue;
      }
      peer.queue.push({ message: m, size });
      peer.queueBytes += size;
      this.#schedulePump(peer);
    }
  }

  /** Fault hook for tests: when it returns true for a message (outgoing or incoming), the message is dropped. undefined clears it. Used to build network partitions in tests. */
  setFault(drop: ((m: Message) => boolean) | undefined): void {
    this.#fault = drop;
  }

  /** Messages queued for peer `id` and not yet in a request (0 for an unknown peer); at most MAX_PEER_QUEUE_MESSAGES. */
  queueLength(id: number): number {
    return this.#peers.get(id)?.queue.length ?? 0;
  }

  /** Estimated bytes of the messages queued for peer `id` (0 for an unknown peer); at most MAX_PEER_QUEUE_BYTES. */
  queueBytes(id: number): number {
    return this.#peers.get(id)?.queueBytes ?? 0;
  }

  /** Message requests (or the stream) to peer `id` in flight (0 for an unknown peer); at most MAX_PEER_INFLIGHT_REQUESTS. */
  inflight(id: number): number {
    const peer = this.#peers.get(id);
    if (peer === undefined) return 0;
    return peer.inflight.size + (peer.stream !== undefined || peer.socket !== undefined ? 1 : 0);
  }

  /** Stop sending and listening: requests in flight are aborted (no callbacks for them), received snapshots in progress are discarded. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#prober);
    this.#closing.abort();
    for (const peer of this.#peers.values()) {
      peer.removed = true;
      peer.queue = [];
      peer.queueBytes = 0;
      peer.abort.abort();
      try {
        peer.socket?.ws.close();
      } catch { /* closed */ }
    }
    this.#peers.clear();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    await Promise.all(this.#servers.map((stop) => stop()));
    if (this.#options.dialer === undefined) this.#dialer.close();
  }

  // ---- sending ----

  /** Runs `fn` in a later microtask unless the peer is gone by then. */
  #later(fn: () => void, peer: Peer): void {
    queueMicrotask(() => {
      if (!peer.removed && !this.#closed) fn();
    });
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  /** Starts requests at the end of this task, so that every message queued in it can join them. */
  #schedulePump(peer: Peer): void {
    if (peer.pumpScheduled) return;
    peer.pumpScheduled = true;
    queueMicrotask(() => {
      peer.pumpScheduled = false;
      this.#pump(peer);
    });
  }

  #pump(peer: Peer): void {
    if (this.#options.websocket !== false) {
      this.#pumpSocket(peer);
      return;
    }
    if (this.#options.streams !== false) {
      this.#pumpStream(peer);
      return;
    }
    while (!peer.removed && peer.queue.length > 0) {
      const floor = peer.inflight.size > 0 ? Math.min(...peer.inflight) : peer.nextSeq;
      if (peer.nextSeq >= floor + MAX_PEER_INFLIGHT_REQUESTS) return;
      const batch = this.#takeBatch(peer);
      const seq = peer.nextSeq++;
      peer.inflight.add(seq);
      invariant(peer.inflight.size <= MAX_PEER_INFLIGHT_REQUESTS, "the in-flight window holds");
      this.#track(this.#post(peer, batch, seq, floor));
    }
  }

  /** Take the next batch off the peer's queue: at least one message, at most MAX_PEER_REQUEST_BYTES. */
  #takeBatch(peer: Peer): Message[] {
    let take = 0;
    let bytes = 0;
    while (
      take < peer.queue.length &&
      (take === 0 || bytes + peer.queue[take].size <= MAX_PEER_REQUEST_BYTES)
    ) {
      bytes += peer.queue[take].size;
      take++;
    }
    peer.queueBytes -= bytes;
    return peer.queue.splice(0, take).map((q) => q.message);
  }

  /**
   * Move queued messages into the peer's stream, in frames of at most
   * MAX_PEER_REQUEST_BYTES, while the stream takes more
   * (MAX_PEER_STREAM_BUFFER_BYTES not yet sent); it asks again (pull) as it
   * drains. Opens the stream when there is none.
   */
  #pumpStream(peer: Peer): void {
    while (!peer.removed && !this.#closed && peer.queue.length > 0) {
      const stream = peer.stream ?? this.#openStream(peer);
      const room = stream.controller.desiredSize;
      if (room !== null && room <= 0) {
        // A connection that takes nothing for this long is given up (a peer
        // gone without closing it); the next message opens another.
        const now = Date.now();
        stream.stalledSince ??= now;
        const limit = this.#options.stallTimeoutMs ?? PEER_REQUEST_TIMEOUT_MS;
        if (now - stream.stalledSince >= limit) stream.abort.abort();
        return;
      }
      stream.stalledSince = undefined;
      const batch = this.#takeBatch(peer);
      const payload = encodeMessages(batch);
      const frame = new Uint8Array(4 + payload.length);
      new DataView(frame.buffer).setUint32(0, payload.length);
      frame.set(payload, 4);
      try {
        stream.controller.enqueue(frame);
        this.#options.observer?.sent(peer.id, frame.length);
      } catch {
        // The request ended meanwhile: the batch is lost (Raft sends again).
        this.#endStream(peer, stream, true);
      }
    }
  }

  /** Move queued messages into the peer's WebSocket while its send buffer has room. */
  #pumpSocket(peer: Peer): void {
    while (!peer.removed && !this.#closed && peer.queue.length > 0) {
      // A peer that is down is tried again a little later, not in a loop.
      const wait = peer.retryAt - Date.now();
      if (peer.socket === undefined && wait > 0) {
        if (!peer.retryScheduled) {
          peer.retryScheduled = true;
          const timer = setTimeout(() => {
            peer.retryScheduled = false;
            if (!peer.removed && !this.#closed) this.#schedulePump(peer);
          }, wait);
          Deno.unrefTimer(timer);
        }
        return;
      }
      if (
        peer.socket === undefined &&
        !this.#dialer.ready(peer.urls[peer.urlIndex % peer.urls.length])
      ) {
        // --peer-auto-tls: the peer's certificate is being read; try again soon.
        peer.retryAt = Date.now() + PEER_RECONNECT_MS;
        continue;
      }
      const socket = peer.socket ?? this.#openSocket(peer);
      if (!socket.open || socket.ws.bufferedAmount >= MAX_PEER_STREAM_BUFFER_BYTES) {
        // A handshake that does not finish, or a peer that stops reading, is
        // given up after this long; the next message opens another socket.
        const now = Date.now();
        socket.stalledSince ??= now;
        const limit = this.#options.stallTimeoutMs ?? PEER_REQUEST_TIMEOUT_MS;
        if (now - socket.stalledSince >= limit) this.#endSocket(peer, socket, true);
        return; // onopen pumps; so does every send
      }
      socket.stalledSince = undefined;
      try {
        const batch = encodeMessages(this.#takeBatch(peer));
        socket.ws.send(batch);
        this.#options.observer?.sent(peer.id, batch.length);
      } catch {
        this.#endSocket(peer, socket, true);
      }
    }
  }

  #openSocket(peer: Peer): PeerSocket {
    const origin = peer.urls[peer.urlIndex % peer.urls.length];
    const base = origin.replace(/^http/, "ws");
    const query = `?cluster=${this.#clusterHex}&from=${this.#options.id}&to=${peer.id}`;
    const ws = this.#dialer.tls
      ? new WebSocket(base + RAFT_SOCKET_PATH + query, { client: this.#dialer.client() })
      : new WebSocket(base + RAFT_SOCKET_PATH + query);
    ws.binaryType = "arraybuffer";
    const socket: PeerSocket = { ws, open: false, ended: false, stalledSince: undefined };
    peer.socket = socket;
    ws.onopen = () => {
      socket.open = true;
      socket.stalledSince = undefined;
      this.#options.observer?.connected(peer.id, true);
      if (!peer.removed && !this.#closed) this.#schedulePump(peer);
    };
    ws.onclose = (e) => {
      if (e.code === 4410) this.#options.onRemoved?.();
      this.#endSocket(peer, socket, true);
    };
    ws.onerror = () => this.#endSocket(peer, socket, true);
    return socket;
  }

  #endSocket(peer: Peer, socket: PeerSocket, failed: boolean): void {
    if (socket.ended) return;
    socket.ended = true;
    if (socket.open) this.#options.observer?.connected(peer.id, false);
    if (failed && !this.#closed) this.#options.observer?.sendFailed(peer.id);
    try {
      socket.ws.close();
    } catch { /* closed */ }
    if (peer.socket === socket) peer.socket = undefined;
    if (peer.removed || this.#closed) return;
    if (failed) {
      peer.retryAt = Date.now() + PEER_RECONNECT_MS;
      this.#dialer.failed(peer.urls[peer.urlIndex % peer.urls.length]);
      peer.urlIndex = (peer.urlIndex + 1) % peer.urls.length;
      this.#later(() => this.#options.reportUnreachable(peer.id), peer);
    }
    if (peer.queue.length > 0) this.#schedulePump(peer);
  }

  /** Open a message stream to `peer`: one POST whose body stays open. */
  #openStream(peer: Peer): PeerStream {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      pull: () => this.#schedulePump(peer),
    }, new ByteLengthQueuingStrategy({ highWaterMark: MAX_PEER_STREAM_BUFFER_BYTES }));
    const stream: PeerStream = {
      controller,
      ended: false,
      stalledSince: undefined,
      abort: new AbortController(),
    };
    peer.stream = stream;
    const url = peer.urls[peer.urlIndex % peer.urls.length];
    this.#track((async () => {
      let failed = true;
      try {
        const res = await fetch(url + RAFT_STREAM_PATH, {
          method: "POST",
          body,
          headers: { ...this.#headers(peer), "content-type": "application/octet-stream" },
          client: this.#dialer.client(),
          signal: AbortSignal.any([peer.abort.signal, stream.abort.signal]),
          duplex: "half",
        } as RequestInit);
        await res.body?.cancel();
        if (res.status === 410) this.#options.onRemoved?.();
        failed = !res.ok;
      } catch {
        failed = true;
      }
      this.#endStream(peer, stream, failed);
    })());
    return stream;
  }

  /** A stream ended: the next message opens another (on the next URL after a failure). */
  #endStream(peer: Peer, stream: PeerStream, failed: boolean): void {
    if (stream.ended) return;
    stream.ended = true;
    try {
      stream.controller.close();
    } catch {
      // already closed or errored
    }
    if (peer.stream === stream) peer.stream = undefined;
    if (peer.removed || this.#closed) return;
    if (failed) {
      peer.urlIndex = (peer.urlIndex + 1) % peer.urls.length;
      this.#later(() => this.#options.reportUnreachable(peer.id), peer);
    }
    if (peer.queue.length > 0) this.#schedulePump(peer);
  }

  #headers(peer: Peer): Record<string, string> {
    return {
      "x-etcd-cluster-id": this.#clusterHex,
      "x-server-from": String(this.#options.id),
      "x-raft-to": String(peer.id),
    };
  }

  async #post(peer: Peer, batch: Message[], seq: number, floor: number): Promise<void> {
    const url = peer.urls[peer.urlIndex % peer.urls.length];
    let ok = false;
    const body = encodeMessages(batch);
    const bytes = body.length;
    try {
      const res = await fetch(url + RAFT_MESSAGES_PATH, {
        method: "POST",
        body,
        headers: {
          ...this.#headers(peer),
          "content-type": "application/octet-stream",
          "x-cairn-stream": this.#stream,
          "x-cairn-seq": String(seq),
          "x-cairn-floor": String(floor),
        },
        client: this.#dialer.client(),
        signal: AbortSignal.any([peer.abort.signal, AbortSignal.timeout(PEER_REQUEST_TIMEOUT_MS)]),
      });
      await res.body?.cancel();
      ok = res.ok;
      if (res.status === 410) this.#options.onRemoved?.();
    } catch {
      ok = false;
    }
    peer.inflight.delete(seq);
    if (peer.removed || this.#closed) return;
    if (ok) this.#options.observer?.sent(peer.id, bytes);
    else {
      this.#options.observer?.sendFailed(peer.id);
      peer.urlIndex = (peer.urlIndex + 1) % peer.urls.length;
      this.#options.reportUnreachable(peer.id);
    }
    this.#schedulePump(peer);
  }

  async #sendSnapshot(peer: Peer, m: Message): Promise<void> {
    peer.snapshotInFlight = true;
    // Callbacks stay out of send(): the first await below leaves it.
    await Promise.resolve();
    let opened: { message: Message; file: string; done(): void } | undefined;
    let file: Deno.FsFile | undefined;
    let failed = true;
    try {
      opened = await this.#options.openSnapshot(m);
      invariant(
        opened.message.type === "MsgSnap" && opened.message.to === peer.id &&
          opened.message.snapshot !== undefined,
        "openSnapshot returns a MsgSnap to the same peer",
      );
      if (peer.removed || this.#closed) return;
      file = await Deno.open(opened.file, { read: true });
      const head = encodeSnapshotHead(opened.message);
      const body = file.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({ start: (c) => c.enqueue(head) }),
      );
      const url = peer.urls[peer.urlIndex % peer.urls.length];
      const res = await fetch(url + RAFT_SNAPSHOT_PATH, {
        method: "POST",
        body,
        headers: { ...this.#headers(peer), "content-type": "application/octet-stream" },
        client: this.#dialer.client(),
        signal: AbortSignal.any([
          peer.abort.signal,
          AbortSignal.timeout(PEER_SNAPSHOT_TIMEOUT_MS),
        ]),
      });
      await res.body?.cancel();
      failed = !res.ok;
    } catch (err) {
      if (err instanceof InvariantError) throw err;
      failed = true;
    } finally {
      try {
        file?.close();
      } catch {
        // The readable closed the file when the stream ended.
      }
      opened?.done();
      peer.snapshotInFlight = false;
      if (!peer.removed && !this.#closed) {
        if (failed) {
          peer.urlIndex = (peer.urlIndex + 1) % peer.urls.length;
          this.#options.reportUnreachable(peer.id);
        }
        this.#options.reportSnapshot(peer.id, failed);
      }
    }
  }

  // ---- receiving ----

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === RAFT_SOCKET_PATH) return this.#receiveSocket(req, url);
    if (path === RAFT_PROBING_PATH && req.method === "GET") {
      return Response.json({ Health: true, Now: new Date().toISOString() });
    }
    if (path === RAFT_MESSAGES_PATH || path === RAFT_SNAPSHOT_PATH || path === RAFT_STREAM_PATH) {
      if (req.method !== "POST") return new Response("method not allowed\n", { status: 405 });
      const from = this.#checkHeaders(req);
      if (typeof from !== "number") return from;
      try {
        if (path === RAFT_STREAM_PATH) return await this.#receiveStream(req, from);
        return path === RAFT_MESSAGES_PATH
          ? await this.#receiveMessages(req, from)
          : await this.#receiveSnapshot(req, from);
      } catch (err) {
        if (err instanceof PeerCodecError) return text(400, err.message);
        if (this.#closing.signal.aborted) return text(503, "closing");
        throw err;
      }
    }
    const post = this.#options.postHandlers;
    if (post !== undefined && Object.hasOwn(post, path)) {
      if (req.method !== "POST") return new Response("method not allowed\n", { status: 405 });
      const from = this.#checkHeaders(req);
      if (typeof from !== "number") return from;
      try {
        return Response.json(await post[path](await req.json()));
      } catch (err) {
        const e = err as { message?: string; code?: number };
        return Response.json({ error: String(e?.message ?? err), code: e?.code ?? 2 }, {
          status: 500,
        });
      }
    }
    const handler = this.#options.handlers?.[path];
    if (handler && Object.hasOwn(this.#options.handlers!, path)) {
      if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      return Response.json(handler());
    }
    return text(404, "404 page not found");
  }

  /** The sender's raft ID, or the response refusing the request. */
  #checkHeaders(req: Request): number | Response {
    const cluster = req.headers.get("x-etcd-cluster-id");
    if (
      cluster === null || !/^[0-9a-fA-F]{1,16}$/.test(cluster) ||
      cluster.toLowerCase() !== this.#clusterHex
    ) {
      // etcd: a data dir or flags of another cluster; never a silent fork.
      const now = Date.now();
      if (now - this.#mismatchLogged >= PEER_MISMATCH_LOG_MS) {
        this.#mismatchLogged = now;
        log.warn("request cluster ID mismatch", {
          "local-member-cluster-id": this.#clusterHex,
          "remote-peer-cluster-id": cluster ?? "",
          "remote-peer-id": req.headers.get("x-server-from") ?? "",
        });
      }
      return text(412, "cluster ID mismatch");
    }
    const sender = Number(req.headers.get("x-server-from") ?? NaN);
    if (this.#options.isRemoved?.(sender) === true) {
      // etcd's answer to a member removed from the cluster.
      return text(410, "the member has been permanently removed from the cluster");
    }
    const to = req.headers.get("x-raft-to");
    if (to !== null && to !== String(this.#options.id)) return text(412, "to field mismatch");
    const from = Number(req.headers.get("x-server-from") ?? NaN);
    if (!Number.isSafeInteger(from) || from <= 0) return text(400, "bad X-Server-From");
    return from;
  }

  async #receiveMessages(req: Request, from: number): Promise<Response> {
    const stream = req.headers.get("x-cairn-stream");
    const seq = Number(req.headers.get("x-cairn-seq") ?? NaN);
    const floor = Number(req.headers.get("x-cairn-floor") ?? NaN);
    if (
      stream === null || !Number.isSafeInteger(seq) || !Number.isSafeInteger(floor) ||
      floor < 1 || seq < floor || seq >= floor + MAX_PEER_INFLIGHT_REQUESTS
    ) {
      return text(400, "bad request numbering");
    }
    const declared = Number(req.headers.get("content-length") ?? 0);
    if (declared > MAX_PEER_BODY_BYTES) return text(413, "request body too large");
    const body = await readAll(req.body, MAX_PEER_BODY_BYTES, this.#closing.signal);
    if (body === undefined) return text(413, "request body too large");
    this.#options.observer?.received(from, body.length);
    const messages = decodeMessages(body);
    for (const m of messages) {
      if ((m.from !== from && m.type !== "MsgProp") || m.to !== this.#options.id) {
        return text(400, "a message's from/to differs from the request's");
      }
      if (m.type === "MsgSnap") return text(400, "MsgSnap goes to " + RAFT_SNAPSHOT_PATH);
    }
    if (this.#closed) return text(503, "closing");
    let state = this.#senders.get(from);
    if (!state || state.stream !== stream) {
      if (!state && this.#senders.size >= MAX_PEER_SENDERS) return text(503, "too many senders");
      state = { stream, next: floor, held: new Map() };
      this.#senders.set(from, state);
    }
    if (floor > state.next) {
      // The sender gave up every number below floor: deliver what came of them.
      for (const n of [...state.held.keys()].sort((a, b) => a - b)) {
        if (n >= floor) break;
        this.#deliver(state.held.get(n)!);
        state.held.delete(n);
      }
      state.next = floor;
    }
    if (seq >= state.next) {
      state.held.set(seq, messages);
      invariant(state.held.size <= MAX_PEER_INFLIGHT_REQUESTS, "held batches fit the window");
      for (let batch; (batch = state.held.get(state.next)) !== undefined; state.next++) {
        state.held.delete(state.next);
        this.#deliver(batch);
      }
    }
    return new Response(null, { status: 204 });
  }

  /**
   * A sender's message stream: frames (4-byte big-endian length, then a
   * batch as /raft/messages carries it), delivered in order as each
   * arrives, until the sender ends the request or a frame is bad.
   */
  async #receiveStream(req: Request, from: number): Promise<Response> {
    if (req.body === null) return text(400, "no body");
    const reader = req.body.getReader();
    const onClose = () => reader.cancel().catch(() => {});
    this.#closing.signal.addEventListener("abort", onClose);
    let buf: Uint8Array = new Uint8Array(0);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return new Response(null, { status: 204 });
        buf = concat(buf, value);
        let at = 0;
        while (buf.length - at >= 4) {
          const n = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0);
          if (n > MAX_PEER_BODY_BYTES) return text(413, "frame too large");
          if (buf.length - at - 4 < n) break;
          const messages = decodeMessages(buf.subarray(at + 4, at + 4 + n));
          this.#options.observer?.received(from, 4 + n);
          at += 4 + n;
          for (const m of messages) {
            if ((m.from !== from && m.type !== "MsgProp") || m.to !== this.#options.id) {
              return text(400, "a message's from/to differs from the request's");
            }
            if (m.type === "MsgSnap") return text(400, "MsgSnap goes to " + RAFT_SNAPSHOT_PATH);
          }
          if (this.#closed) return text(503, "closing");
          this.#deliver(messages);
        }
        // Keep only the partial frame (a copy: delivered messages may view `buf`).
        buf = at === 0 ? buf : buf.slice(at);
      }
    } finally {
      this.#closing.signal.removeEventListener("abort", onClose);
      reader.cancel().catch(() => {});
    }
  }

  /** A sender's WebSocket: each message a batch, delivered in order. */
  #receiveSocket(req: Request, url: URL): Response {
    const cluster = url.searchParams.get("cluster") ?? "";
    if (cluster.toLowerCase() !== this.#clusterHex) return text(412, "cluster ID mismatch");
    const from = Number(url.searchParams.get("from") ?? NaN);
    if (url.searchParams.get("to") !== String(this.#options.id)) {
      return text(412, "to field mismatch");
    }
    if (!Number.isSafeInteger(from) || from <= 0) return text(400, "bad from");
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    const onClose = () => socket.close();
    this.#closing.signal.addEventListener("abort", onClose);
    socket.onopen = () => {
      // etcd's answer to a member removed from the cluster (as HTTP 410).
      if (this.#options.isRemoved?.(from) === true) socket.close(4410, "removed");
    };
    socket.onclose = () => this.#closing.signal.removeEventListener("abort", onClose);
    const observer = this.#options.observer;
    socket.onmessage = (e) => {
      if (this.#closed) return;
      try {
        const bytes = new Uint8Array(e.data as ArrayBuffer);
        observer?.received(from, bytes.length);
        const messages = decodeMessages(bytes);
        for (const m of messages) {
          if (
            (m.from !== from && m.type !== "MsgProp") || m.to !== this.#options.id ||
            m.type === "MsgSnap"
          ) {
            observer?.receiveFailed(from);
            socket.close(4400, "bad message");
            return;
          }
        }
        this.#deliver(messages);
      } catch {
        observer?.receiveFailed(from);
        socket.close(4400, "bad batch");
      }
    };
    return response;
  }

  #deliver(messages: Message[]): void {
    const fault = this.#fault;
    const kept = fault ? messages.filter((m) => !fault(m)) : messages;
    if (kept.length > 0) this.#options.deliver(kept);
  }

  async #receiveSnapshot(req: Request, from: number): Promise<Response> {
    if (req.body === null) return text(400, "no body");
    const reader = req.body.getReader();
    const onClose = () => reader.cancel().catch(() => {});
    this.#closing.signal.addEventListener("abort", onClose);
    let file: Deno.FsFile | undefined;
    let tmp: string | undefined;
    try {
      let buf: Uint8Array = new Uint8Array(0);
      const fill = async (n: number): Promise<boolean> => {
        while (buf.byteLength < n) {
          const r = await reader.read();
          if (r.done) return false;
          buf = concat(buf, r.value);
        }
        return true;
      };
      if (!(await fill(4))) return text(400, "snapshot head missing");
      const length = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
      if (length > MAX_PEER_REQUEST_BYTES) return text(413, "snapshot head too large");
      if (!(await fill(4 + length))) return text(400, "snapshot head cut short");
      const m = decodeMessage(buf.subarray(4, 4 + length));
      if (m.type !== "MsgSnap" || m.snapshot === undefined) return text(400, "not a MsgSnap");
      if (m.from !== from || m.to !== this.#options.id) {
        return text(400, "the message's from/to differs from the request's");
      }
      if (this.#fault?.(m)) return text(503, "dropped");
      const { term, index } = m.snapshot.metadata;
      const name = `${this.#options.snapDir}/${term}-${index}.snap`;
      if (this.#receiving.has(name)) return text(409, "this snapshot is being received");
      this.#receiving.add(name);
      tmp = `${name}.tmp`;
      try {
        file = await Deno.open(tmp, { write: true, create: true, truncate: true });
        await writeAll(file, buf.subarray(4 + length));
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          await writeAll(file, r.value);
        }
        await file.sync();
        file.close();
        file = undefined;
        await Deno.rename(tmp, name);
        tmp = undefined;
      } finally {
        this.#receiving.delete(name);
      }
      if (this.#closed) {
        await Deno.remove(name).catch(() => {});
        return text(503, "closing");
      }
      this.#options.deliverSnapshot(m, name);
      return new Response(null, { status: 204 });
    } finally {
      this.#closing.signal.removeEventListener("abort", onClose);
      file?.close();
      if (tmp !== undefined) await Deno.remove(tmp).catch(() => {});
      reader.cancel().catch(() => {});
    }
  }
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: textHeaders });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
}

/** The whole body, or undefined when it is longer than `max` bytes; cancelled when `signal` aborts. */
async function readAll(
  body: ReadableStream<Uint8Array> | null,
  max: number,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort);
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      total += r.value.byteLength;
      if (total > max) return undefined;
      chunks.push(r.value);
    }
    if (signal.aborted) throw new Error("closing");
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  } finally {
    signal.removeEventListener("abort", onAbort);
    reader.cancel().catch(() => {});
  }
}

/** An error a peer answered to {@linkcode PeerTransport.request}: etcd's message and gRPC code. */
export class PeerRequestError extends Error {
  /** The gRPC code of the peer's error. */
  readonly code: number;
  /** The peer's error message and code. */
  constructor(message: string, code: number) {
    super(message);
    this.name = "PeerRequestError";
    this.code = code;
  }
}
