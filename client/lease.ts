/**
 * Leases kept alive from the client side, as clientv3's Lease and
 * concurrency.Session, over any {@linkcode LeaseApi}: the embedded `Store`
 * (mod.ts) and the HTTP `Client` (client/mod.ts) both implement it.
 *
 * - {@linkcode Lease.grant} grants a lease and returns a
 *   {@linkcode GrantedLease} (its `id`, `ttl`, `keepAlive`, `revoke`).
 * - {@linkcode GrantedLease.keepAlive} renews the lease at TTL/3 (clientv3's
 *   cadence: the first renewal at once, then a third of the TTL of each
 *   answer later) until its signal aborts, or ends with etcd's
 *   `etcdserver: requested lease not found` once the lease is gone.
 * - {@linkcode Session}: a lease kept alive until `close()` revokes it.
 *
 * @example
 * ```ts
 * import { Client } from "./mod.ts";
 * import { Lease } from "./lease.ts";
 * const client = new Client({ endpoints: ["http://127.0.0.1:2379"] });
 * const lease = await new Lease(client).grant(10);
 * await client.put("service/a", "10.0.0.1", { lease: lease.id });
 * const stop = new AbortController();
 * const ka = lease.keepAlive({ signal: stop.signal });
 * // … the key lives as long as this process renews the lease …
 * stop.abort();
 * await ka.done;
 * await lease.revoke();
 * ```
 *
 * @module
 */

import type {
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from "../core/api/types.ts";
import { Errors, EtcdError, GrpcCode } from "../core/errors.ts";
import { KEEPALIVE_RETRY_MS, MAX_KEEPALIVE_BUFFER } from "../core/limits.ts";

/**
 * The lease calls the helpers need; `Store` and `Client` both have them
 * (the Client's take per-call options, of which the helpers pass `signal`).
 */
export interface LeaseApi {
  /** etcd LeaseGrant. */
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  /** etcd LeaseRevoke. */
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse>;
  /** One etcd LeaseKeepAlive request; TTL 0 in the answer: no such lease. */
  leaseKeepAlive(
    req: LeaseKeepAliveRequest,
    opts?: { signal?: AbortSignal },
  ): Promise<LeaseKeepAliveResponse>;
  /** etcd LeaseTimeToLive. */
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
}

/** Time as the keep-alive loop sees it; tests pass a fake one. */
export interface Clock {
  /** Milliseconds from an arbitrary origin, never decreasing. */
  now(): number;
  /** Resolves after `ms` milliseconds, or as soon as `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The real clock: `performance.now()` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    }),
};

/** Options of {@linkcode Lease}. */
export interface LeaseOptions {
  /** The clock of keep-alives (default {@linkcode systemClock}). */
  clock?: Clock;
}

/** Options of {@linkcode GrantedLease.keepAlive}. */
export interface KeepAliveOptions {
  /** Stops the renewals; the keep-alive then ends without error. */
  signal?: AbortSignal;
}

/**
 * Whether a failed renewal is worth retrying: the endpoint could not be
 * reached or answered Unavailable, or the call timed out (clientv3 retries
 * these and halts on any other error).
 */
function transient(e: unknown): boolean {
  return e instanceof EtcdError &&
    (e.code === GrpcCode.Unavailable || e.code === GrpcCode.DeadlineExceeded);
}

/**
 * Renewals of one lease, running from its creation until its signal aborts
 * or the lease is gone. Iterating yields each renewal's answer (TTL in
 * seconds) as it arrives; the last {@linkcode MAX_KEEPALIVE_BUFFER} unread
 * ones are kept, older ones dropped. Leaving the loop does not stop the
 * renewals: only the signal does.
 *
 * Ends:
 * - the signal aborts: `done` resolves, the iteration ends without error;
 * - a renewal answers TTL 0 (the lease expired or was revoked), or no
 *   renewal succeeded for the lease's whole TTL (then it has expired on the
 *   server): `done` rejects, and the iteration throws, with
 *   `etcdserver: requested lease not found` (NotFound);
 * - a renewal fails other than transiently (say `permission denied`): that
 *   error, as `done`'s rejection and from the iteration.
 *
 * A renewal that fails transiently (an endpoint unreachable, Unavailable, a
 * timeout) is tried again every {@linkcode KEEPALIVE_RETRY_MS}.
 */
export class KeepAlive implements AsyncIterable<LeaseKeepAliveResponse> {
  /** The lease renewed. */
  readonly id: bigint;
  /** Resolves when the signal stops the renewals; rejects when the lease is lost (see above). */
  readonly done: Promise<void>;
  readonly #api: LeaseApi;
  readonly #clock: Clock;
  readonly #signal: AbortSignal;
  readonly #buffer: LeaseKeepAliveResponse[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  /** Starts renewing lease `id` at once; `ttl` (seconds, 0 if unknown) bounds the first wait. */
  constructor(api: LeaseApi, id: bigint, ttl: number, signal: AbortSignal, clock: Clock) {
    this.id = id;
    this.#api = api;
    this.#clock = clock;
    this.#signal = signal;
    this.done = this.#run(ttl).then(
      () => this.#end(undefined),
      (e) => {
        this.#end(e);
        throw e;
      },
    );
    // Reading `done` is optional: a lost lease must not be an unhandled rejection.
    this.done.catch(() => {});
  }

  #end(error: unknown): void {
    this.#ended = true;
    this.#error = error;
    this.#wake?.();
  }

  #push(resp: LeaseKeepAliveResponse): void {
    if (this.#buffer.length >= MAX_KEEPALIVE_BUFFER) this.#buffer.shift();
    this.#buffer.push(resp);
    this.#wake?.();
  }

  async #run(ttl: number): Promise<void> {
    const clock = this.#clock;
    const signal = this.#signal;
    // Until the first answer, the lease may have at most its granted TTL left.
    let deadline = ttl > 0 ? clock.now() + ttl * 1000 : Infinity;
    while (!signal.aborted) {
      let resp: LeaseKeepAliveResponse;
      try {
        resp = await this.#api.leaseKeepAlive({ ID: this.id }, { signal });
      } catch (e) {
        if (signal.aborted) return;
        if (!transient(e)) throw e;
        if (clock.now() >= deadline) throw Errors.LeaseNotFound();
        await clock.sleep(KEEPALIVE_RETRY_MS, signal);
        continue;
      }
      if (signal.aborted) return;
      if (resp.TTL <= 0) throw Errors.LeaseNotFound();
      const now = clock.now();
      deadline = now + resp.TTL * 1000;
      this.#push(resp);
      await clock.sleep((resp.TTL * 1000) / 3, signal);
    }
  }

  /** The renewals' answers as they come; see the class docs for how it ends. */
  async *[Symbol.asyncIterator](): AsyncIterator<LeaseKeepAliveResponse> {
    for (;;) {
      const next = this.#buffer.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#ended) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }
}

/**
 * A lease granted (or taken by ID): renew it with {@linkcode keepAlive},
 * end it with {@linkcode revoke}. Attach keys with put's `lease: id`.
 */
export class GrantedLease {
  /** The lease ID (a positive int64). */
  readonly id: bigint;
  /** The TTL granted, in seconds (0 when taken by ID and not yet known). */
  readonly ttl: number;
  readonly #api: LeaseApi;
  readonly #clock: Clock;
  readonly #stop = new AbortController();

  /** Use {@linkcode Lease.grant} or {@linkcode Lease.of}. */
  constructor(api: LeaseApi, id: bigint, ttl: number, clock: Clock) {
    this.#api = api;
    this.id = id;
    this.ttl = ttl;
    this.#clock = clock;
  }

  /**
   * Renews the lease at TTL/3, from now until `signal` aborts, the lease is
   * revoked through {@linkcode revoke}, or the lease is gone (see
   * {@linkcode KeepAlive}).
   */
  keepAlive(options: KeepAliveOptions = {}): KeepAlive {
    const signal = options.signal === undefined
      ? this.#stop.signal
      : AbortSignal.any([options.signal, this.#stop.signal]);
    return new KeepAlive(this.#api, this.id, this.ttl, signal, this.#clock);
  }

  /**
   * Stops this lease's keep-alives (they end without error), then revokes
   * the lease: it and every key attached to it go, in one revision.
   *
   * @throws {EtcdError} `etcdserver: requested lease not found` when it is already gone.
   */
  revoke(): Promise<LeaseRevokeResponse> {
    this.#stop.abort();
    return this.#api.leaseRevoke({ ID: this.id });
  }

  /** Seconds left (-1 once gone), the granted TTL, and with `keys` the attached keys. */
  timeToLive(options: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    return this.#api.leaseTimeToLive({ ID: this.id, ...(options.keys ? { keys: true } : {}) });
  }
}

/**
 * Grants leases over a `Store` or a `Client` (clientv3's Lease): each
 * {@linkcode GrantedLease} can be kept alive and revoked.
 */
export class Lease {
  readonly #api: LeaseApi;
  readonly #clock: Clock;

  /** Leases over `api` (a Store or a Client). */
  constructor(api: LeaseApi, options: LeaseOptions = {}) {
    this.#api = api;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Grants a lease of `ttl` seconds (the server raises it to its minimum,
   * 2 s by default), with ID `id` or one the server picks.
   *
   * @throws {EtcdError} `etcdserver: lease already exists`; `etcdserver: too large lease TTL`.
   */
  async grant(ttl: number, options: { id?: bigint } = {}): Promise<GrantedLease> {
    const req: LeaseGrantRequest = { TTL: ttl };
    if (options.id !== undefined) req.ID = options.id;
    const resp = await this.#api.leaseGrant(req);
    return new GrantedLease(this.#api, resp.ID, resp.TTL, this.#clock);
  }

  /** A lease that exists already, by ID (its TTL comes with the first renewal). */
  of(id: bigint): GrantedLease {
    return new GrantedLease(this.#api, id, 0, this.#clock);
  }
}

/** Default TTL of a {@linkcode Session}'s lease, in seconds (clientv3/concurrency's). */
export const DEFAULT_SESSION_TTL = 60;

/** Options of {@linkcode Session.create}. */
export interface SessionOptions {
  /** TTL of the session's lease in seconds (default 60). */
  ttl?: number;
  /** Use this existing lease instead of granting one. */
  lease?: bigint;
  /** The clock of the keep-alive (default {@linkcode systemClock}). */
  clock?: Clock;
}

/**
 * A lease kept alive for as long as the session lives, as clientv3's
 * concurrency.Session: keys written with `lease: session.lease` vanish
 * when the session is closed, or when this process stops renewing (it
 * died, or lost the servers for a whole TTL).
 */
export class Session {
  /** The session's lease ID. */
  readonly lease: bigint;
  /** The TTL of the lease in seconds. */
  readonly ttl: number;
  /**
   * Resolves when the session is closed or orphaned; rejects with
   * `etcdserver: requested lease not found` when the lease is lost.
   */
  readonly done: Promise<void>;
  readonly #granted: GrantedLease;
  readonly #stop: AbortController;

  private constructor(granted: GrantedLease, ttl: number) {
    this.#granted = granted;
    this.lease = granted.id;
    this.ttl = ttl;
    this.#stop = new AbortController();
    this.done = granted.keepAlive({ signal: this.#stop.signal }).done;
  }

  /**
   * Grants the session's lease (or takes `options.lease`) and starts its
   * keep-alive.
   *
   * @throws {EtcdError} the grant's errors.
   */
  static async create(api: LeaseApi, options: SessionOptions = {}): Promise<Session> {
    const ttl = options.ttl ?? DEFAULT_SESSION_TTL;
    const leases = new Lease(api, { clock: options.clock });
    const granted = options.lease !== undefined
      ? leases.of(options.lease)
      : await leases.grant(ttl);
    return new Session(granted, options.lease !== undefined ? ttl : granted.ttl);
  }

  /** Stops renewing without revoking: the lease expires after its TTL. */
  orphan(): void {
    this.#stop.abort();
  }

  /**
   * Ends the session: stops renewing and revokes the lease, deleting its
   * keys. A lease already gone is not an error.
   */
  async close(): Promise<void> {
    this.orphan();
    try {
      await this.#granted.revoke();
    } catch (e) {
      if (!(e instanceof EtcdError && e.code === GrpcCode.NotFound)) throw e;
    }
  }
}
