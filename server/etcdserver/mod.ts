/**
 * The service layer of a cairn member: etcd's services, each operation
 * implemented once (kv.ts, maintenance.ts, watch.ts, lease.ts, and lock.ts
 * and election.ts over those), over one shared context
 * (context.ts). Transports hold no etcd semantics: the JSON gateway, the
 * gRPC server and the embedded Store (mod.ts) decode a request, call
 * {@linkcode EtcdServer}, and encode its answer or its `EtcdError`, so they
 * all give the same answer to the same request.
 *
 * @example
 * ```ts
 * const server = new EtcdServer(backend, node, { clusterId, memberId, maxTxnOps: 128 });
 * const { header } = await server.put({ key: new TextEncoder().encode("k") });
 * ```
 *
 * @module
 */
import type { Backend } from "../../core/backend.ts";
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KVService,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from "../../core/api/types.ts";
import { type Credentials, type Proposer, ServiceContext, type ServiceOptions } from "./context.ts";
import { KVServer } from "./kv.ts";
import { type AuthOptions, AuthServer } from "./auth.ts";
import { MaintenanceServer, type MaintenanceService } from "./maintenance.ts";
import { ClusterServer } from "./cluster.ts";
import { LeaseServer } from "./lease.ts";
import { LockServer } from "./lock.ts";
import { ElectionServer } from "./election.ts";
import { WatchServer, type WatchServerOptions, type WatchSession } from "./watch.ts";

export type {
  Credentials,
  MaintenanceService,
  Proposer,
  ServiceOptions,
  WatchServerOptions,
  WatchSession,
};
export { AuthServer, ClusterServer, ElectionServer, LockServer, WatchServer };
export type { AuthOptions };
export { checkProposalSize, proposalSize } from "./proposal.ts";

/**
 * A member's services behind one object: the {@linkcode KVService} the
 * transports call (KV plus Maintenance.Status). Methods reject with an
 * `EtcdError` (core/errors.ts) carrying etcd's message and gRPC code.
 */
export class EtcdServer implements KVService {
  #ctx: ServiceContext;
  /** etcd's KV service. */
  readonly kv: KVServer;
  /** etcd's Maintenance service. */
  readonly maintenance: MaintenanceServer;
  /** etcd's Cluster service (and Maintenance.MoveLeader). */
  readonly cluster: ClusterServer;
  /** etcd's Watch service (this thread's watchers). */
  readonly watch: WatchServer;
  /** etcd's Lease service. */
  readonly lease: LeaseServer;
  /** etcd's Lock service (v3lock), over KV, Watch and Lease. */
  readonly lock: LockServer;
  /** etcd's Election service (v3election), over KV, Watch and Lease. */
  readonly election: ElectionServer;
  /** etcd's Auth service (users, roles, enable/disable, `simple` tokens of this member). */
  readonly auth: AuthServer;

  /**
   * Serve reads from `backend` and propose writes through `proposer`, with
   * the IDs and limits in `options` (`maxTxnOps` default 128,
   * `maxRequestBytes` default 1572864, as etcd).
   */
  constructor(
    backend: Backend,
    proposer: Proposer,
    options: ServiceOptions & WatchServerOptions & AuthOptions,
  ) {
    this.#ctx = new ServiceContext(backend, proposer, options);
    this.kv = new KVServer(this.#ctx);
    this.maintenance = new MaintenanceServer(this.#ctx);
    this.cluster = new ClusterServer(this.#ctx);
    this.watch = new WatchServer(this.#ctx, options);
    this.lease = new LeaseServer(this.#ctx);
    this.lock = new LockServer(this);
    this.election = new ElectionServer(this);
    this.auth = new AuthServer(this.#ctx, options);
  }

  /** Open a watch stream (etcd's Watch RPC); see {@linkcode WatchServer.open}. */
  openWatch(creds?: Credentials): WatchSession {
    return this.watch.open(creds);
  }

  /** End open watch streams and stop the service's timers (before the member closes). */
  close(): void {
    this.watch.close();
  }

  /** The member's ID. */
  get memberId(): bigint {
    return this.#ctx.memberId;
  }

  /** The cluster's ID. */
  get clusterId(): bigint {
    return this.#ctx.clusterId;
  }

  /** The backend quota in effect, in bytes (Infinity: none; etcd's --quota-backend-bytes). */
  get quotaBytes(): number {
    return this.#ctx.quotaBytes;
  }

  /** The current (newest committed) revision. */
  currentRevision(): number {
    return this.#ctx.view().rev();
  }

  /** etcd KV.Range; see {@linkcode KVServer.range}. */
  range(req: RangeRequest, creds?: Credentials): Promise<RangeResponse> {
    return this.kv.range(req, creds);
  }

  /** etcd KV.Put; see {@linkcode KVServer.put}. */
  put(req: PutRequest, creds?: Credentials): Promise<PutResponse> {
    return this.kv.put(req, creds);
  }

  /** etcd KV.DeleteRange; see {@linkcode KVServer.deleteRange}. */
  deleteRange(req: DeleteRangeRequest, creds?: Credentials): Promise<DeleteRangeResponse> {
    return this.kv.deleteRange(req, creds);
  }

  /** etcd KV.Txn; see {@linkcode KVServer.txn}. */
  txn(req: TxnRequest, creds?: Credentials): Promise<TxnResponse> {
    return this.kv.txn(req, creds);
  }

  /** etcd KV.Compact; see {@linkcode KVServer.compact}. */
  compact(req: CompactionRequest, creds?: Credentials): Promise<CompactionResponse> {
    return this.kv.compact(req, creds);
  }

  /**
   * Whether this member knows a leader: etcd refuses streams whose client
   * sent the `hasleader` metadata when it does not.
   */
  async hasLeader(): Promise<boolean> {
    return (await this.maintenance.raftStatus()).leader !== 0n;
  }

  /** etcd Maintenance.Status; see {@linkcode MaintenanceServer.status}. */
  status(creds?: Credentials): Promise<StatusResponse> {
    return this.maintenance.status(creds);
  }
}
