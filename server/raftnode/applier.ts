/**
 * The applier: executes committed log entries against core/mvcc, a batch of
 * entries in ONE LMDB write transaction that also records the applied index
 * and the revision it produced. The only place a replicated request changes
 * the state machine.
 *
 * @module
 */
import type { Backend } from "../../core/backend.ts";
import { Lessor } from "../../core/lease/mod.ts";
import { decodeRecord } from "../../core/mvcc/encoding.ts";
import { EtcdError } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import {
  applyCompaction,
  applyDeleteRange,
  applyPut,
  applyTxn,
  revisionHeader,
} from "../../core/mvcc/apply.ts";
import type {
  DeleteRangeResponse,
  LeaseGrantResponse,
  PutResponse,
  ResponseHeader,
  TxnResponse,
} from "../../core/api/types.ts";
import { type Event, Meta, type ViewState, WriteView } from "../../core/mvcc/view.ts";
import type { Entry } from "../../core/raft/types.ts";
import { decodeEntryData, type InternalRequest, unreachable } from "./request.ts";

/** Result of applying one request: its response, or the etcd error it produced. */
export type ApplyResult =
  | { ok: AppliedResponse }
  | { error: EtcdError };

/** What an applied request answers (its header carries only the revision). */
export type AppliedResponse =
  | PutResponse
  | DeleteRangeResponse
  | TxnResponse
  | LeaseGrantResponse
  | { header: ResponseHeader };

/** A lease ID as the `lease` table's key: 8 bytes, big-endian int64. */
export function leaseKey(id: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, id);
  return out;
}

/** A `lease` table record: granted TTL and checkpointed remaining TTL, in seconds. */
function leaseRecord(ttl: number, remaining: number): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setFloat64(0, ttl);
  view.setFloat64(8, remaining);
  return out;
}

/**
 * Fill `lessor` from the store: every lease of the `lease` table (expiring
 * its checkpointed remaining TTL from now, or its full TTL), and the keys
 * attached to them (the leased records of `current`).
 */
export function loadLeases(backend: Backend, lessor: Lessor): void {
  for (const { key, value } of backend.scan("lease", {})) {
    const id = new DataView(key.buffer, key.byteOffset, 8).getBigInt64(0);
    const view = new DataView(value.buffer, value.byteOffset, 16);
    lessor.restore(id, view.getFloat64(0), view.getFloat64(8));
  }
  if (lessor.size === 0) return;
  for (const { key, value } of backend.scan("current", {})) {
    const kv = decodeRecord(key, value, true).kv;
    if (kv.lease !== 0n) lessor.attach(kv.lease, key.slice());
  }
}

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
  /** The member's leases, changed only here (and renewed by the lease service). */
  readonly lessor: Lessor;
  /** Put's lease check, made once. */
  readonly #leaseExists: (id: bigint) => boolean;
  /** Index of the last entry applied (its transaction may still be committing). */
  #applied: number;
  /** Revision state after the last applied entry. */
  #state: ViewState;

  /**
   * An applier over `backend`, which has applied entries up to its
   * `applied_index`; its leases are loaded into `lessor` (by default one
   * with etcd's 2 s minimum TTL on the wall clock).
   */
  constructor(backend: Backend, lessor = new Lessor({ now: Date.now, minTtl: 2 })) {
    this.#backend = backend;
    this.lessor = lessor;
    this.#leaseExists = (id) => lessor.has(id);
    loadLeases(backend, lessor);
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
    this.lessor.clear();
    loadLeases(this.#backend, this.lessor);
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
    const lessor = this.lessor;
    const leaseExists = this.#leaseExists;
    let ok: AppliedResponse;
    try {
      switch (request.type) {
        case "put":
          ok = applyPut(view, request.put, leaseExists);
          break;
        case "delete_range":
          ok = applyDeleteRange(view, request.delete_range);
          break;
        case "txn":
          ok = applyTxn(view, request.txn, leaseExists);
          break;
        case "compaction":
          applyCompaction(view, request.compaction);
          ok = { header: revisionHeader(view.rev()) };
          break;
        case "lease_grant": {
          const { ID, TTL } = request.lease_grant;
          const lease = lessor.grant(ID, TTL);
          this.#backend.put("lease", leaseKey(ID), leaseRecord(lease.ttl, 0));
          ok = { header: revisionHeader(view.rev()), ID, TTL: lease.ttl };
          break;
        }
        case "lease_revoke": {
          const { ID } = request.lease_revoke;
          // Every attached key goes in this one revision.
          for (const key of lessor.revoke(ID)) view.deleteRange(key, undefined);
          this.#backend.del("lease", leaseKey(ID));
          ok = { header: revisionHeader(view.rev()) };
          break;
        }
        case "lease_checkpoint":
          for (const { ID, remaining_TTL } of request.lease_checkpoint.checkpoints) {
            const lease = lessor.get(ID);
            if (lease === undefined) continue;
            lessor.checkpoint(ID, remaining_TTL);
            this.#backend.put("lease", leaseKey(ID), leaseRecord(lease.ttl, remaining_TTL));
          }
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
    // Keys follow their lease: a put attaches, an overwrite or delete detaches.
    for (const ev of view.events) {
      const prev = ev.prev_kv;
      if (prev !== undefined && prev.lease !== 0n) lessor.detach(prev.lease, prev.key);
      if (ev.type === "PUT" && ev.kv.lease !== 0n) lessor.attach(ev.kv.lease, ev.kv.key);
    }
    events.push(...view.events);
    return { ok };
  }
}
