/**
 * What every service of a member shares: where writes go (a
 * {@linkcode Proposer}), the store reads come from, the member's identity in
 * response headers and etcd's request limits. Each proposal passes
 * etcdserver's proposal-size limit here, so no service can skip it.
 *
 * @module
 */
import type { Backend } from "../../core/backend.ts";
import { invariant } from "../../core/invariant.ts";
import type { ResponseHeader } from "../../core/api/types.ts";
import { Meta, ReadView } from "../../core/mvcc/view.ts";
import { AlarmSet } from "../../core/alarm.ts";
import { AuthStore } from "../../core/auth/mod.ts";
import { adminPermission, type AuthInfo, type Credentials } from "../../core/auth/permission.ts";

export type { Credentials };
import type { TokenInfo } from "../../core/auth/simple_token.ts";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import {
  DEFAULT_QUOTA_BACKEND_BYTES,
  MAX_CACHED_TOKENS,
  QUOTA_SIZE_REFRESH_MS,
  TOKEN_CACHE_MS,
  WARNING_APPLY_DURATION_MS,
} from "../../core/limits.ts";
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS } from "../config.ts";
import type { InternalRequest } from "../raftnode/request.ts";
import type { ApplyResult } from "../raftnode/applier.ts";
import type { LeaseTtl } from "../raftnode/lease_keeper.ts";
import { checkProposalSize } from "./proposal.ts";
import type { ClusterCall, ClusterResult } from "../cluster/manager.ts";

/**
 * Where writes go: the member's raft node (server/raftnode/node.ts), or, in an HTTP
 * worker thread, a proxy that forwards proposals to the thread running it.
 */
export interface Proposer {
  /** Current Raft term, reported in response headers. */
  readonly term: number;
  /** Index of the last log entry durable and applied. */
  readonly appliedIndex: number;
  /**
   * Propose a write; resolves once it is durable and applied, with its
   * response (whose header carries only the revision) or the etcd error the
   * apply produced. Rejects with an `EtcdError` when the proposal is not
   * accepted (e.g. `etcdserver: too many requests`, `server stopped`).
   */
  propose(request: InternalRequest): Promise<ApplyResult>;
  /** Resolves once the physical compaction in progress, if any, is done. */
  compacted(): Promise<void>;
  /**
   * Wait until every write acknowledged so far is visible to reads on this
   * thread; `undefined` when nothing is pending. Called before each read.
   */
  linearize(): Promise<void> | undefined;
  /**
   * Wait until a linearizable read may be served on this thread: in a
   * cluster, etcd's ReadIndex (the leader confirms its leadership; this
   * member applies and shows up to the read index); in a one-member
   * cluster, as `linearize`. Rejects with NoLeader, Timeout.
   */
  linearizeRead(): Promise<void> | undefined;
  /**
   * Wait until the last auth change answered is visible to reads on this
   * thread (`undefined`: it is); writes that do not change the auth store
   * are not waited for.
   */
  linearizeAuth(): Promise<void> | undefined;
  /** Index of the last batch that changed the auth store (0: none since the member started). */
  readonly authChangeIndex: number;
  /** etcd's Cluster service and Raft status (server/cluster/manager.ts). */
  cluster(call: ClusterCall): Promise<ClusterResult>;
  /** Lease keep-alive on the leader: the lease's TTL in seconds, or undefined when it does not exist. */
  renewLease(id: bigint): Promise<number | undefined>;
  /** A lease's remaining TTL, granted TTL and (when `keys`) attached keys; undefined when it does not exist. */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<LeaseTtl | undefined>;
  /** Every lease ID. */
  leaseIds(): Promise<bigint[]>;
  /** A new auth token of this member for `info` (the member's token table lives on the main thread). */
  assignToken(info: TokenInfo): Promise<string>;
  /** What an auth token of this member stands for; undefined when invalid or expired. */
  tokenInfo(token: string): Promise<TokenInfo | undefined>;
}

/** Options of {@linkcode ServiceContext} (and of `EtcdServer`). */
export interface ServiceOptions {
  /** The cluster's ID, reported in every response header. */
  clusterId: bigint;
  /** This member's ID, reported in every response header; it also sizes proposals. */
  memberId: bigint;
  /** etcd's `--max-txn-ops`: compares or ops per txn level, at most. Default 128. */
  maxTxnOps?: number;
  /**
   * etcd's `--max-request-bytes`: a write whose Raft proposal is larger, in
   * bytes of its protobuf encoding, fails with `etcdserver: request is too
   * large`. Default 1572864 (1.5 MiB).
   */
  maxRequestBytes?: number;
  /**
   * Take a fresh storage snapshot for every read. Needed where commits come
   * from another thread (HTTP workers); a thread's own commits already
   * renew its snapshot. Default false.
   */
  refreshReads?: boolean;
  /**
   * Directory under which Maintenance.Snapshot writes its temporary copy of
   * the store (removed when the stream ends). Default: the system's
   * temporary directory.
   */
  snapshotDir?: string;
  /**
   * etcd's `--quota-backend-bytes`: writes that would take the store's size
   * in use past it raise the NOSPACE alarm and fail. 0 (the default) = 2 GiB;
   * negative = no quota.
   */
  quotaBackendBytes?: number;
  /**
   * ms a read-only range or txn may take, from its arrival to its answer,
   * before etcd's `apply request took too long` warning is logged
   * (--experimental-warning-apply-duration). Default
   * `WARNING_APPLY_DURATION_MS` (100 ms).
   */
  warningApplyDurationMs?: number;
  /** The clock slow requests are timed with, in ms. Default `performance.now`. */
  now?: () => number;
  /** etcd's `--bcrypt-cost`: cost of password hashes, 4–31 (others: 10). Default 10. */
  bcryptCost?: number;
}

/** What a thread learned of a token, and the auth store it learned it under. */
interface CachedToken extends TokenInfo {
  /** The auth revision of the store then. */
  authRevision: number;
  /** Whether auth was on then. */
  enabled: boolean;
  /** When, in performance.now() ms. */
  at: number;
}

/** The state and helpers the services of one member share. */
export class ServiceContext {
  /** The member's store, read directly by local reads. */
  readonly backend: Backend;
  /** Where writes are proposed. */
  readonly proposer: Proposer;
  /** The cluster's ID. */
  readonly clusterId: bigint;
  /** This member's ID. */
  readonly memberId: bigint;
  /** etcd's `--max-txn-ops`. */
  readonly maxTxnOps: number;
  /** etcd's `--max-request-bytes`, in bytes. */
  readonly maxRequestBytes: number;
  /** Where Maintenance.Snapshot writes its temporary copy (undefined: the system's temp dir). */
  readonly snapshotDir: string | undefined;
  /** The backend quota in bytes (Infinity: none). */
  readonly quotaBytes: number;
  /** ms a local read may take before it is logged as slow. */
  readonly warningApplyDurationMs: number;
  /** The clock slow requests are timed with, in ms. */
  readonly now: () => number;
  #refreshReads: boolean;
  /**
   * The auth store last decoded, the stored text it came from, and the
   * last auth change it is known to include (undefined: maybe not the latest).
   */
  #authCache: { stored: unknown; store: AuthStore; through: number | undefined } | undefined;
  /** What this thread learned of tokens, least recently checked first. */
  #tokens = new Map<string, CachedToken>();
  /** The last size measured for quota checks, and when (performance.now(), ms). */
  #sized = { bytes: 0, at: -Infinity };

  /** Serve reads from `backend` and send writes through `proposer`. */
  constructor(backend: Backend, proposer: Proposer, options: ServiceOptions) {
    this.backend = backend;
    this.proposer = proposer;
    this.clusterId = options.clusterId;
    this.memberId = options.memberId;
    this.maxTxnOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.#refreshReads = options.refreshReads ?? false;
    this.snapshotDir = options.snapshotDir;
    const quota = options.quotaBackendBytes ?? 0;
    this.quotaBytes = quota < 0 ? Infinity : quota === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : quota;
    this.warningApplyDurationMs = options.warningApplyDurationMs ?? WARNING_APPLY_DURATION_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** The raised alarms, as committed (after {@linkcode ServiceContext.linearize}: every acknowledged one). */
  alarms(): AlarmSet {
    if (this.#refreshReads) this.backend.refresh();
    return AlarmSet.decode(this.backend.getMeta(Meta.alarms));
  }

  /** The auth store, as committed (after {@linkcode ServiceContext.linearize}: every acknowledged change). */
  auth(): AuthStore {
    // Nothing to read while no auth change was applied since the one the
    // cached store includes (the common case: no LMDB read per request).
    const changed = this.proposer.authChangeIndex;
    const cached = this.#authCache;
    if (cached !== undefined && cached.through === changed) return cached.store;
    const visible = this.proposer.appliedIndex;
    if (this.#refreshReads) this.backend.refresh();
    const stored = this.backend.getMeta(Meta.auth);
    // The view read now holds every entry visible before it was taken.
    const through = visible >= changed ? changed : undefined;
    if (cached !== undefined && cached.stored === stored) {
      cached.through = through;
      return cached.store;
    }
    const store = AuthStore.decode(stored);
    this.#authCache = { stored, store, through };
    return store;
  }

  /**
   * Who makes a request (etcd's AuthInfoFromCtx): the user its token stands
   * for, with the auth revision of the token (a `simple` token: the store's
   * current one); without a token, the CN of a verified client certificate
   * as the user (transports pass one only with --client-cert-auth); otherwise
   * nobody (undefined). A token is checked whether auth is on or off, as
   * etcd 3.4 does: auth off, no token is valid. Synchronous when there is no
   * token or this thread checked it lately.
   *
   * @throws {EtcdError} InvalidAuthToken (unknown, expired or invalidated).
   */
  identify(creds: Credentials | undefined): AuthInfo | undefined | Promise<AuthInfo | undefined> {
    const token = creds?.token;
    if (token === undefined) {
      const cn = creds?.commonName;
      if (cn === undefined || cn === "") return undefined;
      return { user: cn, revision: this.auth().revision };
    }
    const store = this.auth();
    const cached = this.#tokens.get(token);
    if (
      cached !== undefined && cached.authRevision === store.revision &&
      cached.enabled === store.enabled && performance.now() - cached.at < TOKEN_CACHE_MS
    ) {
      return { user: cached.user, revision: cached.revision ?? store.revision };
    }
    return this.proposer.tokenInfo(token).then((info) => {
      this.#tokens.delete(token);
      if (info === undefined) throw Errors.InvalidAuthToken();
      if (this.#tokens.size >= MAX_CACHED_TOKENS) {
        this.#tokens.delete(this.#tokens.keys().next().value as string);
      }
      this.#tokens.set(token, {
        ...info,
        authRevision: store.revision,
        enabled: store.enabled,
        at: performance.now(),
      });
      return { user: info.user, revision: info.revision ?? store.revision };
    });
  }

  /**
   * {@linkcode ServiceContext.identify} once every auth change answered is
   * visible on this thread, so the caller is judged by each of them (a
   * deleted user's token is invalid, a new grant counts).
   *
   * @throws {EtcdError} InvalidAuthToken; Stopped.
   */
  async caller(creds: Credentials | undefined): Promise<AuthInfo | undefined> {
    await this.proposer.linearizeAuth();
    return await this.identify(creds);
  }

  /**
   * Check a request's permission with `check` against the auth store as
   * committed (call after the read's linearizing wait, or before a
   * proposal; the applier checks writes again in log order).
   *
   * @throws {EtcdError} what `check` finds (UserEmpty, PermissionDenied, …).
   */
  authorize(
    info: AuthInfo | undefined,
    check: (store: AuthStore, info: AuthInfo | undefined) => EtcdError | undefined,
  ): void {
    const store = this.auth();
    if (!store.enabled) return;
    const denied = check(store, info);
    if (denied !== undefined) throw denied;
  }

  /**
   * etcd's IsAdminPermitted for a request outside the log (Hash, HashKV,
   * Defragment, Snapshot): while auth is on, only a user with the root
   * role. etcd 3.4's maintenance server returns the auth store's own errors
   * there, untranslated: `auth: …` texts with gRPC code Unknown (HTTP 500).
   *
   * @throws {EtcdError} `auth: invalid auth token`, `auth: user name is
   *   empty`, `auth: user name not found`, `auth: permission denied` (Unknown).
   */
  async admin(creds: Credentials | undefined): Promise<void> {
    try {
      const info = await this.caller(creds);
      this.authorize(info, adminPermission);
    } catch (err) {
      if (!(err instanceof EtcdError)) throw err;
      throw new EtcdError(err.message.replace(/^etcdserver: /, "auth: "), GrpcCode.Unknown);
    }
  }

  /**
   * Propose a write as `info` (etcd's raftRequest with the user in the
   * request header): the permission pre-check `check` first, so a refused
   * write never reaches the log, then {@linkcode ServiceContext.propose}.
   *
   * @throws {EtcdError} what `check` finds; what `propose` throws.
   */
  async proposeAs<T extends { header: ResponseHeader }>(
    creds: Credentials | undefined,
    req: InternalRequest,
    check?: (store: AuthStore, info: AuthInfo | undefined) => EtcdError | undefined,
  ): Promise<T> {
    const info = await this.caller(creds);
    if (check !== undefined) {
      try {
        this.authorize(info, check);
      } catch {
        // A refusal is confirmed against every acknowledged auth change.
        await this.linearize();
        this.authorize(info, check);
      }
    }
    if (info !== undefined) req.header = { username: info.user, auth_revision: info.revision };
    return await this.propose<T>(req);
  }

  /**
   * etcd's quota check before a write that adds `cost` bytes (its
   * quotaAlarmer): when the store's size in use plus `cost` reaches the
   * quota, the NOSPACE alarm is raised for this member (a replicated
   * request) and the write fails. The size is measured at most every
   * QUOTA_SIZE_REFRESH_MS; in between, each write let through adds its cost
   * to the last measurement (writes through another thread are seen at its
   * next measurement).
   *
   * @throws {EtcdError} NoSpace (`etcdserver: mvcc: database space exceeded`).
   */
  async checkQuota(cost: number): Promise<void> {
    if (cost === 0 || this.quotaBytes === Infinity) return;
    const now = performance.now();
    if (now - this.#sized.at >= QUOTA_SIZE_REFRESH_MS) {
      // The page counts of the newest commit, not of this thread's older read snapshot.
      if (!this.backend.inWrite()) this.backend.refresh();
      this.#sized = { bytes: this.backend.size().dbSizeInUse, at: now };
    }
    if (this.#sized.bytes + cost < this.quotaBytes) {
      // Until the next measurement, the writes let through count at their cost.
      this.#sized.bytes += cost;
      return;
    }
    // The alarm is raised before the refusal, as etcd does; a failure to
    // raise it (no leader) still refuses the write.
    await this.proposer.propose({
      type: "alarm",
      alarm: { action: "ACTIVATE", memberID: this.memberId, alarm: "NOSPACE" },
    }).catch(() => {});
    throw Errors.NoSpace();
  }

  /**
   * A view of everything committed so far. Call after
   * {@linkcode ServiceContext.linearize} to see every acknowledged write.
   */
  view(): ReadView {
    if (this.#refreshReads) this.backend.refresh();
    return new ReadView(this.backend);
  }

  /**
   * Wait until every write this member has answered is visible to reads on
   * this thread (`undefined`: nothing pending, read at once). Every read,
   * `serializable` too, waits: a serializable read in etcd reads the
   * member's applied state, which includes them.
   */
  linearize(): Promise<void> | undefined {
    return this.proposer.linearize();
  }

  /**
   * Wait until a read may be served: `serializable` ones as
   * {@linkcode ServiceContext.linearize}, the rest through ReadIndex
   * (etcd's linearizable read).
   */
  linearizeRead(serializable: boolean): Promise<void> | undefined {
    return serializable ? this.proposer.linearize() : this.proposer.linearizeRead();
  }

  /** A full response header at `revision`: the member's IDs and the current term. */
  header(revision: number): ResponseHeader {
    return {
      cluster_id: this.clusterId,
      member_id: this.memberId,
      revision,
      raft_term: this.proposer.term,
    };
  }

  /**
   * Propose a write as etcdserver does: the proposal-size limit first, then
   * the proposal; resolves with the applied response under a full header.
   *
   * @throws {EtcdError} RequestTooLarge over `maxRequestBytes`; the error the
   *   apply produced; the proposer's refusal (TooManyRequests, Stopped).
   */
  async propose<T extends { header: ResponseHeader }>(req: InternalRequest): Promise<T> {
    checkProposalSize(req, this.maxRequestBytes, this.memberId);
    const result = await this.proposer.propose(req);
    if ("error" in result) throw result.error;
    const resp = result.ok as T;
    invariant(resp.header !== undefined, "an applied write answers with a header");
    resp.header = this.header(resp.header.revision);
    return resp;
  }
}
