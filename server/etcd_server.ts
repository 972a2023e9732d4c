/**
 * The KV and maintenance service of one cairn member: the API-layer checks,
 * writes proposed through the {@linkcode Node} (log → apply), reads served
 * from the store once everything acknowledged is applied.
 *
 * @module
 */
import type { Backend } from "../core/backend.ts";
import { applyRange, applyTxn, isTxnReadOnly } from "../core/mvcc/apply.ts";
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
  ResponseHeader,
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from "../core/api/types.ts";
import {
  checkDeleteRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
} from "../core/mvcc/validate.ts";
import { Meta, ReadView } from "../core/mvcc/view.ts";
import type { InternalRequest } from "./raftnode/request.ts";
import type { ApplyResult } from "./raftnode/applier.ts";
import { ETCD_API_VERSION } from "../version.ts";

/**
 * Where writes go: the member's {@linkcode Node}, or (in an HTTP worker) a
 * proxy that forwards proposals to the thread running it.
 */
export interface Proposer {
  /** Current Raft term. */
  readonly term: number;
  /** Index of the last entry durable and applied. */
  readonly appliedIndex: number;
  /** Propose a write; resolves once it is durable and applied. */
  propose(request: InternalRequest): Promise<ApplyResult>;
  /** Wait for the physical compaction in progress, if any. */
  compacted(): Promise<void>;
  /**
   * Wait until every write acknowledged so far is visible to reads on this
   * thread (undefined when nothing is pending): called before each
   * linearizable read.
   */
  linearize(): Promise<void> | undefined;
}

/** Options of {@linkcode EtcdServer}. */
export interface EtcdServerOptions {
  /** The cluster's ID, reported in every response header. */
  clusterId: bigint;
  /** This member's ID, reported in every response header. */
  memberId: bigint;
  /** Ops or compares per txn level, at most (--max-txn-ops). Default 128. */
  maxTxnOps?: number;
  /**
   * Take a fresh storage snapshot for every read. Needed where commits come
   * from another thread (HTTP workers); a thread's own commits already
   * renew its snapshot. Default false.
   */
  refreshReads?: boolean;
}

/** A member's KVService. */
export class EtcdServer implements KVService {
  #backend: Backend;
  #node: Proposer;
  #clusterId: bigint;
  #memberId: bigint;
  #maxTxnOps: number;
  #refreshReads: boolean;

  /** Serve reads from `backend` and send writes through `node`. */
  constructor(backend: Backend, node: Proposer, options: EtcdServerOptions) {
    this.#backend = backend;
    this.#node = node;
    this.#clusterId = options.clusterId;
    this.#memberId = options.memberId;
    this.#maxTxnOps = options.maxTxnOps ?? 128;
    this.#refreshReads = options.refreshReads ?? false;
  }

  /** The member's ID. */
  get memberId(): bigint {
    return this.#memberId;
  }

  /** The cluster's ID. */
  get clusterId(): bigint {
    return this.#clusterId;
  }

  /** The current (newest committed) revision. */
  currentRevision(): number {
    return this.#view().rev();
  }

  /** A view of everything committed so far. */
  #view(): ReadView {
    if (this.#refreshReads) this.#backend.refresh();
    return new ReadView(this.#backend);
  }

  #header(revision: number): ResponseHeader {
    return {
      cluster_id: this.#clusterId,
      member_id: this.#memberId,
      revision,
      raft_term: this.#node.term,
    };
  }

  async #propose<T extends { header: ResponseHeader }>(req: InternalRequest): Promise<T> {
    const result = await this.#node.propose(req);
    if ("error" in result) throw result.error;
    const resp = result.ok as T;
    resp.header = this.#header(resp.header.revision);
    return resp;
  }

  /**
   * etcd KV.Range. Every read, `serializable` too, first waits for the
   * writes this member has answered to be visible (a serializable read in
   * etcd reads the member's applied state, which includes them).
   *
   * @throws {EtcdError} EmptyKey, FutureRev, Compacted.
   */
  range(req: RangeRequest): Promise<RangeResponse> {
    try {
      checkRangeRequest(req);
      const pending = this.#node.linearize();
      if (pending !== undefined) return pending.then(() => this.#range(req));
      return Promise.resolve(this.#range(req));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #range(req: RangeRequest): RangeResponse {
    const resp = applyRange(this.#view(), req);
    resp.header = this.#header(resp.header.revision);
    return resp;
  }

  /** etcd KV.Put. @throws {EtcdError} EmptyKey, ValueProvided, LeaseProvided, KeyNotFound, LeaseNotFound. */
  async put(req: PutRequest): Promise<PutResponse> {
    checkPutRequest(req);
    return await this.#propose<PutResponse>({ type: "put", put: req });
  }

  /** etcd KV.DeleteRange. @throws {EtcdError} EmptyKey. */
  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    checkDeleteRequest(req);
    return await this.#propose<DeleteRangeResponse>({ type: "delete_range", delete_range: req });
  }

  /**
   * etcd KV.Txn. A txn that cannot write is served like a range.
   *
   * @throws {EtcdError} TooManyOps, EmptyKey, DuplicateKey, LeaseNotFound,
   *   KeyNotFound, FutureRev, Compacted.
   */
  async txn(req: TxnRequest): Promise<TxnResponse> {
    checkTxnRequest(req, this.#maxTxnOps);
    if (isTxnReadOnly(req)) {
      await this.#node.linearize();
      const resp = applyTxn(this.#view(), req, () => false);
      resp.header = this.#header(resp.header.revision);
      return resp;
    }
    return await this.#propose<TxnResponse>({ type: "txn", txn: req });
  }

  /**
   * etcd KV.Compact. With `physical`, resolves once the history is removed.
   *
   * @throws {EtcdError} Compacted, FutureRev.
   */
  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const resp = await this.#propose<CompactionResponse>({ type: "compaction", compaction: req });
    if (req.physical) await this.#node.compacted();
    return resp;
  }

  /**
   * etcd Maintenance.Status. The revision and the applied index come from
   * one read snapshot, so they always describe the same state.
   */
  async status(): Promise<StatusResponse> {
    await this.#node.linearize();
    const view = this.#view();
    const applied = Number(this.#backend.getMeta(Meta.appliedIndex) ?? 0);
    const { dbSize, dbSizeInUse } = this.#backend.size();
    return {
      header: this.#header(view.rev()),
      version: ETCD_API_VERSION,
      dbSize,
      leader: this.#memberId,
      raftIndex: Math.max(applied, this.#node.appliedIndex),
      raftTerm: this.#node.term,
      raftAppliedIndex: applied,
      errors: [],
      dbSizeInUse,
      isLearner: false,
    };
  }
}
