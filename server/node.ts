/**
 * The member's write path: proposals → Raft log → apply, the loop Raft drives
 * (raft ready → persist → send → apply → respond). With one voting member an
 * entry is committed as soon as it is durable, so a batch of proposals is
 * appended to the log and applied in ONE write transaction that also records
 * the applied index, with one fsync: group commit.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Backend } from "../core/backend.ts";
import { Errors, EtcdError } from "../core/errors.ts";
import {
  applyCompaction,
  applyDeleteRange,
  applyPut,
  applyTxn,
  type LeaseLookup,
} from "../core/mvcc/apply.ts";
import { compactHistory } from "../core/mvcc/compact.ts";
import {
  MAX_BATCH_ENTRIES,
  MAX_INFLIGHT_BATCHES,
  MAX_PENDING_PROPOSALS,
  RETAINED_LOG_ENTRIES,
} from "../core/limits.ts";
import type {
  DeleteRangeResponse,
  PutResponse,
  ResponseHeader,
  TxnResponse,
} from "../core/mvcc/types.ts";
import { type Event, Meta, type ViewState, WriteView } from "../core/mvcc/view.ts";
import { appendEntry, compactLog, lastIndex } from "../wal/log.ts";
import { encodeRequest, type InternalRequest } from "./entry.ts";

/** Result of applying one entry: the response, or the error it produced. */
export type ApplyResult =
  | { ok: PutResponse | DeleteRangeResponse | TxnResponse | { header: ResponseHeader } }
  | { error: EtcdError };

/** Options of {@linkcode Node}. */
export interface NodeOptions {
  /** Lessor lookup for puts with a lease. Default: no lease exists. */
  leaseExists?: LeaseLookup;
  /** Proposals waiting for the next batch, at most. Default 10,000. */
  maxPendingProposals?: number;
  /** Entries per batch (one write transaction), at most. Default 1,000. */
  maxBatch?: number;
  /** Batches being written to disk at once, at most. Default 2. */
  maxInflightBatches?: number;
  /** Log entries kept behind the applied index. Default 10,000. */
  retainedLogEntries?: number;
  /** Called after each batch commits with its changes, in revision order. */
  onApplied?: (events: Event[], revision: number) => void;
}

interface Pending {
  request: InternalRequest;
  /** The request's log encoding, when the caller already has it. */
  data?: Uint8Array;
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
}

/** The single-member Raft log and apply loop of a cairn server. */
export class Node {
  #backend: Backend;
  #queue: Pending[] = [];
  #running = false;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #leaseExists: LeaseLookup;
  #maxPending: number;
  #maxBatch: number;
  #retained: number;
  #onApplied?: (events: Event[], revision: number) => void;
  /** Index of the last entry appended (it may not be durable yet). */
  #lastIndex: number;
  /** Index of the last entry durable and applied. */
  #appliedIndex: number;
  #maxInflight: number;
  #compaction: Promise<void> = Promise.resolve();
  /** Revision state as of the last committed batch. */
  #state: ViewState;
  /** Current Raft term. */
  readonly term: number;

  /**
   * Open the log and apply loop over `backend`, in a new term; call
   * {@linkcode Node.start} before proposing.
   *
   * @throws {Error} if the applied index differs from the last log index.
   */
  constructor(backend: Backend, options: NodeOptions = {}) {
    this.#backend = backend;
    this.#leaseExists = options.leaseExists ?? (() => false);
    this.#maxPending = options.maxPendingProposals ?? MAX_PENDING_PROPOSALS;
    this.#maxBatch = options.maxBatch ?? MAX_BATCH_ENTRIES;
    this.#maxInflight = options.maxInflightBatches ?? MAX_INFLIGHT_BATCHES;
    this.#retained = options.retainedLogEntries ?? RETAINED_LOG_ENTRIES;
    this.#onApplied = options.onApplied;
    this.#lastIndex = lastIndex(backend);
    this.#appliedIndex = this.#lastIndex;
    const applied = Number(backend.getMeta(Meta.appliedIndex) ?? 0);
    if (applied !== this.#lastIndex) {
      throw new Error(
        `Cannot open store: applied index ${applied} differs from last log index ${this.#lastIndex}`,
      );
    }
    this.term = Number(backend.getMeta("term") ?? 1) + 1;
    this.#state = {
      revision: Number(backend.getMeta(Meta.revision) ?? 1),
      compactRevision: Number(backend.getMeta(Meta.compactRevision) ?? 0),
    };
  }

  /** Persist the term of this run; call once before proposing. */
  async start(): Promise<void> {
    await this.#backend.write(() => this.#backend.putMeta("term", this.term));
    const requested = Number(this.#backend.getMeta(Meta.compactRevision) ?? 0);
    const done = Number(this.#backend.getMeta(Meta.compactDone) ?? 0);
    if (requested > done) this.#scheduleCompaction(requested);
  }

  /** Index of the last entry durable and applied (= committed). */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /**
   * Propose a write; resolves once it is durable and applied, with its
   * response or the etcd error it produced. `data`, if given, must be
   * `encodeRequest(request)` (server/entry.ts); it becomes the log entry.
   *
   * @throws {EtcdError} TooManyRequests when the proposal queue is full,
   *   Stopped after {@linkcode Node.close}.
   */
  propose(request: InternalRequest, data?: Uint8Array): Promise<ApplyResult> {
    if (this.#closed) return Promise.reject(Errors.Stopped());
    if (this.#queue.length >= this.#maxPending) return Promise.reject(Errors.TooManyRequests());
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>();
    this.#queue.push({ request, data, resolve, reject });
    if (!this.#running) this.#idle = this.#run();
    return promise;
  }

  /** Wait for the physical compaction in progress, if any. */
  compacted(): Promise<void> {
    return this.#compaction;
  }

  /**
   * The batch loop. A batch is appended and applied at once (in memory, on
   * top of the batches still being written) and handed to storage; while it
   * is being committed and fsync'd, the next batch gathers the proposals that
   * arrive, so the disk is never idle while there is work. At most
   * `#maxInflight` batches are being written at a time.
   */
  async #run(): Promise<void> {
    this.#running = true;
    // Let proposals made in this event-loop turn join the first batch.
    await Promise.resolve();
    const inflight = new Set<Promise<void>>();
    while (this.#queue.length > 0 || inflight.size > 0) {
      if (this.#queue.length === 0 || inflight.size >= this.#maxInflight) {
        await Promise.race(inflight);
        continue;
      }
      if (inflight.size > 0) {
        // Give requests one event-loop turn to arrive, unless the batch
        // being written finishes first.
        await Promise.race([...inflight, nextTurn()]);
        if (this.#queue.length === 0 || inflight.size >= this.#maxInflight) continue;
      }
      const written = this.#submit(this.#queue.splice(0, this.#maxBatch));
      inflight.add(written);
      written.finally(() => inflight.delete(written));
    }
    this.#running = false;
  }

  /** Append and apply `batch`, hand it to storage; settles once answered. */
  #submit(batch: Pending[]): Promise<void> {
    const events: Event[] = [];
    const first = this.#lastIndex + 1;
    const state = { ...this.#state };
    let results: ApplyResult[] | undefined;
    const durable = this.#backend.write(() => {
      results = this.#appendAndApply(batch, first, events, state);
    });
    if (results === undefined) {
      // The apply itself threw: nothing was written, the state is unchanged.
      return durable.catch((err) => {
        for (const p of batch) p.reject(err);
      });
    }
    const last = first + batch.length - 1;
    this.#lastIndex = last;
    this.#state = state;
    const answers = results;
    return durable.then(() => {
      this.#appliedIndex = last;
      if (events.length > 0) this.#onApplied?.(events, events[events.length - 1].kv.mod_revision);
      for (let i = 0; i < batch.length; i++) batch[i].resolve(answers[i]);
      for (let i = 0; i < batch.length; i++) {
        const req = batch[i].request;
        if ("compaction" in req && "ok" in answers[i]) {
          this.#scheduleCompaction(req.compaction.revision);
        }
      }
    }, (err) => this.#fail(err, batch));
  }

  /**
   * A batch could not be made durable. Later batches were applied on top of
   * it, so the member stops taking writes: every waiting proposal fails.
   */
  #fail(err: unknown, batch: Pending[]): void {
    console.error("cairn: cannot persist the log; refusing further writes:", err);
    this.#closed = true;
    for (const p of batch) p.reject(err);
    for (const p of this.#queue.splice(0)) p.reject(Errors.Stopped());
  }

  /**
   * Append a batch to the log and apply it, in the open write transaction.
   * `state` is advanced entry by entry; `meta` gets the revision and the
   * applied index once, at the end.
   */
  #appendAndApply(
    batch: Pending[],
    first: number,
    events: Event[],
    state: ViewState,
  ): ApplyResult[] {
    const results: ApplyResult[] = [];
    const startRevision = state.revision;
    let index = first;
    for (const p of batch) {
      const data = p.data ?? encodeRequest(p.request);
      appendEntry(this.#backend, { index, term: this.term, type: 0, data });
      results.push(this.#apply(p.request, events, state));
      index++;
    }
    const applied = index - 1;
    if (state.revision !== startRevision) this.#backend.putMeta(Meta.revision, state.revision);
    this.#backend.putMeta(Meta.appliedIndex, applied);
    if (applied > this.#retained) compactLog(this.#backend, applied - this.#retained);
    return results;
  }

  /** Apply one committed entry in the open write transaction. */
  #apply(request: InternalRequest, events: Event[], state: ViewState): ApplyResult {
    const view = new WriteView(this.#backend, state);
    let ok: PutResponse | DeleteRangeResponse | TxnResponse | { header: ResponseHeader };
    try {
      if ("put" in request) ok = applyPut(view, request.put, this.#leaseExists);
      else if ("delete_range" in request) ok = applyDeleteRange(view, request.delete_range);
      else if ("txn" in request) ok = applyTxn(view, request.txn, this.#leaseExists);
      else {
        applyCompaction(view, request.compaction);
        ok = { header: { cluster_id: 0n, member_id: 0n, revision: view.rev(), raft_term: 0 } };
      }
    } catch (err) {
      if (err instanceof EtcdError && view.events.length === 0) return { error: err };
      throw err;
    }
    Object.assign(state, view.end());
    events.push(...view.events);
    return { ok };
  }

  #scheduleCompaction(revision: number): void {
    this.#compaction = this.#compaction
      .then(() => compactHistory(this.#backend, revision))
      .catch((err) => console.error(`cairn: compaction at revision ${revision} failed:`, err));
  }

  /** Stop taking proposals; wait for the batch and compaction in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
    await this.#compaction;
  }
}

/** Resolves after the current event-loop turn (setImmediate). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
