/**
 * An HTTP client for the etcd v3 JSON gateway, as served by cairn and by
 * etcd 3.4 itself (`POST /v3/kv/range` and friends, `GET /health`,
 * `GET /version`). Requests and responses have the shapes of cairn's
 * internal KV types (core/api/types.ts): keys and values are `Uint8Array`,
 * revisions and counts numbers, lease and member IDs bigints. The
 * convenience forms (`get`, `put(key, value)`, `delete`) also take keys and
 * values as strings (encoded as UTF-8).
 *
 * Failover: the client keeps a list of endpoints and sends each request to
 * the one that last answered. When an attempt fails in a way that allows a
 * retry, the call moves to the next endpoint; once every endpoint has failed
 * in the call it waits before each further retry (`CLIENT_RETRY_MIN_MS`
 * doubling up to `CLIENT_RETRY_MAX_MS`), and it gives up after
 * `CLIENT_MAX_ATTEMPTS` attempts (core/limits.ts) or at its timeout. The next
 * call starts on the endpoint after the one that failed. What allows a retry:
 * - reads (`range`, serializable or not, read-only `txn`, `status`,
 *   `health`, `version`, `leaseTimeToLive`, `leaseLeases`, `memberList`,
 *   `hash`, `hashKV`) and calls that may safely run twice (`leaseKeepAlive`,
 *   `memberUpdate`, `alarm`, `unlock`, `proclaim`, `leader`, `resign`) are
 *   retried after any transport failure (connection refused, reset, or lost
 *   mid-answer) and after any Unavailable answer (HTTP 503 or gRPC code 14);
 * - writes (`put`, `deleteRange`, `txn` with writes, `compact`,
 *   `leaseGrant`, `leaseRevoke`, `memberAdd`, `memberRemove`,
 *   `memberPromote`, `moveLeader`, `defragment`, `lock`, `campaign`) are
 *   retried only when the failure proves the request was not executed: the
 *   TCP connection was refused or could not be opened (nothing was sent), or
 *   the server answered `etcdserver: no leader`, `etcdserver: leader
 *   changed` or `etcdserver: not capable`, which etcd returns before it
 *   proposes anything. After an ambiguous failure (the connection broke after the
 *   request was sent, `etcdserver: request timed out`, `etcdserver: server
 *   stopped`, a 503 without an etcd error body, the call's timeout) the
 *   write may or may not have been applied, so the call rejects instead of
 *   risking a second application.
 * Other errors (`key is not provided`, `member not found`, …) reject at once.
 *
 * Lock and election calls (`lock`, `unlock`, `campaign`, `proclaim`,
 * `leader`, `resign`, `observe`) follow the same rules: `lock` and
 * `campaign` are writes and wait without a deadline unless given one;
 * `unlock`, `proclaim`, `leader` and `resign` may be sent twice and are
 * retried; `observe` streams from the first endpoint that answers.
 *
 * Watches (`watch`, `POST /v3/watch`) stream over one HTTP connection each
 * and are resumed on the endpoints in turn after a lost connection, from the
 * revision after the last one delivered (see client/watch.ts).
 *
 * @example
 * ```ts
 * import { Client } from "./client/mod.ts";
 * const client = new Client({ endpoints: ["http://127.0.0.1:2379"] });
 * await client.put("greeting", "hello");
 * const { kvs } = await client.get("greeting");
 * console.log(new TextDecoder().decode(kvs[0].value)); // "hello"
 * ```
 *
 * @module
 */

import { Errors, EtcdError, GrpcCode } from "../core/errors.ts";
import {
  CLIENT_MAX_ATTEMPTS,
  CLIENT_RETRY_MAX_MS,
  CLIENT_RETRY_MIN_MS,
  MAX_OBSERVE_LINE_BYTES,
  MAX_SNAPSHOT_LINE_BYTES,
} from "../core/limits.ts";
import type {
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  AlarmType,
  AuthenticateRequest,
  AuthenticateResponse,
  AuthHeaderResponse,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionRequest,
  AuthRoleRevokePermissionRequest,
  AuthRolesResponse,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserGrantRoleRequest,
  AuthUserListResponse,
  AuthUserRevokeRoleRequest,
  CampaignRequest,
  CampaignResponse,
  CompactionRequest,
  CompactionResponse,
  DefragmentResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKVResponse,
  HashResponse,
  KVService,
  LeaderRequest,
  LeaderResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  LockRequest,
  LockResponse,
  MemberAddRequest,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  ProclaimRequest,
  ProclaimResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResignRequest,
  ResignResponse,
  SnapshotResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  UnlockRequest,
  UnlockResponse,
  WatchCreateRequest,
} from "../core/api/types.ts";
import { fromJson, type MessageName, type MessageTypes, toJson } from "../core/api/codec.ts";
import {
  ConnectionError,
  errorChain,
  errorFromBody,
  isConnectFailure,
  normalizeEndpoint,
  RENEW_TOKEN_ERRORS,
  withDefaults,
} from "./http.ts";
import {
  isWatchCanceled,
  type WatchCallOptions,
  type WatchCanceledError,
  Watcher,
  type WatchTransport,
} from "./watch.ts";

export { ConnectionError, errorFromBody, EtcdError, GrpcCode, isWatchCanceled, normalizeEndpoint };
export { type WatchCallOptions, type WatchCanceledError, Watcher };
export type * from "../core/api/types.ts";

/** The default endpoint, etcd's default client URL. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:2379";
/** Default per-call timeout in milliseconds (etcdctl's `--command-timeout`). */
export const DEFAULT_TIMEOUT_MS = 5000;

/** Options of {@linkcode Client}. */
export interface ClientOptions {
  /**
   * Gateway base URLs, e.g. `http://10.0.0.1:2379`. A bare `host:port` gets
   * `http://`. Default `["http://127.0.0.1:2379"]`.
   */
  endpoints?: string[];
  /**
   * Milliseconds one call may take in total, across all endpoints it tries
   * (default 5000). On expiry the call rejects with an `EtcdError` of code
   * DeadlineExceeded and message `context deadline exceeded`.
   */
  timeout?: number;
  /** Extra HTTP headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * User name to authenticate as (etcdctl's `--user`). With a non-empty
   * `password` too, the client authenticates on its first call
   * (`/v3/auth/authenticate`) and sends the token as the `Authorization`
   * header of every request, watch streams included, as clientv3 sends
   * its `token` metadata. A server with auth disabled answers
   * `authentication is not enabled`: the client then sends no token until
   * a call fails with `etcdserver: user name is empty` (auth enabled
   * since). A call failing with `etcdserver: invalid auth token` (the
   * token expired, or another member issued it), `etcdserver: revision of
   * auth store is old` or `etcdserver: user name is empty` authenticates
   * again and is sent once more, as clientv3's retry interceptor does.
   * Without both, no authentication (clientv3's rule).
   */
  username?: string;
  /**
   * Password of `username` (etcdctl's `--password`, or `--user
   * name:password`), or a function that supplies it when the client first
   * needs it (a prompt, as etcdctl's `--user name`); it is called once.
   */
  password?: string | (() => Promise<string>);
  /** The fetch implementation (default `globalThis.fetch`); for tests and proxies. */
  fetch?: typeof fetch;
  /**
   * TLS for `https://` endpoints, as etcdctl's --cacert, --cert and --key
   * (PEM texts, not paths). Without `caCerts` the server's certificate is
   * verified against the system's roots; `cert` and `key` (both or
   * neither) are the client certificate a server with --client-cert-auth
   * requires. Ignored when `fetch` is given.
   */
  tls?: ClientTlsOptions;
}

/** TLS settings of a {@linkcode Client}: PEM texts. */
export interface ClientTlsOptions {
  /** CA certificates the server's certificate is verified against (etcdctl's --cacert). */
  caCerts?: string[];
  /** The client's certificate chain (etcdctl's --cert). */
  cert?: string;
  /** The client certificate's private key (etcdctl's --key). */
  key?: string;
}

/** Per-call options, accepted by every method as its last argument. */
export interface CallOptions {
  /** Send to this endpoint only (no failover); as given or as in `endpoints`. */
  endpoint?: string;
  /** Milliseconds for this call, overriding the client's `timeout`. */
  timeout?: number;
  /** Aborts the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A key or value: bytes, or a string sent as its UTF-8 bytes. */
export type Bytes = string | Uint8Array;

/**
 * Options of {@linkcode Client.get}: the RangeRequest fields besides `key`,
 * with `range_end` as string or bytes, plus `prefix` (every key starting
 * with `key`) and `fromKey` (every key ≥ `key`), as etcdctl's flags.
 */
export interface GetOptions extends Omit<RangeRequest, "key" | "range_end">, CallOptions {
  /** Exclusive end of the range; `"\0"` means every key ≥ key. */
  range_end?: Bytes;
  /** Every key that starts with `key` (an empty key: all keys). */
  prefix?: boolean;
  /** Every key ≥ `key` (range_end `"\0"`). */
  fromKey?: boolean;
}

/** Options of {@linkcode Client.put} in its `(key, value)` form. */
export interface PutOptions extends Omit<PutRequest, "key" | "value">, CallOptions {}

/** Options of {@linkcode Client.delete}: `range_end`, `prefix`, `fromKey`, `prev_kv`. */
export interface DeleteOptions extends CallOptions {
  /** Exclusive end of the range to delete. */
  range_end?: Bytes;
  /** Delete every key that starts with `key`. */
  prefix?: boolean;
  /** Delete every key ≥ `key`. */
  fromKey?: boolean;
  /** Return the deleted pairs in `prev_kvs`. */
  prev_kv?: boolean;
}

/** `GET /health`: `{"health":"true"}` parsed; `reason` when the server gives one. */
export interface HealthResponse {
  /** True when the member answered `"health":"true"`. */
  health: boolean;
  /** Why the member is unhealthy, when it says (etcd 3.5+ and cairn). */
  reason?: string;
}

/** `GET /version`: the etcd API versions the server speaks, plus cairn's own. */
export interface VersionResponse {
  /** The member's etcd server version, e.g. `3.4.0`. */
  etcdserver: string;
  /** The cluster's etcd version, e.g. `3.4.0`. */
  etcdcluster: string;
  /** cairn's release, when the server is cairn. */
  cairn?: string;
}

const enc = new TextEncoder();

/** A string key or value as bytes (UTF-8); bytes pass through. */
export function toBytes(v: Bytes): Uint8Array {
  return typeof v === "string" ? enc.encode(v) : v;
}

/** The range end covering every key with prefix `key` (clientv3 `GetPrefixRangeEnd`). */
export function prefixRangeEnd(key: Uint8Array): Uint8Array {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i] < 0xff) {
      const end = key.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/**
 * The key and range_end a request covers, from etcdctl-style options:
 * `prefix` (every key starting with `key`; all keys for an empty key),
 * `fromKey` (every key ≥ `key`, range_end `\0`) or an explicit `range_end`.
 */
export function applyRangeOptions(
  key: Uint8Array,
  o: { range_end?: Bytes; prefix?: boolean; fromKey?: boolean },
): { key: Uint8Array; range_end?: Uint8Array } {
  if (o.prefix) {
    if (key.length === 0) return { key: new Uint8Array([0]), range_end: new Uint8Array([0]) };
    return { key, range_end: prefixRangeEnd(key) };
  }
  if (o.fromKey) {
    return { key: key.length === 0 ? new Uint8Array([0]) : key, range_end: new Uint8Array([0]) };
  }
  return o.range_end === undefined ? { key } : { key, range_end: toBytes(o.range_end) };
}

/**
 * The per-call options of a call that also takes a bare AbortSignal, as
 * the Store's lock, campaign and observe do.
 */
function callOptions(o: AbortSignal | CallOptions | undefined): CallOptions {
  return o instanceof AbortSignal ? { signal: o } : o ?? {};
}

/** {@linkcode callOptions} for a call that waits its turn: no timeout unless one is given. */
function waitOptions(o: AbortSignal | CallOptions | undefined): CallOptions {
  const c = callOptions(o);
  return { ...c, timeout: c.timeout ?? Infinity };
}

function splitCallOptions<T extends CallOptions>(o: T): [Omit<T, keyof CallOptions>, CallOptions] {
  const { endpoint, timeout, signal, ...rest } = o;
  return [rest, { endpoint, timeout, signal }];
}

/** Whether a RequestOp list only reads (so a txn made of it may be retried). */
function readOnly(ops: readonly RequestOp[] | undefined): boolean {
  return (ops ?? []).every((op) =>
    "request_range" in op ||
    ("request_txn" in op && readOnly(op.request_txn.success) && readOnly(op.request_txn.failure))
  );
}

/**
 * The first message of a stream answer (`{"result":…}` lines): its
 * `result`, or the EtcdError of an `{"error":{…}}` frame (grpc-gateway v1's
 * `grpc_code`/`http_code`/`message`, v2's `code`/`message`).
 */
function streamResult(json: unknown): unknown {
  const frame = json as { result?: unknown; error?: Record<string, unknown> } | undefined;
  if (frame?.error !== undefined && typeof frame.error === "object") {
    const e = frame.error;
    const code = typeof e.grpc_code === "number"
      ? e.grpc_code
      : typeof e.code === "number"
      ? e.code
      : GrpcCode.Unknown;
    const status = typeof e.http_code === "number" ? e.http_code : undefined;
    throw new EtcdError(String(e.message ?? "stream failed"), code as GrpcCode, status);
  }
  if (frame?.result === undefined || typeof frame.result !== "object") {
    throw new EtcdError("unexpected stream answer: no result", GrpcCode.Unknown);
  }
  return frame.result;
}

/**
 * Unavailable answers that prove the request was not executed: etcd returns
 * them before proposing (no leader to forward to, a read index lost to a
 * leader change, a cluster version without the API). `server stopped` is not
 * among them: etcd also returns it for a proposal already made.
 */
const NOT_EXECUTED: ReadonlySet<string> = new Set([
  "etcdserver: no leader",
  "etcdserver: leader changed",
  "etcdserver: not capable",
]);

/**
 * A call of a client with credentials could not get a token: the server
 * refused Authenticate (e.g. `etcdserver: authentication failed, invalid
 * user ID or password`); its message, gRPC code and HTTP status. (An
 * unreachable server rejects with a ConnectionError, as any call.) etcdctl reports it as a failed connection
 * (exit 2), as clientv3 authenticates while it connects.
 */
export class AuthenticationError extends EtcdError {
  /** Wraps the error Authenticate failed with. */
  constructor(cause: EtcdError) {
    super(cause.message, cause.code, cause.httpStatus);
    this.name = "AuthenticationError";
  }
}

/** etcd's answer to Authenticate while auth is disabled. */
const AUTH_NOT_ENABLED = Errors.AuthNotEnabled().message;

/**
 * Milliseconds to wait before attempt `attempt` (0-based) of a call over
 * `endpoints` endpoints: none while endpoints not yet tried in the call
 * remain, then CLIENT_RETRY_MIN_MS doubling up to CLIENT_RETRY_MAX_MS.
 */
export function retryDelay(attempt: number, endpoints: number): number {
  const round = attempt - endpoints;
  if (round < 0) return 0;
  return Math.min(CLIENT_RETRY_MAX_MS, CLIENT_RETRY_MIN_MS * 2 ** Math.min(round, 30));
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A failure that may move the call to the next endpoint. */
class Retryable extends Error {
  constructor(override readonly cause: EtcdError, readonly executedMaybe: boolean) {
    super(cause.message);
  }
}

/**
 * A client of the etcd v3 JSON gateway with several endpoints and failover
 * (see the module docs for the retry rules). Every method rejects with an
 * {@linkcode EtcdError}: the server's error rebuilt from its
 * `{error, message, code}` body (message, gRPC code and HTTP status as etcd
 * sends them, e.g. `etcdserver: key is not provided`, code 3, 400), code
 * Unavailable (14) when no endpoint could be reached, or code
 * DeadlineExceeded (4, `context deadline exceeded`) on timeout.
 */
export class Client implements KVService {
  readonly #endpoints: string[];
  readonly #timeout: number;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  readonly #httpClient: Deno.HttpClient | undefined;
  readonly #username: string;
  readonly #password: string | (() => Promise<string>) | undefined;
  /**
   * The user and password once known: undefined before, null when the
   * client has none (no user, or an empty password).
   */
  #credentials: AuthenticateRequest | null | undefined;
  /**
   * The token requests carry: undefined before the first authentication,
   * null while the server has auth disabled.
   */
  #token: string | null | undefined;
  /** The Authenticate in flight, shared by the calls that wait for a token. */
  #authenticating: Promise<string | null> | undefined;
  #preferred = 0;

  /**
   * Creates a client; no connection is made until the first call.
   *
   * @param options endpoints (default `http://127.0.0.1:2379`), timeout in
   * milliseconds (default 5000), extra headers, fetch implementation, TLS.
   * @throws {TypeError} when `endpoints` is empty, or `tls` has only one of
   *   `cert` and `key`.
   * @throws {Error} Deno's error for a certificate or key it cannot read.
   */
  constructor(options: ClientOptions = {}) {
    const eps = options.endpoints ?? [DEFAULT_ENDPOINT];
    if (eps.length === 0) throw new TypeError("Client needs at least one endpoint");
    this.#endpoints = eps.map(normalizeEndpoint);
    this.#timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
    this.#headers = options.headers ?? {};
    this.#username = options.username ?? "";
    this.#password = options.password;
    if (this.#username === "" || !this.#password) this.#credentials = null;
    else if (typeof this.#password === "string") {
      this.#credentials = { name: this.#username, password: this.#password };
    }
    const tls = options.tls;
    if (options.fetch === undefined && tls !== undefined) {
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        throw new TypeError("Client TLS needs both cert and key, or neither");
      }
      const client = Deno.createHttpClient({
        caCerts: tls.caCerts,
        ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key! } : {}),
      });
      this.#httpClient = client;
      this.#fetch = (input, init) => fetch(input, { ...init, client });
    } else {
      this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    }
  }

  /** The endpoints as normalised URLs, in failover order. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** Range (`POST /v3/kv/range`) with a full RangeRequest. Retried on failover. */
  range(req: RangeRequest, opts: CallOptions = {}): Promise<RangeResponse> {
    return this.#unary("/v3/kv/range", "RangeRequest", req, "RangeResponse", true, opts);
  }

  /**
   * Reads one key, or a range with `range_end`, `prefix` or `fromKey`
   * (etcdctl `get`). Other options are RangeRequest fields
   * (`limit`, `revision`, `serializable`, `keys_only`, `count_only`,
   * `sort_order`, `sort_target`, min/max revisions).
   */
  get(key: Bytes, options: GetOptions = {}): Promise<RangeResponse> {
    const [o, call] = splitCallOptions(options);
    const { prefix, fromKey, range_end, ...fields } = o;
    const req: RangeRequest = {
      ...fields,
      ...applyRangeOptions(toBytes(key), { prefix, fromKey, range_end }),
    };
    return this.range(req, call);
  }

  /**
   * Writes a key (`POST /v3/kv/put`): either a full PutRequest, or
   * `put(key, value, options)` with string or byte key and value. Rejects
   * with `etcdserver: requested lease not found` for an unknown lease, and
   * the ignore_value/ignore_lease errors as etcd does. Not retried after an
   * ambiguous failure.
   */
  put(req: PutRequest, opts?: CallOptions): Promise<PutResponse>;
  /** Writes `key` = `value` (strings as UTF-8); options are the other PutRequest fields. */
  put(key: Bytes, value: Bytes, options?: PutOptions): Promise<PutResponse>;
  put(
    a: PutRequest | Bytes,
    b?: Bytes | CallOptions,
    c: PutOptions = {},
  ): Promise<PutResponse> {
    if (typeof a === "string" || a instanceof Uint8Array) {
      const [fields, call] = splitCallOptions(c);
      const req: PutRequest = { ...fields, key: toBytes(a), value: toBytes(b as Bytes) };
      return this.#unary("/v3/kv/put", "PutRequest", req, "PutResponse", false, call);
    }
    return this.#unary(
      "/v3/kv/put",
      "PutRequest",
      a,
      "PutResponse",
      false,
      (b as CallOptions) ?? {},
    );
  }

  /** Deletes a key or range (`POST /v3/kv/deleterange`) with a full request. */
  deleteRange(req: DeleteRangeRequest, opts: CallOptions = {}): Promise<DeleteRangeResponse> {
    return this.#unary(
      "/v3/kv/deleterange",
      "DeleteRangeRequest",
      req,
      "DeleteRangeResponse",
      false,
      opts,
    );
  }

  /** Deletes one key, or a range with `range_end`, `prefix` or `fromKey` (etcdctl `del`). */
  delete(key: Bytes, options: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const [o, call] = splitCallOptions(options);
    const req: DeleteRangeRequest = {
      ...applyRangeOptions(toBytes(key), o),
      ...(o.prev_kv ? { prev_kv: true } : {}),
    };
    return this.deleteRange(req, call);
  }

  /**
   * A transaction (`POST /v3/kv/txn`): compares, then the success or the
   * failure ops, in one revision. Retried on failover only when every op
   * (nested txns included) is a range.
   */
  txn(req: TxnRequest, opts: CallOptions = {}): Promise<TxnResponse> {
    const idempotent = readOnly(req.success) && readOnly(req.failure);
    return this.#unary("/v3/kv/txn", "TxnRequest", req, "TxnResponse", idempotent, opts);
  }

  /**
   * Compacts history below `revision` (`POST /v3/kv/compaction`); the
   * revision itself stays readable. Takes a CompactionRequest or a revision.
   * Rejects with `etcdserver: mvcc: required revision has been compacted`
   * or `... is a future revision` as etcd does.
   */
  compact(req: CompactionRequest | number, opts: CallOptions = {}): Promise<CompactionResponse> {
    const r = typeof req === "number" ? { revision: req } : req;
    return this.#unary(
      "/v3/kv/compaction",
      "CompactionRequest",
      r,
      "CompactionResponse",
      false,
      opts,
    );
  }

  /**
   * Maintenance status (`POST /v3/maintenance/status`) of the endpoint in
   * `opts.endpoint`, or of the first reachable one: version, db size in
   * bytes, leader, raft term and indexes.
   */
  status(opts: CallOptions = {}): Promise<StatusResponse> {
    return this.#unary(
      "/v3/maintenance/status",
      "StatusRequest",
      {},
      "StatusResponse",
      true,
      opts,
    );
  }

  /**
   * etcd MemberList (`POST /v3/cluster/member/list`): every member with its
   * ID, name (empty until it has started), peer and client URLs and learner
   * flag. Retried on failover.
   */
  memberList(opts: CallOptions = {}): Promise<MemberListResponse> {
    return this.#unary(
      "/v3/cluster/member/list",
      "MemberListRequest",
      {},
      "MemberListResponse",
      true,
      opts,
    );
  }

  /**
   * etcd MemberAdd (`POST /v3/cluster/member/add`): adds a member (a learner
   * with `isLearner`) with the given peer URLs; answers with the new member
   * (its ID chosen by the cluster) and the member list. Not retried after an
   * ambiguous failure.
   *
   * @throws {EtcdError} `etcdserver: given member URLs are invalid`
   *   (InvalidArgument); `etcdserver: Peer URLs already exists`
   *   (FailedPrecondition); `etcdserver: too many learner members in
   *   cluster`; `etcdserver: unhealthy cluster` (Unavailable).
   */
  memberAdd(req: MemberAddRequest, opts: CallOptions = {}): Promise<MemberAddResponse> {
    return this.#unary(
      "/v3/cluster/member/add",
      "MemberAddRequest",
      req,
      "MemberAddResponse",
      false,
      opts,
    );
  }

  /**
   * etcd MemberRemove (`POST /v3/cluster/member/remove`): removes member
   * `ID`; answers with the members left. Not retried after an ambiguous
   * failure (a second removal would answer `member not found`).
   *
   * @throws {EtcdError} `etcdserver: member not found` (NotFound);
   *   `etcdserver: re-configuration failed due to not enough started
   *   members` (FailedPrecondition).
   */
  memberRemove(
    req: MemberRemoveRequest,
    opts: CallOptions = {},
  ): Promise<MemberRemoveResponse> {
    return this.#unary(
      "/v3/cluster/member/remove",
      "MemberRemoveRequest",
      req,
      "MemberRemoveResponse",
      false,
      opts,
    );
  }

  /**
   * etcd MemberUpdate (`POST /v3/cluster/member/update`): member `ID` gets
   * the peer URLs `peerURLs`; answers with the member list. Retried on
   * failover (the same update twice leaves the same URLs).
   *
   * @throws {EtcdError} `etcdserver: member not found` (NotFound);
   *   `etcdserver: Peer URLs already exists` (FailedPrecondition).
   */
  memberUpdate(
    req: MemberUpdateRequest,
    opts: CallOptions = {},
  ): Promise<MemberUpdateResponse> {
    return this.#unary(
      "/v3/cluster/member/update",
      "MemberUpdateRequest",
      req,
      "MemberUpdateResponse",
      true,
      opts,
    );
  }

  /**
   * etcd MemberPromote (`POST /v3/cluster/member/promote`): learner `ID`
   * becomes a voting member, once it has caught up with the leader. Not
   * retried after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: can only promote a
   *   learner member which is in sync with leader`; `etcdserver: can only
   *   promote a learner member`; `etcdserver: member not found` (NotFound).
   */
  memberPromote(
    req: MemberPromoteRequest,
    opts: CallOptions = {},
  ): Promise<MemberPromoteResponse> {
    return this.#unary(
      "/v3/cluster/member/promote",
      "MemberPromoteRequest",
      req,
      "MemberPromoteResponse",
      false,
      opts,
    );
  }

  /**
   * etcd MoveLeader (`POST /v3/maintenance/transfer-leadership`): the leader
   * hands leadership to member `targetID`. Only the leader accepts it, so
   * send it with `opts.endpoint` set to the leader's endpoint. etcd 3.4
   * answers `{}` (no header). Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: not leader` from a
   *   follower; `etcdserver: bad leader transferee` for an unknown or
   *   learner target.
   */
  moveLeader(req: MoveLeaderRequest, opts: CallOptions = {}): Promise<MoveLeaderResponse> {
    return this.#unary(
      "/v3/maintenance/transfer-leadership",
      "MoveLeaderRequest",
      req,
      "MoveLeaderResponse",
      false,
      opts,
    );
  }

  /**
   * etcd Maintenance.Alarm (`POST /v3/maintenance/alarm`). `action` GET
   * lists the raised alarms of kind `alarm` ("NONE": every kind) for
   * `memberID` (0n: every member); ACTIVATE raises `alarm` for `memberID`
   * and answers it; DEACTIVATE clears it and answers it, or no alarm when
   * it was not raised. Raising or clearing twice leaves the same alarms, so
   * every action is retried on failover (as clientv3 does). The answer has
   * no header from etcd 3.4 or cairn.
   *
   * @throws {EtcdError} `etcdserver: no leader`, `etcdserver: request timed
   *   out` (Unavailable) when ACTIVATE or DEACTIVATE cannot be replicated.
   */
  alarm(req: AlarmRequest, opts: CallOptions = {}): Promise<AlarmResponse> {
    return this.#unary(
      "/v3/maintenance/alarm",
      "AlarmRequest",
      req,
      "AlarmResponse",
      true,
      opts,
    );
  }

  /**
   * Every raised alarm of every member (clientv3 `AlarmList`, etcdctl
   * `alarm list`): an Alarm GET for member 0 and kind NONE.
   */
  alarmList(opts: CallOptions = {}): Promise<AlarmResponse> {
    return this.alarm({ action: "GET", memberID: 0n, alarm: "NONE" }, opts);
  }

  /**
   * Clears alarms (clientv3 `AlarmDisarm`, etcdctl `alarm disarm`). With a
   * `memberID` or an `alarm` kind (other than 0n and "NONE"): one
   * DEACTIVATE of that alarm. With neither (the default): every raised
   * alarm is listed, then each is deactivated in turn, and the answer holds
   * the alarms cleared, in list order. `opts.timeout` bounds the whole
   * sequence, in milliseconds.
   *
   * @throws {EtcdError} the first failing request's error; alarms
   *   deactivated before it stay cleared.
   */
  async alarmDisarm(
    member: { memberID?: bigint; alarm?: AlarmType } = {},
    opts: CallOptions = {},
  ): Promise<AlarmResponse> {
    const memberID = member.memberID ?? 0n;
    const alarm = member.alarm ?? "NONE";
    if (memberID !== 0n || alarm !== "NONE") {
      return this.alarm({ action: "DEACTIVATE", memberID, alarm }, opts);
    }
    const end = performance.now() + (opts.timeout ?? this.#timeout);
    const left = (): CallOptions => ({ ...opts, timeout: Math.max(0, end - performance.now()) });
    const listed = await this.alarmList(left());
    const alarms: AlarmMember[] = [];
    for (const a of listed.alarms) {
      const r = await this.alarm(
        { action: "DEACTIVATE", memberID: a.memberID, alarm: a.alarm },
        left(),
      );
      alarms.push(...r.alarms);
    }
    return { alarms };
  }

  /**
   * etcd Maintenance.Defragment (`POST /v3/maintenance/defragment`) of one
   * member: it gives the space freed by compaction and deletes back to the
   * file system. Send it with `opts.endpoint` set to the member to
   * defragment (as clientv3 dials the endpoint given). cairn keeps serving
   * while it defragments; etcd 3.4 blocks the member meanwhile. The answer
   * has no header from etcd 3.4 or cairn. Retried only when the request
   * provably never reached a server (clientv3 does not repeat it).
   *
   * @throws {EtcdError} `etcdserver: server stopped` when the member closes
   *   meanwhile; `context deadline exceeded` when it takes longer than the
   *   call's timeout (the defragmentation then goes on on the server).
   */
  defragment(opts: CallOptions = {}): Promise<DefragmentResponse> {
    return this.#unary(
      "/v3/maintenance/defragment",
      "DefragmentRequest",
      {},
      "DefragmentResponse",
      false,
      opts,
    );
  }

  /**
   * etcd Maintenance.Hash (`POST /v3/maintenance/hash`, the path etcd
   * 3.4's gateway routes to Hash): a CRC-32 (a uint32) of the member's
   * whole store, with the revision it was taken at in the header. Only
   * comparable between members whose compactions removed the same history;
   * cairn's digest differs from etcd's. Retried on failover.
   */
  hash(opts: CallOptions = {}): Promise<HashResponse> {
    return this.#unary(
      "/v3/maintenance/hash",
      "HashRequest",
      {},
      "HashResponse",
      true,
      opts,
    );
  }

  /**
   * etcd Maintenance.HashKV (`POST /v3/maintenance/hashkv`, etcd 3.5's
   * path; etcd 3.4's gateway has no route to HashKV and answers 404): a
   * CRC-32 (a uint32) of the key space's history up to `revision` (0, the
   * default: the current revision), equal on every member that applied the
   * same log; `compact_revision` is the last compaction's (-1 before the
   * first); the header's revision the current one. Use `opts.endpoint` to
   * ask one member. cairn's digest differs from etcd's. Retried on failover.
   *
   * @throws {EtcdError} (OutOfRange) `etcdserver: mvcc: required revision
   *   is a future revision`; `etcdserver: mvcc: required revision has been
   *   compacted`.
   */
  hashKV(revision = 0, opts: CallOptions = {}): Promise<HashKVResponse> {
    return this.#unary(
      "/v3/maintenance/hashkv",
      "HashKVRequest",
      revision === 0 ? {} : { revision },
      "HashKVResponse",
      true,
      opts,
    );
  }

  /**
   * `GET /health` of one endpoint (or the first reachable). A 503
   * `{"health":"false"}` answer resolves with `health: false`.
   */
  async health(opts: CallOptions = {}): Promise<HealthResponse> {
    const body = await this.#send("/health", undefined, true, opts, true) as Record<
      string,
      unknown
    >;
    const res: HealthResponse = { health: body.health === "true" || body.health === true };
    if (typeof body.reason === "string") res.reason = body.reason;
    return res;
  }

  /** `GET /version`: `{etcdserver, etcdcluster}` (and `cairn` from a cairn server). */
  async version(opts: CallOptions = {}): Promise<VersionResponse> {
    const body = await this.#send("/version", undefined, true, opts, false) as Record<
      string,
      string
    >;
    const res: VersionResponse = { etcdserver: body.etcdserver, etcdcluster: body.etcdcluster };
    if (typeof body.cairn === "string") res.cairn = body.cairn;
    return res;
  }

  /**
   * Watches a key, a prefix (`prefix`), every key ≥ key (`fromKey`) or
   * [key, `range_end`) over `POST /v3/watch`, as etcd's Watch: events come
   * in revision order, each once, all events of a revision in one batch.
   * Options: `startRevision` (first revision delivered, inclusive; default
   * the next one), `prevKv` (each event's previous key-value), `filters`
   * (`NOPUT`, `NODELETE`), `progressNotify` (an empty batch after each idle
   * interval: 10 minutes on etcd 3.4), `signal` (ends the iteration
   * without error), `endpoint` (this endpoint only), `timeout` (milliseconds
   * each connection attempt may take until `created`, default the client's).
   *
   * The watch starts at once; `created` on the returned {@linkcode Watcher}
   * resolves when the server has answered. A lost stream is resumed on the
   * endpoints in turn with a bounded backoff, from the revision after the
   * last one delivered, so the iteration sees no duplicate and no gap (see
   * {@linkcode Watcher}).
   *
   * @throws {WatchCanceledError} from the iteration when the server cancels
   *   the watch, e.g. `etcdserver: mvcc: required revision has been
   *   compacted` (code 11) with `compactRevision` set, when the start or
   *   resume revision is compacted.
   * @throws {EtcdError} from the iteration for an HTTP error answer other
   *   than Unavailable (which is retried).
   *
   * @example
   * ```ts
   * const watcher = client.watch("jobs/", { prefix: true, prevKv: true });
   * await watcher.created;
   * for await (const { events } of watcher) {
   *   for (const ev of events) console.log(ev.type, ev.kv.mod_revision);
   * }
   * ```
   */
  watch(key: Bytes, options: WatchCallOptions = {}): Watcher {
    const request: WatchCreateRequest = applyRangeOptions(toBytes(key), options);
    if (options.prevKv) request.prev_kv = true;
    if (options.progressNotify) request.progress_notify = true;
    if (options.filters !== undefined && options.filters.length > 0) {
      request.filters = [...options.filters];
    }
    const endpoints = options.endpoint !== undefined
      ? [normalizeEndpoint(options.endpoint)]
      : this.#endpoints.map((_, i) =>
        this.#endpoints[(this.#preferred + i) % this.#endpoints.length]
      );
    const transport: WatchTransport = {
      fetch: this.#fetch,
      headers: (refresh) => this.#requestHeaders(refresh, options.timeout),
      endpoints,
      timeout: options.timeout ?? this.#timeout,
    };
    return new Watcher(transport, request, {
      startRevision: options.startRevision,
      signal: options.signal,
    });
  }

  /**
   * etcd LeaseGrant (`POST /v3/lease/grant`): a lease of `TTL` seconds
   * (raised to the server's minimum, 2 s by default) with ID `ID`, or one
   * the server picks when `ID` is 0 or absent. Not retried after an
   * ambiguous failure: the lease may have been granted (a server-chosen ID
   * would then be lost, a chosen one would answer `lease already exists`).
   *
   * @throws {EtcdError} `etcdserver: lease already exists` (FailedPrecondition);
   *   `etcdserver: too large lease TTL` (OutOfRange).
   */
  leaseGrant(req: LeaseGrantRequest, opts: CallOptions = {}): Promise<LeaseGrantResponse> {
    return this.#unary(
      "/v3/lease/grant",
      "LeaseGrantRequest",
      req,
      "LeaseGrantResponse",
      false,
      opts,
    );
  }

  /**
   * etcd LeaseRevoke (`POST /v3/lease/revoke`): the lease and every key
   * attached to it go, in one revision. Not retried after an ambiguous
   * failure (a second revoke would answer not found).
   *
   * @throws {EtcdError} `etcdserver: requested lease not found` (NotFound).
   */
  leaseRevoke(req: LeaseRevokeRequest, opts: CallOptions = {}): Promise<LeaseRevokeResponse> {
    return this.#unary(
      "/v3/lease/revoke",
      "LeaseRevokeRequest",
      req,
      "LeaseRevokeResponse",
      false,
      opts,
    );
  }

  /**
   * One etcd LeaseKeepAlive request (`POST /v3/lease/keepalive`, a stream
   * of one message): the lease expires its full TTL from now. The answer
   * carries that TTL in seconds, or TTL 0 when the lease does not exist
   * (etcd's gateway omits it). Retried on failover. For renewal at TTL/3
   * until told to stop, see `Lease` in client/lease.ts.
   */
  async leaseKeepAlive(
    req: LeaseKeepAliveRequest,
    opts: CallOptions = {},
  ): Promise<LeaseKeepAliveResponse> {
    const body = JSON.stringify(toJson("LeaseKeepAliveRequest", req));
    const json = await this.#send("/v3/lease/keepalive", body, true, opts, false);
    return withDefaults(
      "LeaseKeepAliveResponse",
      fromJson("LeaseKeepAliveResponse", streamResult(json)),
    );
  }

  /**
   * etcd LeaseTimeToLive (`POST /v3/lease/timetolive`): whole seconds left
   * (-1 when the lease does not exist), the granted TTL, and with `keys`
   * the attached keys. Retried on failover.
   */
  leaseTimeToLive(
    req: LeaseTimeToLiveRequest,
    opts: CallOptions = {},
  ): Promise<LeaseTimeToLiveResponse> {
    return this.#unary(
      "/v3/lease/timetolive",
      "LeaseTimeToLiveRequest",
      req,
      "LeaseTimeToLiveResponse",
      true,
      opts,
    );
  }

  /** etcd LeaseLeases (`POST /v3/lease/leases`): every lease's ID. Retried on failover. */
  leaseLeases(opts: CallOptions = {}): Promise<LeaseLeasesResponse> {
    return this.#unary(
      "/v3/lease/leases",
      "LeaseLeasesRequest",
      {},
      "LeaseLeasesResponse",
      true,
      opts,
    );
  }

  /**
   * etcd Lock (`POST /v3/lock/lock`): resolves once lock `name` is held,
   * with the key it is held by (`name/<lease hex>`, attached to `lease`; 0
   * grants a 60 s lease nobody keeps alive) and the header of the read that
   * found it the oldest. Waits as long as it takes (as etcdctl and clientv3
   * do): no timeout unless `timeout` is given. Takes an AbortSignal or
   * per-call options as its second argument; an abort gives up the wait
   * (the server deletes the key). Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (gRPC Unknown, as etcd) `etcdserver: requested lease
   *   not found`; `mutex: session is expired` when the lease ends first.
   */
  lock(req: LockRequest, opts?: AbortSignal | CallOptions): Promise<LockResponse> {
    return this.#unary(
      "/v3/lock/lock",
      "LockRequest",
      req,
      "LockResponse",
      false,
      waitOptions(opts),
    );
  }

  /**
   * etcd Unlock (`POST /v3/lock/unlock`): deletes `key`, the key Lock
   * answered with, so the next waiter gets the lock. Retried on failover
   * (deleting twice is harmless).
   *
   * @throws {EtcdError} `etcdserver: key is not provided` for an empty key.
   */
  unlock(req: UnlockRequest, opts: CallOptions = {}): Promise<UnlockResponse> {
    return this.#unary("/v3/lock/unlock", "UnlockRequest", req, "UnlockResponse", true, opts);
  }

  /**
   * etcd Campaign (`POST /v3/election/campaign`): resolves once elected in
   * election `name` with `value`, with `leader{name, key, rev, lease}` to
   * proclaim and resign with (`rev`: the key's create revision). No timeout
   * unless `timeout` is given; an AbortSignal (or `signal` in the options)
   * gives up (the server resigns). Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (gRPC Unknown) `etcdserver: requested lease not
   *   found`; `election: not leader` when the lease ends first.
   */
  campaign(req: CampaignRequest, opts?: AbortSignal | CallOptions): Promise<CampaignResponse> {
    return this.#unary(
      "/v3/election/campaign",
      "CampaignRequest",
      req,
      "CampaignResponse",
      false,
      waitOptions(opts),
    );
  }

  /**
   * etcd Proclaim (`POST /v3/election/proclaim`): the leader's key gets
   * `value` while it is still the key elected. Retried on failover (the
   * same proclamation twice leaves the same value).
   *
   * @throws {EtcdError} `election: not leader`; `"leader" field must be provided`.
   */
  proclaim(req: ProclaimRequest, opts: CallOptions = {}): Promise<ProclaimResponse> {
    return this.#unary(
      "/v3/election/proclaim",
      "ProclaimRequest",
      req,
      "ProclaimResponse",
      true,
      opts,
    );
  }

  /**
   * etcd Leader (`POST /v3/election/leader`): the leader's key-value.
   * Retried on failover.
   *
   * @throws {EtcdError} `election: no leader`.
   */
  leader(req: LeaderRequest, opts: CallOptions = {}): Promise<LeaderResponse> {
    return this.#unary("/v3/election/leader", "LeaderRequest", req, "LeaderResponse", true, opts);
  }

  /**
   * etcd Resign (`POST /v3/election/resign`): deletes the leader's key if
   * it is still the one elected. Retried on failover (it compares the
   * key's create revision, so twice is once).
   *
   * @throws {EtcdError} `"leader" field must be provided`.
   */
  resign(req: ResignRequest, opts: CallOptions = {}): Promise<ResignResponse> {
    return this.#unary("/v3/election/resign", "ResignRequest", req, "ResignResponse", true, opts);
  }

  /**
   * etcd Authenticate (`POST /v3/auth/authenticate`): a token for user
   * `name` (etcd's `simple` token, or a JWT), to be sent as the
   * `Authorization` header. Sent without a token. Retried on failover.
   * A client made with `username` and `password` calls it itself.
   *
   * @throws {EtcdError} `etcdserver: authentication failed, invalid user ID
   *   or password` (InvalidArgument); `etcdserver: authentication is not
   *   enabled` (FailedPrecondition).
   */
  authenticate(req: AuthenticateRequest, opts: CallOptions = {}): Promise<AuthenticateResponse> {
    return this.#unary(
      "/v3/auth/authenticate",
      "AuthenticateRequest",
      req,
      "AuthenticateResponse",
      true,
      opts,
      false,
    );
  }

  /**
   * etcd AuthEnable (`POST /v3/auth/enable`): every later request needs a
   * token (or a client certificate). Retried on failover (enabling twice
   * leaves auth on).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: root user does
   *   not exist`; `etcdserver: root user does not have root role`.
   */
  authEnable(opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/enable",
      "AuthEnableRequest",
      {},
      "AuthEnableResponse",
      true,
      opts,
    );
  }

  /**
   * etcd AuthDisable (`POST /v3/auth/disable`): requests need no token
   * any more. Only the root role may call it while auth is on. Retried on
   * failover.
   *
   * @throws {EtcdError} `etcdserver: permission denied` for a user without
   *   the root role; `etcdserver: user name is empty` without credentials.
   */
  authDisable(opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/disable",
      "AuthDisableRequest",
      {},
      "AuthDisableResponse",
      true,
      opts,
    );
  }

  /**
   * etcd UserAdd (`POST /v3/auth/user/add`): a user `name` with `password`
   * (hashed by the server), or with `options.no_password` one that cannot
   * authenticate with a password. Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name already
   *   exists`; (InvalidArgument) `etcdserver: user name is empty`.
   */
  userAdd(req: AuthUserAddRequest, opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/user/add",
      "AuthUserAddRequest",
      req,
      "AuthUserAddResponse",
      false,
      opts,
    );
  }

  /**
   * etcd UserGet (`POST /v3/auth/user/get`): the roles of user `name`,
   * sorted. Retried on failover.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name not found`.
   */
  userGet(name: string, opts: CallOptions = {}): Promise<AuthRolesResponse> {
    return this.#unary(
      "/v3/auth/user/get",
      "AuthUserGetRequest",
      { name },
      "AuthUserGetResponse",
      true,
      opts,
    );
  }

  /** etcd UserList (`POST /v3/auth/user/list`): every user's name, sorted. Retried on failover. */
  userList(opts: CallOptions = {}): Promise<AuthUserListResponse> {
    return this.#unary(
      "/v3/auth/user/list",
      "AuthUserListRequest",
      {},
      "AuthUserListResponse",
      true,
      opts,
    );
  }

  /**
   * etcd UserDelete (`POST /v3/auth/user/delete`). Not retried after an
   * ambiguous failure (a second delete would answer not found).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name not
   *   found`; (InvalidArgument) `etcdserver: invalid auth management` for
   *   root while auth is on.
   */
  userDelete(name: string, opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/user/delete",
      "AuthUserDeleteRequest",
      { name },
      "AuthUserDeleteResponse",
      false,
      opts,
    );
  }

  /**
   * etcd UserChangePassword (`POST /v3/auth/user/changepw`): user `name`
   * gets `password`; tokens issued before stay valid until the auth
   * store's revision check refuses them. Retried on failover (the same
   * password twice is once).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name not found`.
   */
  userChangePassword(
    req: AuthUserChangePasswordRequest,
    opts: CallOptions = {},
  ): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/user/changepw",
      "AuthUserChangePasswordRequest",
      req,
      "AuthUserChangePasswordResponse",
      true,
      opts,
    );
  }

  /**
   * etcd UserGrantRole (`POST /v3/auth/user/grant`): user `user` gets role
   * `role`. Retried on failover (granting twice is once).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name not
   *   found`; `etcdserver: role name not found`.
   */
  userGrantRole(
    req: AuthUserGrantRoleRequest,
    opts: CallOptions = {},
  ): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/user/grant",
      "AuthUserGrantRoleRequest",
      req,
      "AuthUserGrantRoleResponse",
      true,
      opts,
    );
  }

  /**
   * etcd UserRevokeRole (`POST /v3/auth/user/revoke`): user `name` loses
   * role `role`. Not retried after an ambiguous failure (a second revoke
   * would answer not granted).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: user name not
   *   found`; `etcdserver: role is not granted to the user`;
   *   (InvalidArgument) `etcdserver: invalid auth management` for root's
   *   root role while auth is on.
   */
  userRevokeRole(
    req: AuthUserRevokeRoleRequest,
    opts: CallOptions = {},
  ): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/user/revoke",
      "AuthUserRevokeRoleRequest",
      req,
      "AuthUserRevokeRoleResponse",
      false,
      opts,
    );
  }

  /**
   * etcd RoleAdd (`POST /v3/auth/role/add`): a role `name` without
   * permissions. Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: role name already
   *   exists`; (InvalidArgument) `etcdserver: role name is empty`.
   */
  roleAdd(name: string, opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/role/add",
      "AuthRoleAddRequest",
      { name },
      "AuthRoleAddResponse",
      false,
      opts,
    );
  }

  /**
   * etcd RoleGet (`POST /v3/auth/role/get`): the permissions of `role`, in
   * key order. Retried on failover.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: role name not found`.
   */
  roleGet(role: string, opts: CallOptions = {}): Promise<AuthRoleGetResponse> {
    return this.#unary(
      "/v3/auth/role/get",
      "AuthRoleGetRequest",
      { role },
      "AuthRoleGetResponse",
      true,
      opts,
    );
  }

  /** etcd RoleList (`POST /v3/auth/role/list`): every role's name, sorted. Retried on failover. */
  roleList(opts: CallOptions = {}): Promise<AuthRolesResponse> {
    return this.#unary(
      "/v3/auth/role/list",
      "AuthRoleListRequest",
      {},
      "AuthRoleListResponse",
      true,
      opts,
    );
  }

  /**
   * etcd RoleDelete (`POST /v3/auth/role/delete`): the role goes, and every
   * user loses it. Not retried after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: role name not
   *   found`; (InvalidArgument) `etcdserver: invalid auth management` for
   *   root while auth is on.
   */
  roleDelete(role: string, opts: CallOptions = {}): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/role/delete",
      "AuthRoleDeleteRequest",
      { role },
      "AuthRoleDeleteResponse",
      false,
      opts,
    );
  }

  /**
   * etcd RoleGrantPermission (`POST /v3/auth/role/grant`): role `name` may
   * READ, WRITE or READWRITE `perm.key` (range_end empty), the range
   * [key, range_end), or every key from `key` (range_end `"\0"`); a
   * permission on the same key and range_end gets the new type. Retried on
   * failover (granting twice is once).
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: role name not found`.
   */
  roleGrantPermission(
    req: AuthRoleGrantPermissionRequest,
    opts: CallOptions = {},
  ): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/role/grant",
      "AuthRoleGrantPermissionRequest",
      req,
      "AuthRoleGrantPermissionResponse",
      true,
      opts,
    );
  }

  /**
   * etcd RoleRevokePermission (`POST /v3/auth/role/revoke`): role `role`
   * loses its permission on exactly `key` and `range_end`. Not retried
   * after an ambiguous failure.
   *
   * @throws {EtcdError} (FailedPrecondition) `etcdserver: role name not
   *   found`; `etcdserver: permission is not granted to the role`.
   */
  roleRevokePermission(
    req: AuthRoleRevokePermissionRequest,
    opts: CallOptions = {},
  ): Promise<AuthHeaderResponse> {
    return this.#unary(
      "/v3/auth/role/revoke",
      "AuthRoleRevokePermissionRequest",
      req,
      "AuthRoleRevokePermissionResponse",
      false,
      opts,
    );
  }

  /**
   * etcd Observe (`POST /v3/election/observe`, a stream): the leader of
   * election `name` now (or once there is one), then again at each change
   * (a proclamation, a new leader). The iteration ends without error when
   * the signal aborts or the server ends the stream (as etcd's Observe,
   * e.g. after a compaction); it is not resumed after a lost connection.
   * `timeout` bounds only the connection (default the client's).
   *
   * @throws {EtcdError} from the iteration: an HTTP error answer; an
   *   `{"error":…}` line; Unavailable when no endpoint could be reached or
   *   the connection broke; a line over MAX_OBSERVE_LINE_BYTES.
   */
  async *observe(
    req: LeaderRequest,
    opts?: AbortSignal | CallOptions,
  ): AsyncGenerator<LeaderResponse, void, undefined> {
    const o = callOptions(opts);
    const abort = new AbortController();
    const stop = () => abort.abort();
    o.signal?.addEventListener("abort", stop);
    try {
      if (o.signal?.aborted) return;
      const body = JSON.stringify(toJson("LeaderRequest", req));
      let res: Response;
      try {
        res = await this.#open("/v3/election/observe", body, o, abort.signal);
      } catch (e) {
        if (abort.signal.aborted) return;
        throw e;
      }
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      try {
        for (;;) {
          let r: ReadableStreamReadResult<string>;
          try {
            r = await reader.read();
          } catch (e) {
            if (abort.signal.aborted) return;
            throw new ConnectionError(`observe: ${errorChain(e)}`, false);
          }
          if (r.done) return;
          text += r.value;
          for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
            const line = text.slice(0, nl);
            text = text.slice(nl + 1);
            if (line.trim() === "") continue;
            const result = streamResult(JSON.parse(line));
            yield withDefaults("LeaderResponse", fromJson("LeaderResponse", result));
          }
          if (text.length > MAX_OBSERVE_LINE_BYTES) {
            throw Errors.MessageTooLarge(text.length, MAX_OBSERVE_LINE_BYTES);
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } finally {
      o.signal?.removeEventListener("abort", stop);
      abort.abort();
    }
  }

  /**
   * etcd Maintenance.Snapshot (`POST /v3/maintenance/snapshot`, a stream):
   * the member's consistent copy of its store, as the messages it sends:
   * chunks of the database file (`blob`) with the bytes still to come
   * (`remaining_bytes`), then one message whose `blob` is the SHA-256 (32
   * bytes) of everything before it. Ask one member (`opts.endpoint`, or the
   * first endpoint that answers): a snapshot is that member's state.
   * `timeout` bounds only the connection (default the client's); the
   * transfer runs until it ends or the signal aborts (then the iteration
   * ends without error). Not resumed after a lost connection.
   *
   * @throws {EtcdError} from the iteration: an HTTP error answer or an
   *   `{"error":…}` frame (e.g. Canceled); Unavailable when no endpoint
   *   could be reached or the connection broke; ResourceExhausted for a
   *   line over MAX_SNAPSHOT_LINE_BYTES.
   */
  async *snapshot(
    opts?: AbortSignal | CallOptions,
  ): AsyncGenerator<SnapshotResponse, void, undefined> {
    const o = callOptions(opts);
    const abort = new AbortController();
    const stop = () => abort.abort();
    o.signal?.addEventListener("abort", stop);
    try {
      if (o.signal?.aborted) return;
      let res: Response;
      try {
        res = await this.#open("/v3/maintenance/snapshot", "{}", o, abort.signal);
      } catch (e) {
        if (abort.signal.aborted) return;
        throw e;
      }
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      try {
        for (;;) {
          let r: ReadableStreamReadResult<string>;
          try {
            r = await reader.read();
          } catch (e) {
            if (abort.signal.aborted) return;
            throw new ConnectionError(`snapshot: ${errorChain(e)}`, false);
          }
          if (r.done) {
            // A frame without its newline (an error frame) ends the stream.
            if (text.trim() !== "") streamResult(JSON.parse(text));
            return;
          }
          text += r.value;
          for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
            const line = text.slice(0, nl);
            text = text.slice(nl + 1);
            if (line.trim() === "") continue;
            const result = streamResult(JSON.parse(line));
            yield withDefaults("SnapshotResponse", fromJson("SnapshotResponse", result));
          }
          if (text.length > MAX_SNAPSHOT_LINE_BYTES) {
            throw Errors.MessageTooLarge(text.length, MAX_SNAPSHOT_LINE_BYTES);
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } finally {
      o.signal?.removeEventListener("abort", stop);
      abort.abort();
    }
  }

  /**
   * Opens a streaming POST on the first endpoint that answers, in failover
   * order (or `opts.endpoint` only); the connection must be made within
   * the call's timeout. `signal` stays with the response body. With
   * credentials, the token goes along, renewed once on an auth error.
   */
  async #open(
    path: string,
    body: string,
    opts: CallOptions,
    signal: AbortSignal,
  ): Promise<Response> {
    const token = await this.#tokenFor(opts.timeout);
    try {
      return await this.#openWith(token, path, body, opts, signal);
    } catch (e) {
      if (!this.#renewsToken(e)) throw e;
      const fresh = await this.#reauthenticate(token, opts.timeout);
      return await this.#openWith(fresh, path, body, opts, signal);
    }
  }

  async #openWith(
    token: string | null,
    path: string,
    body: string,
    opts: CallOptions,
    signal: AbortSignal,
  ): Promise<Response> {
    const order = opts.endpoint !== undefined
      ? [normalizeEndpoint(opts.endpoint)]
      : this.#endpoints.map((_, i) =>
        this.#endpoints[(this.#preferred + i) % this.#endpoints.length]
      );
    let last: EtcdError | undefined;
    for (const ep of order) {
      const connecting = new AbortController();
      const timer = setTimeout(() => connecting.abort(), opts.timeout ?? this.#timeout);
      let res: Response;
      try {
        res = await this.#fetch(ep + path, {
          method: "POST",
          headers: { "content-type": "application/json", ...this.#authHeaders(token) },
          body,
          signal: AbortSignal.any([signal, connecting.signal]),
        });
      } catch (e) {
        if (signal.aborted) throw e;
        if (connecting.signal.aborted) {
          throw new EtcdError("context deadline exceeded", GrpcCode.DeadlineExceeded);
        }
        last = new ConnectionError(`${ep}: ${errorChain(e)}`, isConnectFailure(e));
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (res.ok && res.body !== null) return res;
      const text = await res.text().catch(() => "");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const err = errorFromBody(json, res.status, text);
      if (res.status !== 503) throw err;
      last = err;
    }
    throw last ?? new EtcdError("no endpoint available", GrpcCode.Unavailable);
  }

  /**
   * Release the client's connections when it has TLS settings of its own;
   * otherwise nothing (connections belong to fetch's pool).
   */
  close(): void {
    this.#httpClient?.close();
  }

  /** The client's headers plus `Authorization: <token>` when there is a token. */
  #authHeaders(token: string | null): Record<string, string> {
    return token === null ? this.#headers : { ...this.#headers, authorization: token };
  }

  /**
   * The headers of a watch connection: the token (authenticating first when
   * there is none, or again when `refresh`).
   */
  async #requestHeaders(refresh: boolean, timeout?: number): Promise<Record<string, string>> {
    const token = await this.#tokenFor(timeout);
    if (!refresh || !this.#credentials) return this.#authHeaders(token);
    return this.#authHeaders(await this.#reauthenticate(token, timeout));
  }

  /** Whether `e` is an answer that a new token may cure (clientv3's `shouldRefreshToken`). */
  #renewsToken(e: unknown): boolean {
    return !!this.#credentials && e instanceof EtcdError && !(e instanceof AuthenticationError) &&
      RENEW_TOKEN_ERRORS.has(e.message);
  }

  /** The token for the next request, authenticating first when there is none yet. */
  async #tokenFor(timeout: number | undefined): Promise<string | null> {
    if (this.#credentials === null) return null;
    if (this.#token !== undefined) return this.#token;
    return await this.#reauthenticate(undefined, timeout);
  }

  /** The user and password, asking the password function once; null without. */
  async #resolveCredentials(): Promise<AuthenticateRequest | null> {
    if (this.#credentials !== undefined) return this.#credentials;
    const password = await (this.#password as () => Promise<string>)();
    this.#credentials ??= password === "" ? null : { name: this.#username, password };
    return this.#credentials;
  }

  /**
   * Authenticates again, unless a call has already replaced the token
   * `stale` since; calls that wait for a token share one Authenticate. An
   * `authentication is not enabled` answer leaves the client without a
   * token (null).
   */
  #reauthenticate(stale: string | null | undefined, timeout?: number): Promise<string | null> {
    if (stale !== undefined && this.#token !== stale && this.#token !== undefined) {
      return Promise.resolve(this.#token);
    }
    if (this.#authenticating === undefined) {
      this.#authenticating = this.#resolveCredentials()
        .then((creds) => creds === null ? null : this.authenticate(creds, { timeout }))
        .then(
          (r) => (this.#token = r === null ? null : r.token),
          (e) => {
            if (e instanceof EtcdError && e.message === AUTH_NOT_ENABLED) return this.#token = null;
            const answered = e instanceof EtcdError && !(e instanceof ConnectionError) &&
              !(e instanceof AuthenticationError);
            throw answered ? new AuthenticationError(e) : e;
          },
        )
        .finally(() => (this.#authenticating = undefined));
    }
    return this.#authenticating;
  }

  async #unary<Q extends MessageName, R extends MessageName>(
    path: string,
    reqType: Q,
    req: MessageTypes[Q],
    resType: R,
    idempotent: boolean,
    opts: CallOptions,
    withToken = true,
  ): Promise<MessageTypes[R]> {
    const body = JSON.stringify(toJson(reqType, req));
    const json = await this.#send(path, body, idempotent, opts, false, withToken);
    return withDefaults(resType, fromJson(resType, json));
  }

  /**
   * Sends one request with failover. `body` undefined means GET (sent
   * without a token). With `anyStatus`, a JSON answer of any HTTP status is
   * returned (health). With credentials and `withToken`, the request
   * carries the token and is sent once more with a new one after an answer
   * a new token may cure.
   */
  async #send(
    path: string,
    body: string | undefined,
    idempotent: boolean,
    opts: CallOptions,
    anyStatus: boolean,
    withToken = true,
  ): Promise<unknown> {
    if (!withToken || body === undefined || this.#credentials === null) {
      return await this.#sendWith(null, path, body, idempotent, opts, anyStatus);
    }
    const token = await this.#tokenFor(opts.timeout);
    try {
      return await this.#sendWith(token, path, body, idempotent, opts, anyStatus);
    } catch (e) {
      if (!this.#renewsToken(e)) throw e;
      const fresh = await this.#reauthenticate(token, opts.timeout);
      return await this.#sendWith(fresh, path, body, idempotent, opts, anyStatus);
    }
  }

  async #sendWith(
    token: string | null,
    path: string,
    body: string | undefined,
    idempotent: boolean,
    opts: CallOptions,
    anyStatus: boolean,
  ): Promise<unknown> {
    const ms = opts.timeout ?? this.#timeout;
    // Lock and Campaign wait without a deadline unless one is asked for.
    const deadline = Number.isFinite(ms) ? AbortSignal.timeout(ms) : new AbortController().signal;
    const signal = opts.signal ? AbortSignal.any([deadline, opts.signal]) : deadline;
    const order = opts.endpoint !== undefined
      ? [normalizeEndpoint(opts.endpoint)]
      : this.#endpoints.map((_, i) =>
        this.#endpoints[(this.#preferred + i) % this.#endpoints.length]
      );
    const stopped = () => {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (deadline.aborted) {
        throw new EtcdError("context deadline exceeded", GrpcCode.DeadlineExceeded);
      }
    };
    const headers = this.#authHeaders(token);
    let last: EtcdError | undefined;
    for (let attempt = 0; attempt < CLIENT_MAX_ATTEMPTS; attempt++) {
      await pause(retryDelay(attempt, order.length), signal);
      stopped();
      const ep = order[attempt % order.length];
      const idx = this.#endpoints.indexOf(ep);
      try {
        const json = await this.#attempt(ep, path, body, headers, signal, anyStatus);
        if (idx >= 0) this.#preferred = idx;
        return json;
      } catch (e) {
        stopped();
        if (!(e instanceof Retryable)) throw e;
        // The next call starts past the endpoint that failed.
        if (idx >= 0) this.#preferred = (idx + 1) % this.#endpoints.length;
        if (e.executedMaybe && !idempotent) throw e.cause;
        last = e.cause;
      }
    }
    throw last ?? new EtcdError("no endpoint available", GrpcCode.Unavailable);
  }

  async #attempt(
    ep: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal,
    anyStatus: boolean,
  ): Promise<unknown> {
    let res: Response;
    try {
      res = await this.#fetch(ep + path, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        body,
        signal,
      });
    } catch (e) {
      const notExecuted = isConnectFailure(e);
      const cause = new ConnectionError(`${ep}: ${errorChain(e)}`, notExecuted);
      throw new Retryable(cause, !notExecuted);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      const cause = new ConnectionError(`${ep}: ${(e as Error).message}`, false);
      throw new Retryable(cause, true);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok || (anyStatus && json !== undefined && typeof json === "object")) return json;
    const err = errorFromBody(json, res.status, text);
    if (res.status === 503 || err.code === GrpcCode.Unavailable) {
      throw new Retryable(err, !NOT_EXECUTED.has(err.message));
    }
    throw err;
  }
}
