/**
 * etcd's KV service (Range, Put, DeleteRange, Txn, Compact), implemented once
 * for every transport: the JSON gateway, the gRPC server and the embedded
 * Store all call it. Each operation runs etcd 3.4's steps in etcd's order:
 *
 * 1. the API checks of `api/v3rpc/key.go` (core/mvcc/validate.ts);
 * 2. the limits: `--max-txn-ops` (part of the txn check), then, for a
 *    proposal, `--max-request-bytes` (`etcdserver: request is too large`);
 * 3. read-only detection (ranges, and txns of ranges only: etcd's
 *    `isTxnReadonly`, core/mvcc/apply.ts);
 * 4. a local read, or a proposal through the {@linkcode Proposer}.
 *
 * Reads are served from the member's store once every write it has
 * acknowledged is visible on the reading thread (a single voting member: its
 * applied state is the cluster's).
 *
 * @module
 */
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
} from "../../core/api/types.ts";
import { metrics } from "../metrics.ts";
import { applyRange, applyTxn, isTxnReadOnly } from "../../core/mvcc/apply.ts";
import {
  checkDeleteRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
} from "../../core/mvcc/validate.ts";
import { putCost, txnCost } from "../../core/alarm.ts";
import type { Credentials, ServiceContext } from "./context.ts";
import type { AuthStore } from "../../core/auth/mod.ts";
import {
  type AuthInfo,
  deletePermission,
  putPermission,
  rangePermission,
  txnPermission,
} from "../../core/auth/permission.ts";
import {
  loggableRange,
  loggableTxn,
  rangeResponseText,
  txnResponseText,
  warnIfSlow,
} from "../slow_request.ts";

/** The KV service of one member (etcd's `kvServer` + `EtcdServer` KV methods). */
export class KVServer {
  #ctx: ServiceContext;

  /** The KV service over a member's shared service context. */
  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /**
   * etcd KV.Range: the keys in [key, range_end) at `revision` (0: current),
   * with etcd's sort, limit, count and revision filters. Served locally,
   * after the writes this member has answered are visible (every read,
   * `serializable` too: etcd's serializable read sees the member's applied
   * state, which includes them).
   *
   * While auth is on, the caller (`creds`) needs READ on the whole range.
   *
   * @throws {EtcdError} EmptyKey; FutureRev or Compacted for an unreadable
   *   revision; InvalidAuthToken, UserEmpty, PermissionDenied,
   *   AuthOldRevision (auth).
   */
  range(req: RangeRequest, creds?: Credentials): Promise<RangeResponse> {
    const start = this.#ctx.now();
    try {
      checkRangeRequest(req);
      const pending = this.#ctx.linearizeRead(req.serializable === true);
      if (pending !== undefined) {
        return pending.then(() => this.#identifiedRange(req, creds, start)).catch((err) => {
          this.#slowRange(start, req, undefined, err);
          throw err;
        });
      }
      return this.#identifiedRange(req, creds, start);
    } catch (err) {
      this.#slowRange(start, req, undefined, err);
      return Promise.reject(err);
    }
  }

  /** The range once the read may be served: its caller is identified, then it is read. */
  #identifiedRange(
    req: RangeRequest,
    creds: Credentials | undefined,
    start: number,
  ): Promise<RangeResponse> {
    const who = this.#ctx.identify(creds);
    if (who instanceof Promise) {
      return who.then((info) => this.#range(req, info, start)).catch((err) => {
        this.#slowRange(start, req, undefined, err);
        throw err;
      });
    }
    return Promise.resolve(this.#range(req, who, start));
  }

  /** The read itself (its permission first); a failure is logged by the caller. */
  #range(req: RangeRequest, info: AuthInfo | undefined, start: number): RangeResponse {
    this.#ctx.authorize(info, (store, ai) => rangePermission(store, ai, req));
    const view = this.#ctx.view();
    try {
      const resp = applyRange(view, req);
      resp.header = this.#ctx.header(resp.header.revision);
      this.#slowRange(start, req, resp);
      return resp;
    } finally {
      view.endTxn();
      metrics.countMvcc(view.ops);
    }
  }

  /** etcd's `warnOfExpensiveReadOnlyRangeRequest`: log the range if it took too long. */
  #slowRange(start: number, req: RangeRequest, resp?: RangeResponse, error?: unknown): void {
    this.#slowRead(start, () => loggableRange(req), resp && (() => rangeResponseText(resp)), error);
  }

  /**
   * etcd's warnOfExpensiveReadOnly…Request: a local read that took longer
   * than --experimental-warning-apply-duration since `start` is logged with
   * its request and response texts (made only then).
   */
  #slowRead(
    start: number,
    request: () => string,
    response: (() => string) | undefined,
    error: unknown,
  ): void {
    const tookMs = this.#ctx.now() - start;
    if (!(tookMs > this.#ctx.warningApplyDurationMs)) return;
    warnIfSlow({
      tookMs,
      expectedMs: this.#ctx.warningApplyDurationMs,
      prefix: "read-only range ",
      request: request(),
      response: response === undefined ? "" : response(),
      error,
    });
  }

  /**
   * etcd KV.Put; resolves with the revision of the write once it is durable
   * and applied.
   *
   * @throws {EtcdError} NoSpace over the backend quota (checked first, as
   *   etcd's quotaKVServer); EmptyKey, KeyTooLarge, ValueProvided, LeaseProvided
   *   (API checks); RequestTooLarge; LeaseNotFound, KeyNotFound
   *   (ignore_value/ignore_lease on a missing key), NoSpace or Corrupt (an
   *   alarm is raised) from the apply; InvalidAuthToken, UserEmpty,
   *   PermissionDenied (WRITE on the key; READ too with prev_kv; WRITE on
   *   the keys of its lease), AuthOldRevision (auth).
   */
  async put(req: PutRequest, creds?: Credentials): Promise<PutResponse> {
    await this.#ctx.checkQuota(putCost(req));
    checkPutRequest(req);
    return await this.#ctx.proposeAs<PutResponse>(
      creds,
      { type: "put", put: req },
      (store, info) => putPermission(store, info, req),
    );
  }

  /**
   * etcd KV.DeleteRange: deletes the keys in [key, range_end); `prev_kv`
   * returns them.
   *
   * @throws {EtcdError} EmptyKey; RequestTooLarge; InvalidAuthToken,
   *   UserEmpty, PermissionDenied (WRITE on the range; READ too with
   *   prev_kv), AuthOldRevision (auth).
   */
  async deleteRange(req: DeleteRangeRequest, creds?: Credentials): Promise<DeleteRangeResponse> {
    checkDeleteRequest(req);
    return await this.#ctx.proposeAs<DeleteRangeResponse>(
      creds,
      { type: "delete_range", delete_range: req },
      (store, info) => deletePermission(store, info, req),
    );
  }

  /**
   * etcd KV.Txn. A txn whose ops are all ranges is served locally, without
   * a proposal and so without the proposal-size limit; any other txn
   * (including one holding only a nested read-only txn, as in etcd) is
   * proposed. Nesting deeper than `--max-txn-ops + 1` levels (or than
   * core/limits.ts's MAX_TXN_DEPTH) is `too many operations`, decided
   * before any recursive step.
   *
   * @throws {EtcdError} NoSpace when its puts would pass the backend quota or
   *   the NOSPACE alarm is raised, Corrupt under the CORRUPT alarm; TooManyOps, EmptyKey, KeyTooLarge, ValueProvided,
   *   LeaseProvided, KeyNotFound (an empty op), DuplicateKey (API checks);
   *   RequestTooLarge; LeaseNotFound, KeyNotFound, FutureRev, Compacted from
   *   the apply or the local read; InvalidAuthToken, UserEmpty,
   *   PermissionDenied (READ on every compare's keys, and each op's own
   *   permission, in both branches and nested txns), AuthOldRevision (auth).
   */
  async txn(req: TxnRequest, creds?: Credentials): Promise<TxnResponse> {
    await this.#ctx.checkQuota(txnCost(req));
    checkTxnRequest(req, this.#ctx.maxTxnOps);
    const check = (store: AuthStore, info: AuthInfo | undefined) => txnPermission(store, info, req);
    if (isTxnReadOnly(req)) {
      const start = this.#ctx.now();
      let resp: TxnResponse | undefined;
      let error: unknown;
      try {
        await this.#ctx.linearizeRead(false);
        const info = await this.#ctx.identify(creds);
        this.#ctx.authorize(info, check);
        const view = this.#ctx.view();
        try {
          resp = applyTxn(view, req, () => false);
          resp.header = this.#ctx.header(resp.header.revision);
          return resp;
        } finally {
          view.endTxn();
          metrics.countMvcc(view.ops);
        }
      } catch (err) {
        error = err;
        throw err;
      } finally {
        // etcd's warnOfExpensiveReadOnlyTxnRequest.
        const done = resp;
        this.#slowRead(start, () => loggableTxn(req), done && (() => txnResponseText(done)), error);
      }
    }
    return await this.#ctx.proposeAs<TxnResponse>(creds, { type: "txn", txn: req }, check);
  }

  /**
   * etcd KV.Compact: reads below `revision` fail from now on (the revision
   * itself stays readable). With `physical`, resolves once the history is
   * removed from storage.
   *
   * @throws {EtcdError} RequestTooLarge; Compacted (revision ≤ the compacted
   *   revision), FutureRev (above the current revision) from the apply.
   */
  async compact(req: CompactionRequest, creds?: Credentials): Promise<CompactionResponse> {
    // etcd 3.4 checks no permission for a compaction; the token must be valid.
    const resp = await this.#ctx.proposeAs<CompactionResponse>(creds, {
      type: "compaction",
      compaction: req,
    });
    if (req.physical) await this.#ctx.proposer.compacted();
    return resp;
  }
}
