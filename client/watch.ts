/**
 * The client side of etcd's Watch over the JSON gateway (`POST /v3/watch`):
 * one watcher per HTTP stream, resumed across lost connections with neither
 * duplicates nor gaps, as clientv3 resumes its watchers.
 *
 * The request body is one `{"create_request":…}`; the server answers with a
 * chunked stream of `{"result":<WatchResponse>}` lines that stays open after
 * the body ends: first `created`, then events, progress notifications, or a
 * final `canceled`. {@linkcode Watcher} turns those into
 * {@linkcode WatchBatch}es.
 *
 * @module
 */

import { fromJson, toJson } from "../core/api/codec.ts";
import type {
  Event,
  WatchBatch,
  WatchCreateRequest,
  WatchOptions,
  WatchResponse,
} from "../core/api/types.ts";
import { Errors, EtcdError, GrpcCode } from "../core/errors.ts";
import {
  MAX_WATCH_RESPONSE_BYTES,
  WATCH_RETRY_MAX_MS,
  WATCH_RETRY_MIN_MS,
} from "../core/limits.ts";
import {
  ConnectionError,
  errorChain,
  errorFromBody,
  isConnectFailure,
  RENEW_TOKEN_ERRORS,
  withDefaults,
} from "./http.ts";

/**
 * Options of `Client.watch`: the watch's range and create-request fields
 * ({@linkcode WatchOptions}), plus which endpoint to use and how long a
 * connection may take to be answered.
 */
export interface WatchCallOptions extends WatchOptions {
  /** Watch through this endpoint only (it is still reconnected to after a loss); no failover. */
  endpoint?: string;
  /**
   * Milliseconds each connection attempt may take until the server answers
   * `created` (default: the client's timeout). An attempt that takes longer
   * counts as failed and the next endpoint is tried. The watch itself has no
   * deadline.
   */
  timeout?: number;
}

/** What a {@linkcode Watcher} needs from its client. */
export interface WatchTransport {
  /** The fetch implementation. */
  fetch: typeof fetch;
  /**
   * The HTTP headers of a connection (the client's own and its token),
   * read for each connection; `refresh` asks for a new token, after an
   * answer a new token may cure (`etcdserver: invalid auth token`, …).
   */
  headers(refresh: boolean): Promise<Record<string, string>>;
  /** Normalised base URLs, in the order to try them. */
  endpoints: readonly string[];
  /** Milliseconds a connection attempt may take until `created`. */
  timeout: number;
}

/**
 * The error a watch ends with when the server cancels it: etcd's error as
 * clientv3 reports it, with the cancel response attached.
 * - compacted start (or resume) revision: `etcdserver: mvcc: required
 *   revision has been compacted` (code OutOfRange, `Errors.Compacted()`),
 *   `compactRevision` the oldest revision still available;
 * - another reason: the server's `cancel_reason` as message (code
 *   FailedPrecondition); without a reason, clientv3's
 *   `etcdserver: mvcc: required revision is a future revision`.
 */
export interface WatchCanceledError extends EtcdError {
  /** The `canceled` WatchResponse as the server sent it. */
  readonly response: WatchResponse;
  /** The compacted revision when the cancel was for compaction, else 0. */
  readonly compactRevision: number;
}

/** Whether `e` is a watch the server canceled ({@linkcode WatchCanceledError}). */
export function isWatchCanceled(e: unknown): e is WatchCanceledError {
  return e instanceof EtcdError && "response" in e && "compactRevision" in e;
}

/** The error for a `canceled` response (see {@linkcode WatchCanceledError}). */
export function watchCanceledError(resp: WatchResponse): WatchCanceledError {
  const compactRevision = resp.compact_revision ?? 0;
  let err: EtcdError;
  if (compactRevision !== 0) err = Errors.Compacted();
  else if (resp.cancel_reason) err = new EtcdError(resp.cancel_reason, GrpcCode.FailedPrecondition);
  else err = Errors.FutureRev();
  return Object.assign(err, { response: resp, compactRevision });
}

/** Thrown inside the watcher when it was closed; ends the iteration without error. */
const CLOSED = Symbol("closed");

/**
 * Whether a failure is worth a new connection: the endpoint could not be
 * reached, the stream broke or ended, or the server said Unavailable.
 */
function retryable(e: unknown): boolean {
  if (e instanceof ConnectionError) return true;
  return e instanceof EtcdError && e.code === GrpcCode.Unavailable && !isWatchCanceled(e);
}

/**
 * One watch over the JSON gateway, resumed across lost connections. Made by
 * `Client.watch`; the first connection is opened at once, so events written
 * after {@linkcode Watcher.created} resolves are delivered.
 *
 * Iterating yields {@linkcode WatchBatch}es: one per WatchResponse with
 * events (all events of one revision arrive in one batch, fragments put back
 * together), and one with no events per progress notification. The
 * iteration
 * - ends without error when `signal` aborts, {@linkcode Watcher.close} is
 *   called, or the loop is left (`break`);
 * - throws a {@linkcode WatchCanceledError} when the server cancels the
 *   watch: `etcdserver: mvcc: required revision has been compacted` when
 *   the (resume) revision is compacted;
 * - throws an {@linkcode EtcdError} for any other answer than a stream or
 *   Unavailable (e.g. 404 from a server without watch), and `grpc: received
 *   message larger than max (N vs. M)` for a response over
 *   `MAX_WATCH_RESPONSE_BYTES`.
 *
 * Resume: when the stream is lost (the server stopped, the network failed,
 * the endpoint is down, or the server answered Unavailable), the watcher
 * connects again, trying the endpoints in turn and waiting between rounds
 * (`WATCH_RETRY_MIN_MS` doubling up to `WATCH_RETRY_MAX_MS`, core/limits.ts),
 * for as long as it is not closed. The watch is created again from the
 * revision after the last one delivered (a progress notification at R counts
 * as delivering R); before anything was delivered, from the start revision,
 * or else from the revision after the first `created` answer. Events below
 * that revision are dropped if a server sends them again, so no event is
 * delivered twice and none in the retained history is skipped.
 *
 * Buffering: the stream is read only as the iteration asks for batches;
 * what is held is the current chunk and one response, at most
 * `MAX_WATCH_RESPONSE_BYTES`.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const watcher = client.watch("config/", { prefix: true, signal: ac.signal });
 * for await (const batch of watcher) {
 *   for (const ev of batch.events) console.log(ev.type, ev.kv.key);
 * }
 * ```
 */
export class Watcher implements AsyncIterable<WatchBatch> {
  readonly #transport: WatchTransport;
  readonly #request: WatchCreateRequest;
  readonly #closer = new AbortController();
  /** First revision not yet delivered; 0 until known (the watch started from "now"). */
  #next: number;
  /** Index into the endpoints of the next connection attempt. */
  #endpoint = 0;
  /** Failed connection attempts or lost streams since the last delivery. */
  #failures = 0;
  #connection: Promise<Connection>;
  #iterated = false;

  /**
   * Resolves with the header revision of the first `created` answer (the
   * watch then sees every revision after it, or from `startRevision`);
   * rejects with the error that ends the watch before that.
   */
  readonly created: Promise<number>;

  /**
   * Starts the watch (see the class docs).
   *
   * @param transport the client's fetch, headers, endpoints and timeout.
   * @param request the create request without `start_revision`.
   * @param options `startRevision` (first revision to deliver, default the
   *   next one), `signal` (ends the watch).
   */
  constructor(
    transport: WatchTransport,
    request: WatchCreateRequest,
    options: { startRevision?: number; signal?: AbortSignal } = {},
  ) {
    if (transport.endpoints.length === 0) throw new TypeError("Watcher needs an endpoint");
    this.#transport = transport;
    this.#request = request;
    this.#next = options.startRevision ?? 0;
    const signal = options.signal;
    if (signal?.aborted) this.#closer.abort();
    else signal?.addEventListener("abort", () => this.close(), { once: true });
    this.#connection = this.#connect();
    this.#connection.catch(() => {});
    this.created = this.#connection.then(
      (c) => c.createdRevision,
      (e) => Promise.reject(e === CLOSED ? new DOMException("watch closed", "AbortError") : e),
    );
    this.created.catch(() => {});
  }

  /** The first revision the watch has not delivered yet (0 before `created`). */
  get nextRevision(): number {
    return this.#next;
  }

  /** Ends the watch: its stream is closed and the iteration finishes without error. */
  close(): void {
    this.#closer.abort();
  }

  /**
   * The batches, in revision order (see the class docs). A Watcher can be
   * iterated once; leaving the loop closes it.
   *
   * @throws {TypeError} when iterated a second time.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<WatchBatch, void, undefined> {
    if (this.#iterated) throw new TypeError("A Watcher can be iterated only once");
    this.#iterated = true;
    try {
      for (;;) {
        let conn: Connection;
        try {
          conn = await this.#connection;
        } catch (e) {
          if (e === CLOSED) return;
          throw e;
        }
        const openedAt = performance.now();
        try {
          for (;;) {
            const resp = await conn.next();
            if (resp === undefined) break;
            const batch = this.#accept(resp);
            if (batch !== undefined) {
              this.#failures = 0;
              yield batch;
            }
          }
        } catch (e) {
          if (this.#closer.signal.aborted) return;
          if (!retryable(e)) throw e;
        } finally {
          conn.close();
        }
        if (this.#closer.signal.aborted) return;
        if (performance.now() - openedAt >= WATCH_RETRY_MAX_MS) this.#failures = 0;
        this.#connection = this.#pause().then(() => this.#connect());
      }
    } finally {
      this.close();
    }
  }

  /** A response as a batch to deliver, or undefined when it brings nothing new. */
  #accept(resp: WatchResponse): WatchBatch | undefined {
    if (resp.canceled) throw watchCanceledError(resp);
    if (resp.created) return undefined;
    const header = resp.header;
    const events: Event[] = resp.events ?? [];
    if (events.length === 0) {
      // A progress notification: every event up to header.revision was sent.
      this.#next = Math.max(this.#next, header.revision + 1);
      return { header, revision: header.revision, events: [] };
    }
    const fresh = events[0].kv.mod_revision >= this.#next
      ? events
      : events.filter((ev) => ev.kv.mod_revision >= this.#next);
    if (fresh.length === 0) return undefined;
    this.#next = fresh[fresh.length - 1].kv.mod_revision + 1;
    return { header, revision: header.revision, events: fresh };
  }

  /** Counts a failure, moves to the next endpoint and waits as the round's backoff says. */
  async #pause(): Promise<void> {
    this.#failures++;
    this.#endpoint = (this.#endpoint + 1) % this.#transport.endpoints.length;
    const n = this.#transport.endpoints.length;
    if (this.#failures < n) return;
    const rounds = Math.min(Math.floor(this.#failures / n), 30);
    const ms = Math.min(WATCH_RETRY_MAX_MS, WATCH_RETRY_MIN_MS * 2 ** (rounds - 1));
    await sleep(ms, this.#closer.signal);
  }

  /** Connects until a stream answers `created`, the watch is closed, or a failure is final. */
  async #connect(): Promise<Connection> {
    for (;;) {
      if (this.#closer.signal.aborted) throw CLOSED;
      const endpoint = this.#transport.endpoints[this.#endpoint];
      const request: WatchCreateRequest = this.#next > 0
        ? { ...this.#request, start_revision: this.#next }
        : this.#request;
      try {
        const conn = await Connection.open(this.#transport, endpoint, request, this.#closer.signal);
        if (this.#next === 0) this.#next = conn.createdRevision + 1;
        return conn;
      } catch (e) {
        if (this.#closer.signal.aborted) throw CLOSED;
        if (!retryable(e)) throw e;
        await this.#pause();
      }
    }
  }
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** One HTTP watch stream, from its `created` answer on. */
class Connection {
  readonly endpoint: string;
  readonly #abort: AbortController;
  readonly #unlisten: () => void;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  /** Text received and not yet consumed, from `#pos` on. */
  #text = "";
  #pos = 0;
  /** Where to look for the next newline (what is before has none). */
  #scan = 0;
  /** The created response's header revision. */
  createdRevision = 0;

  private constructor(
    endpoint: string,
    abort: AbortController,
    unlisten: () => void,
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ) {
    this.endpoint = endpoint;
    this.#abort = abort;
    this.#unlisten = unlisten;
    this.#reader = reader;
  }

  /**
   * Opens a stream to `endpoint` and reads its first response.
   *
   * @throws {ConnectionError} unreachable, broken, ended or too slow (then
   *   retryable); an {@linkcode EtcdError} for an HTTP error answer
   *   (retryable when Unavailable) or a canceled watch.
   */
  static async open(
    t: WatchTransport,
    endpoint: string,
    request: WatchCreateRequest,
    closed: AbortSignal,
  ): Promise<Connection> {
    const abort = new AbortController();
    const onClose = () => abort.abort(closed.reason);
    const unlisten = () => closed.removeEventListener("abort", onClose);
    closed.addEventListener("abort", onClose, { once: true });
    const timer = setTimeout(
      () =>
        abort.abort(
          new ConnectionError(`${endpoint}: watch not created within ${t.timeout} ms`, false),
        ),
      t.timeout,
    );
    let conn: Connection | undefined;
    try {
      let res: Response | undefined;
      for (let refresh = false; res === undefined; refresh = true) {
        try {
          res = await t.fetch(endpoint + "/v3/watch", {
            method: "POST",
            headers: { "content-type": "application/json", ...(await t.headers(refresh)) },
            body: JSON.stringify(toJson("WatchRequest", { create_request: request })),
            signal: abort.signal,
          });
        } catch (e) {
          if (abort.signal.reason instanceof ConnectionError) throw abort.signal.reason;
          if (e instanceof EtcdError) throw e;
          throw new ConnectionError(`${endpoint}: ${errorChain(e)}`, isConnectFailure(e));
        }
        if (!res.ok || res.body === null) {
          const text = await res.text().catch(() => "");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const err = errorFromBody(json, res.status, text);
          // One more try with a new token after an answer a new token may cure.
          if (refresh || !RENEW_TOKEN_ERRORS.has(err.message)) throw err;
          res = undefined;
        }
      }
      conn = new Connection(endpoint, abort, unlisten, res.body!.getReader());
      const first = await conn.next();
      if (first === undefined) throw new ConnectionError(`${endpoint}: watch stream ended`, false);
      if (first.canceled) throw watchCanceledError(first);
      if (!first.created) {
        throw new EtcdError(
          `unexpected watch response before created: ${
            JSON.stringify(toJson("WatchResponse", first))
          }`,
          GrpcCode.Internal,
        );
      }
      conn.createdRevision = first.header.revision;
      return conn;
    } catch (e) {
      conn?.close();
      unlisten();
      const reason = abort.signal.reason;
      abort.abort();
      if (reason instanceof ConnectionError) throw reason;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The next whole response (fragments merged), or undefined when the
   * stream ended.
   *
   * @throws {ConnectionError} when the stream broke; an {@linkcode EtcdError}
   *   for an `{"error":…}` line or a response over MAX_WATCH_RESPONSE_BYTES.
   */
  async next(): Promise<WatchResponse | undefined> {
    let merged: WatchResponse | undefined;
    let size = 0;
    for (;;) {
      const line = await this.#line();
      if (line === undefined) return undefined;
      if (line.trim() === "") continue;
      size += line.length;
      if (size > MAX_WATCH_RESPONSE_BYTES) {
        throw Errors.MessageTooLarge(size, MAX_WATCH_RESPONSE_BYTES);
      }
      const resp = parseLine(line, this.endpoint);
      if (merged === undefined) merged = resp;
      else {
        merged.events = [...(merged.events ?? []), ...(resp.events ?? [])];
        merged.header = resp.header;
        merged.fragment = resp.fragment;
      }
      if (!merged.fragment) return merged;
    }
  }

  /** Ends the stream. */
  close(): void {
    this.#unlisten();
    this.#abort.abort();
    this.#reader.cancel().catch(() => {});
  }

  /** The next line without its newline; undefined at the end of the stream. */
  async #line(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#text.indexOf("\n", this.#scan);
      if (nl >= 0) {
        const line = this.#text.slice(this.#pos, nl);
        this.#pos = this.#scan = nl + 1;
        if (this.#pos === this.#text.length) this.#text = "", this.#pos = this.#scan = 0;
        return line;
      }
      if (this.#text.length - this.#pos > MAX_WATCH_RESPONSE_BYTES) {
        throw Errors.MessageTooLarge(this.#text.length - this.#pos, MAX_WATCH_RESPONSE_BYTES);
      }
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await this.#reader.read();
      } catch (e) {
        throw new ConnectionError(`${this.endpoint}: ${errorChain(e)}`, false);
      }
      if (r.done) return undefined;
      this.#text = this.#text.slice(this.#pos) + this.#decoder.decode(r.value, { stream: true });
      this.#scan -= this.#pos;
      this.#pos = 0;
    }
  }
}

/**
 * One line of the stream: `{"result":<WatchResponse>}` decoded with zero
 * values filled in, or `{"error":…}` (grpc-gateway v1's `{grpc_code,
 * http_code, message, http_status}` or v2's `{code, message}`) thrown.
 */
function parseLine(line: string, endpoint: string): WatchResponse {
  let json: { result?: unknown; error?: Record<string, unknown> };
  try {
    json = JSON.parse(line);
  } catch (e) {
    throw new EtcdError(
      `${endpoint}: bad watch response line: ${(e as Error).message}`,
      GrpcCode.Internal,
    );
  }
  if (json.result !== undefined) {
    const resp = withDefaults("WatchResponse", fromJson("WatchResponse", json.result));
    resp.header ??= { cluster_id: 0n, member_id: 0n, revision: 0, raft_term: 0 };
    return resp;
  }
  const e = json.error ?? {};
  const message = typeof e.message === "string" ? e.message : JSON.stringify(json);
  const code = typeof e.grpc_code === "number"
    ? e.grpc_code
    : typeof e.code === "number"
    ? e.code
    : GrpcCode.Unknown;
  const status = typeof e.http_code === "number" ? e.http_code : undefined;
  throw new EtcdError(message, code as GrpcCode, status);
}
