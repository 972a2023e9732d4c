/**
 * Mutexes and elections over a {@linkcode Session}, as clientv3/concurrency's
 * Mutex and Election, on top of etcd's Lock and Election services. Both
 * work over any {@linkcode ConcurrencyApi}: the embedded `Store` (mod.ts)
 * and the HTTP `Client` (client/mod.ts) implement it.
 *
 * A lock or election named `name` is decided by the keys under `name/`:
 * each session's key is `name/<lease ID in hex>`, attached to the
 * session's lease, and the key with the lowest create revision holds the
 * lock or leads. That create revision only grows from one holder to the
 * next, so it serves as a fencing token ({@linkcode Mutex.revision}).
 * When the session's lease ends (closed, or not renewed for a whole TTL),
 * its keys go and the next waiter takes over.
 *
 * @example
 * ```ts
 * import { Client } from "./mod.ts";
 * import { Session } from "./lease.ts";
 * import { Mutex } from "./concurrency.ts";
 * const client = new Client({ endpoints: ["http://127.0.0.1:2379"] });
 * const session = await Session.create(client, { ttl: 10 });
 * const mutex = new Mutex(client, session, "jobs/lock");
 * await mutex.lock();
 * try {
 *   await client.put("jobs/owner", "me"); // compare mutex.revision to fence writes
 * } finally {
 *   await mutex.unlock();
 *   await session.close();
 * }
 * ```
 *
 * @module
 */

import type {
  CampaignRequest,
  CampaignResponse,
  LeaderKey,
  LeaderRequest,
  LeaderResponse,
  LockRequest,
  LockResponse,
  ProclaimRequest,
  ProclaimResponse,
  RangeRequest,
  RangeResponse,
  ResignRequest,
  ResignResponse,
  ResponseHeader,
  UnlockRequest,
  UnlockResponse,
} from "../core/api/types.ts";
import { Errors } from "../core/errors.ts";
import type { Session } from "./lease.ts";

/**
 * The calls a {@linkcode Mutex} and an {@linkcode Election} make; `Store`
 * and `Client` both have them (the Client's second argument also takes
 * per-call options).
 */
export interface ConcurrencyApi {
  /** etcd Range (reads the lock key's create revision). */
  range(req: RangeRequest): Promise<RangeResponse>;
  /** etcd Lock: resolves once the lock is held; `signal` gives up the wait. */
  lock(req: LockRequest, signal?: AbortSignal): Promise<LockResponse>;
  /** etcd Unlock. */
  unlock(req: UnlockRequest): Promise<UnlockResponse>;
  /** etcd Campaign: resolves once elected; `signal` gives up (resigns). */
  campaign(req: CampaignRequest, signal?: AbortSignal): Promise<CampaignResponse>;
  /** etcd Proclaim. */
  proclaim(req: ProclaimRequest): Promise<ProclaimResponse>;
  /** etcd Leader. */
  leader(req: LeaderRequest): Promise<LeaderResponse>;
  /** etcd Observe: the leader now and at each change, until `signal` aborts. */
  observe(req: LeaderRequest, signal?: AbortSignal): AsyncIterable<LeaderResponse>;
  /** etcd Resign. */
  resign(req: ResignRequest): Promise<ResignResponse>;
}

/** Options of {@linkcode Mutex.lock} and {@linkcode Election.campaign}. */
export interface WaitOptions {
  /** Gives up the wait; the call then rejects and leaves nothing behind. */
  signal?: AbortSignal;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A string as its UTF-8 bytes; bytes pass through. */
function bytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? enc.encode(v) : v;
}

/**
 * A distributed lock named `name`, held through a session's lease
 * (clientv3/concurrency's Mutex). One Mutex is one holder: lock, then
 * unlock, then it may lock again.
 */
export class Mutex {
  /** The lock's name (its keys are under `name/`). */
  readonly name: string;
  readonly #api: ConcurrencyApi;
  readonly #session: Session;
  #key: Uint8Array | undefined;
  #header: ResponseHeader | undefined;
  #revision = 0;

  /** A mutex named `name` over `api` (a Store or a Client), held under `session`'s lease. */
  constructor(api: ConcurrencyApi, session: Session, name: string) {
    this.#api = api;
    this.#session = session;
    this.name = name;
  }

  /**
   * Resolves once this mutex holds the lock: every key under `name/`
   * created before its own is gone. Waits as long as that takes, unless
   * `signal` aborts (its key is then deleted, and the call rejects).
   * Locking again while held resolves at once (the key is reused).
   *
   * @throws {EtcdError} `mutex: session is expired` when the session's
   *   lease ends first (or its key is gone once held); `etcdserver:
   *   requested lease not found`; transport errors of the Client.
   */
  async lock(options: WaitOptions = {}): Promise<void> {
    let resp: LockResponse;
    try {
      resp = await this.#api.lock(
        { name: bytes(this.name), lease: this.#session.lease },
        options.signal,
      );
    } catch (err) {
      // A waiter that gives up leaves the queue at once (the server also
      // deletes the key once it sees the caller gone).
      if (options.signal?.aborted) {
        const key = bytes(`${this.name}/${this.#session.lease.toString(16)}`);
        await this.#api.unlock({ key }).catch(() => {});
      }
      throw err;
    }
    // The lock answer carries the key; its create revision is the fencing token.
    const got = await this.#api.range({ key: resp.key });
    const kv = got.kvs[0];
    if (kv === undefined || kv.lease !== this.#session.lease) throw Errors.SessionExpired();
    this.#key = resp.key;
    this.#header = resp.header;
    this.#revision = kv.create_revision;
  }

  /**
   * Releases the lock: deletes this mutex's key, so the next waiter gets
   * it. Nothing happens when the mutex does not hold the lock.
   */
  async unlock(): Promise<void> {
    const key = this.#key;
    if (key === undefined) return;
    await this.#api.unlock({ key });
    this.#key = undefined;
    this.#header = undefined;
    this.#revision = 0;
  }

  /** The key the lock is held by (`name/<lease hex>`), or "" when not held. */
  get key(): string {
    return this.#key === undefined ? "" : dec.decode(this.#key);
  }

  /**
   * The held key's create revision: the fencing token, greater than every
   * earlier holder's. 0 when not held.
   */
  get revision(): number {
    return this.#revision;
  }

  /** The header of the Lock answer (its revision: when the lock was found held), if held. */
  get header(): ResponseHeader | undefined {
    return this.#header;
  }

  /** Whether this mutex holds the lock (as far as it knows: its lease may have ended since). */
  get held(): boolean {
    return this.#key !== undefined;
  }
}

/**
 * A leader election named `name`, campaigned in through a session's lease
 * (clientv3/concurrency's Election). One Election is one candidate.
 */
export class Election {
  /** The election's name (its keys are under `name/`). */
  readonly name: string;
  readonly #api: ConcurrencyApi;
  readonly #session: Session;
  #leader: LeaderKey | undefined;
  #header: ResponseHeader | undefined;

  /** An election named `name` over `api` (a Store or a Client), under `session`'s lease. */
  constructor(api: ConcurrencyApi, session: Session, name: string) {
    this.#api = api;
    this.#session = session;
    this.name = name;
  }

  /**
   * Resolves once this candidate leads, with `value` as the leader's value.
   * Waits as long as that takes, unless `signal` aborts (the candidate then
   * resigns, and the call rejects).
   *
   * @throws {EtcdError} `election: not leader` when the session's lease
   *   ends first; `etcdserver: requested lease not found`; transport errors.
   */
  async campaign(value: string | Uint8Array, options: WaitOptions = {}): Promise<void> {
    const resp = await this.#api.campaign(
      { name: bytes(this.name), lease: this.#session.lease, value: bytes(value) },
      options.signal,
    );
    this.#leader = resp.leader;
    this.#header = resp.header;
  }

  /**
   * The leader's key gets `value`, as long as this candidate still leads.
   *
   * @throws {EtcdError} `election: not leader` when it does not (never
   *   elected, resigned, or its key is gone).
   */
  async proclaim(value: string | Uint8Array): Promise<void> {
    if (this.#leader === undefined) throw Errors.ElectionNotLeader();
    const resp = await this.#api.proclaim({ leader: this.#leader, value: bytes(value) });
    this.#header = resp.header;
  }

  /**
   * Steps down: deletes the leader's key if it is still the one elected.
   * Nothing happens when this candidate was not elected.
   */
  async resign(): Promise<void> {
    if (this.#leader === undefined) return;
    const resp = await this.#api.resign({ leader: this.#leader });
    this.#leader = undefined;
    this.#header = resp.header;
  }

  /**
   * The current leader's key-value, whoever it is.
   *
   * @throws {EtcdError} `election: no leader`.
   */
  leader(): Promise<LeaderResponse> {
    return this.#api.leader({ name: bytes(this.name) });
  }

  /**
   * The leader now (or once there is one), then again at each change, until
   * `signal` aborts.
   */
  observe(options: WaitOptions = {}): AsyncIterable<LeaderResponse> {
    return this.#api.observe({ name: bytes(this.name) }, options.signal);
  }

  /** This candidate's key (`name/<lease hex>`) once elected, else "". */
  get key(): string {
    return this.#leader === undefined ? "" : dec.decode(this.#leader.key);
  }

  /** This candidate's key's create revision once elected, else 0. */
  get revision(): number {
    return this.#leader?.rev ?? 0;
  }

  /** The leader key to proclaim and resign with, once elected. */
  get leaderKey(): LeaderKey | undefined {
    return this.#leader;
  }

  /** The header of the last campaign, proclamation or resignation. */
  get header(): ResponseHeader | undefined {
    return this.#header;
  }
}
