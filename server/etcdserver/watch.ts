/**
 * etcd's Watch service, once for every transport: a client stream's
 * requests (create, cancel, progress) go in, its responses come out. The
 * watchers live in the thread's {@linkcode WatchHub} (core/watch), which
 * the applied-change feed drives; this module normalizes requests as etcd's
 * watch server does (`v3rpc/watch.go`) and runs the progress ticker.
 *
 * @module
 */
import type {
  Event,
  WatchCreateRequest,
  WatchRequest,
  WatchResponse,
  WatchStreamHandle,
} from "../../core/api/types.ts";
import { invariant } from "../../core/invariant.ts";
import {
  WatchHub,
  type WatchSource,
  type WatchSpec,
  type WatchStream,
} from "../../core/watch/mod.ts";
import type { Credentials, ServiceContext } from "./context.ts";
import { EtcdError, grpcErrorText } from "../../core/errors.ts";
import { opPermission } from "../../core/auth/permission.ts";
import { GRPC_OVERHEAD_BYTES } from "../../core/limits.ts";

/** etcd 3.4's default progress-notify interval, in milliseconds (10 minutes). */
export const DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;

/** Options of {@linkcode WatchServer}. */
export interface WatchServerOptions {
  /**
   * Milliseconds between progress notifications to idle watchers that asked
   * for them (etcd's --experimental-watch-progress-notify-interval).
   * Default {@linkcode DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS}.
   */
  progressNotifyIntervalMs?: number;
  /** Called when this thread gets its first watcher (true) or loses its last (false). */
  onWatching?: (watching: boolean) => void;
}

/** The watch source of a member's store: the stored history in `revlog`. */
function storeSource(ctx: ServiceContext): WatchSource {
  return {
    revision: () => ctx.view().rev(),
    compactRevision: () => ctx.view().compactRev,
    changes: (from, to, max) => ctx.view().changes(from, to, max),
    previous: (key, rev) => ctx.view().previous(key, rev),
  };
}

/** etcd's Watch service of one thread. */
export class WatchServer {
  readonly #ctx: ServiceContext;
  /** The thread's watchers. */
  readonly hub: WatchHub;
  readonly #progressTimer: ReturnType<typeof setInterval>;

  /** A watch service over the member's store; feed it with {@linkcode WatchServer.notify}. */
  constructor(ctx: ServiceContext, options: WatchServerOptions = {}) {
    this.#ctx = ctx;
    this.hub = new WatchHub(storeSource(ctx), {
      schedule: (fn) => setTimeout(fn, 0),
      onWatching: options.onWatching,
    });
    const interval = options.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS;
    invariant(interval > 0, "the progress-notify interval is positive");
    this.#progressTimer = setInterval(() => this.hub.progressTick(), interval);
    Deno.unrefTimer(Number(this.#progressTimer));
  }

  /**
   * The applied-change feed: the events of every revision after the last
   * one fed up to `revision`, in order, each with its prev_kv.
   */
  notify(events: readonly Event[], revision: number): void {
    this.hub.notify(events, revision);
  }

  /** The feed skipped up to `revision`: watchers needing those revisions read them from history. */
  skip(revision: number): void {
    this.hub.skip(revision);
  }

  /**
   * Open a client stream (etcd's Watch RPC) for a caller with `creds`
   * (checked at each create request, as etcd checks the stream's token).
   */
  open(creds?: Credentials): WatchSession {
    const stream = this.hub.openStream({
      header: (revision) => this.#ctx.header(revision),
      // etcd's watch server splits at --max-request-bytes plus gRPC's
      // allowance (its `maxRequestBytes + grpcOverheadBytes`).
      maxRequestBytes: this.#ctx.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    });
    return new WatchSession(this.#ctx, stream, creds);
  }

  /** End every open stream (their transports finish) and stop the ticker. */
  close(): void {
    clearInterval(this.#progressTimer);
    this.hub.close();
  }
}

/** The stream of one Watch call: requests in, responses out. */
export class WatchSession implements WatchStreamHandle {
  readonly #ctx: ServiceContext;
  readonly #stream: WatchStream;
  readonly #creds: Credentials | undefined;

  /** Use {@linkcode WatchServer.open}. */
  constructor(ctx: ServiceContext, stream: WatchStream, creds?: Credentials) {
    this.#ctx = ctx;
    this.#stream = stream;
    this.#creds = creds;
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#stream.closed;
  }

  /**
   * Handle one client request, in order: a create answers `created` (after
   * every write this member answered is visible, so the watch starts after
   * them), a cancel answers `canceled` (unknown IDs get nothing), a progress
   * request answers with watch_id -1. An empty request is ignored, as etcd
   * ignores it. Resolves once the request is handled; while the client is
   * not reading its responses, it waits for it to (so a stream's buffer
   * stays bounded). While auth is on, a create needs READ on the watched
   * range; without it (or with an invalid token) it is answered `created`
   * and `canceled`, watch_id -1, with the refusal's gRPC error text as the
   * reason, as etcd 3.4 answers (`rpc error: code = PermissionDenied desc =
   * etcdserver: permission denied`, or the token's or user's error).
   */
  async request(req: WatchRequest): Promise<void> {
    while (this.#stream.backlogged()) await this.#stream.room();
    if (req.create_request !== undefined) {
      const spec = watchSpec(req.create_request);
      let denied: EtcdError | undefined;
      try {
        await this.#ctx.linearize();
        const info = await this.#ctx.identify(this.#creds);
        // The range as etcd checks it, after its normalization: a from-key
        // watch's "\0" end has become empty there, so only its key is checked.
        this.#ctx.authorize(
          info,
          (store, ai) => opPermission(store, ai, spec.key, spec.end, "READ"),
        );
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        denied = err;
      }
      // etcd 3.4 puts the whole gRPC error text in the reason.
      if (denied !== undefined) return this.#stream.deny(grpcErrorText(denied));
      this.#stream.create(spec);
    } else if (req.cancel_request !== undefined) {
      this.#stream.cancel(req.cancel_request.watch_id ?? 0);
    } else if (req.progress_request !== undefined) {
      this.#stream.progress();
    }
  }

  /** The next response, waiting for one; undefined once the stream has ended. */
  next(): Promise<WatchResponse | undefined> {
    return this.#stream.next();
  }

  /** The next response if one is ready now, else undefined. */
  take(): WatchResponse | undefined {
    return this.#stream.take();
  }

  /** End the stream and its watchers (the client went away). */
  close(): void {
    this.#stream.close();
  }
}

/**
 * A create request as etcd's watch server reads it: an empty key is `\0`,
 * an empty range_end means the single key and `\0` every key ≥ key.
 */
export function watchSpec(c: WatchCreateRequest): WatchSpec {
  const key = c.key.length === 0 ? new Uint8Array([0]) : c.key;
  const rangeEnd = c.range_end;
  let end: Uint8Array | undefined;
  if (rangeEnd === undefined || rangeEnd.length === 0) end = undefined;
  else if (rangeEnd.length === 1 && rangeEnd[0] === 0) end = new Uint8Array(0);
  else end = rangeEnd;
  const filters = c.filters ?? [];
  return {
    key,
    end,
    startRevision: c.start_revision ?? 0,
    watchId: c.watch_id ?? 0,
    noPut: filters.includes("NOPUT"),
    noDelete: filters.includes("NODELETE"),
    prevKv: c.prev_kv ?? false,
    progressNotify: c.progress_notify ?? false,
    fragment: c.fragment ?? false,
  };
}
