/**
 * The applier: executes committed log entries against core/mvcc, a batch of
 * entries in ONE LMDB write transaction that also records the applied index
 * and the revision it produced. The only place a replicated request changes
 * the state machine.
 *
 * @module
 */
import type { Backend } from "../../core/backend.ts";
import { EtcdError } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import {
  applyCompaction,
  applyDeleteRange,
  applyPut,
  applyTxn,
  type LeaseLookup,
  revisionHeader,
} from "../../core/mvcc/apply.ts";
import type {
  DeleteRangeResponse,
  PutResponse,
  ResponseHeader,
  TxnResponse,
} from "../../core/api/types.ts";
import { type Event, Meta, type ViewState, WriteView } from "../../core/mvcc/view.ts";
import type { Entry } from "../../core/raft/types.ts";
import { decodeEntryData, type InternalRequest, unreachable } from "./request.ts";

/** Result of applying one request: its response, or the etcd error it produced. */
export type ApplyResult =
  | { ok: PutResponse | DeleteRangeResponse | TxnResponse | { header: ResponseHeader } }
  | { error: EtcdError };

/** What one batch of committed entries produced. */
export interface AppliedBatch {
  /** Results by request ID, for the requests of this batch that carried one. */
  results: Map<number, ApplyResult>;
  /** The changes, in revision order (watch events). */
  events: Event[];
  /** Revisions that compaction requests of this batch set, in order. */
  compactions: number[];
  /** Index of the last entry applied. */
  appliedIndex: number;
  /** The revision after the batch. */
  revision: number;
  /** Resolves once the batch's transaction is committed and visible to readers. */
  committed: Promise<void>;
}

/** Applies committed entries to the MVCC store in `backend`. */
export class Applier {
  readonly #backend: Backend;
  readonly #leaseExists: LeaseLookup;
  /** Index of the last entry applied (its transaction may still be committing). */
  #applied: number;
  /** Revision state after the last applied entry. */
  #state: ViewState;

  /** An applier over `backend`, which has applied entries up to its `applied_index`. */
  constructor(backend: Backend, leaseExists: LeaseLookup = () => false) {
    this.#backend = backend;
    this.#leaseExists = leaseExists;
    this.#applied = Number(backend.getMeta(Meta.appliedIndex) ?? 0);
    this.#state = {
      revision: Number(backend.getMeta(Meta.revision) ?? 1),
      compactRevision: Number(backend.getMeta(Meta.compactRevision) ?? 0),
    };
  }

  /**
   * Forget the in-memory state and read it again from the backend (after a
   * failed commit, whose writes never reached it).
   */
  reload(): void {
    this.#applied = Number(this.#backend.getMeta(Meta.appliedIndex) ?? 0);
    this.#state = {
      revision: Number(this.#backend.getMeta(Meta.revision) ?? 1),
      compactRevision: Number(this.#backend.getMeta(Meta.compactRevision) ?? 0),
    };
  }

  /** Index of the last entry applied (committed to the backend or being committed). */
  get appliedIndex(): number {
    return this.#applied;
  }

  /** The revision after the last applied entry. */
  get revision(): number {
    return this.#state.revision;
  }

  /**
   * Apply `entries` (consecutive, starting right after the applied index) in
   * one write transaction, which records the new applied index and
   * revision. Empty entries (a new leader's no-op) only advance the index.
   * Returns at once; `committed` settles when the transaction does.
   *
   * @throws {Error} whatever an entry threw beyond an etcd error (nothing
   *   is written then, and the applied index stays).
   * @throws {InvariantError} when the entries do not follow the applied index.
   */
  apply(entries: readonly Entry[]): AppliedBatch {
    invariant(entries.length > 0, "a batch applies at least one entry");
    invariant(
      entries[0].index === this.#applied + 1,
      `entries apply in order (next ${entries[0].index}, applied ${this.#applied})`,
    );
    const results = new Map<number, ApplyResult>();
    const events: Event[] = [];
    const compactions: number[] = [];
    const state = { ...this.#state };
    const last = entries[entries.length - 1].index;
    let failure: { err: unknown } | undefined;
    const committed = this.#backend.write(() => {
      try {
        this.#applyAll(entries, results, events, compactions, state);
      } catch (err) {
        failure = { err };
        throw err;
      }
    });
    // An entry that failed beyond an etcd error left nothing written.
    if (failure !== undefined) {
      committed.catch(() => {});
      throw failure.err;
    }
    // The transaction ran synchronously inside write(): the state it produced
    // is the base of the next batch, committed or not yet.
    this.#applied = last;
    this.#state = state;
    return {
      results,
      events,
      compactions,
      appliedIndex: last,
      revision: state.revision,
      committed: committed.then(() => {}),
    };
  }

  /** Apply `entries` in the open write transaction; record the applied index and revision. */
  #applyAll(
    entries: readonly Entry[],
    results: Map<number, ApplyResult>,
    events: Event[],
    compactions: number[],
    state: ViewState,
  ): void {
    const startRevision = state.revision;
    for (const e of entries) {
      if (e.type !== "normal" || e.data.length === 0) continue;
      const { id, request } = decodeEntryData(e.data);
      const result = this.#applyOne(request, events, state);
      if ("ok" in result && request.type === "compaction") {
        compactions.push(request.compaction.revision);
      }
      results.set(id, result);
    }
    if (state.revision !== startRevision) this.#backend.putMeta(Meta.revision, state.revision);
    this.#backend.putMeta(Meta.appliedIndex, entries[entries.length - 1].index);
  }

  /** Apply one request in the open write transaction. */
  #applyOne(request: InternalRequest, events: Event[], state: ViewState): ApplyResult {
    const view = new WriteView(this.#backend, state);
    let ok: PutResponse | DeleteRangeResponse | TxnResponse | { header: ResponseHeader };
    try {
      switch (request.type) {
        case "put":
          ok = applyPut(view, request.put, this.#leaseExists);
          break;
        case "delete_range":
          ok = applyDeleteRange(view, request.delete_range);
          break;
        case "txn":
          ok = applyTxn(view, request.txn, this.#leaseExists);
          break;
        case "compaction":
          applyCompaction(view, request.compaction);
          ok = { header: revisionHeader(view.rev()) };
          break;
        default:
          unreachable(request);
      }
    } catch (err) {
      // A request that fails its checks changes nothing; any other failure
      // would leave a half-applied entry, so it stops the member.
      if (err instanceof EtcdError && view.events.length === 0) return { error: err };
      throw err;
    }
    Object.assign(state, view.end());
    events.push(...view.events);
    return { ok };
  }
}
