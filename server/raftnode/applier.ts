/**
 * The applier: executes committed log entries against core/mvcc, a batch of
 * entries in ONE LMDB write transaction that also records the applied index
 * and the revision it produced. The only place a replicated request changes
 * the state machine.
 *
 * @module
 */
import type { Backend, Table } from "../../core/backend.ts";
import { Lessor } from "../../core/lease/mod.ts";
import { decodeRecord } from "../../core/mvcc/encoding.ts";
import { AlarmSet } from "../../core/alarm.ts";
import { type AuthChange, AuthStore } from "../../core/auth/mod.ts";
import {
  adminPermission,
  type AuthInfo,
  deletePermission,
  leaseRevokePermission,
  putPermission,
  txnPermission,
} from "../../core/auth/permission.ts";
import { log } from "../log.ts";
import { Errors, EtcdError } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import { WARNING_APPLY_DURATION_MS } from "../../core/limits.ts";
import type { MessageName } from "../../core/api/codec.ts";
import { loggableRequest, responseSize, warnIfSlow } from "../slow_request.ts";
import {
  applyCompaction,
  applyDeleteRange,
  applyPut,
  applyTxn,
  revisionHeader,
} from "../../core/mvcc/apply.ts";
import type {
  AlarmResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  PutResponse,
  ResponseHeader,
  TxnResponse,
} from "../../core/api/types.ts";
import { type Event, Meta, type ViewState, WriteView } from "../../core/mvcc/view.ts";
import { decodeConfChange, type Entry } from "../../core/raft/types.ts";
import { decodeMemberContext, Membership } from "../cluster/membership.ts";
import { metrics } from "../metrics.ts";
import {
  type AlarmChange,
  decodeEntryData,
  type InternalRequest,
  type MemberUpdateRequest,
  unreachable,
} from "./request.ts";

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
  | AlarmResponse
  | { header: ResponseHeader };

/** A lease ID as the `lease` table's key: 8 bytes, big-endian int64. */
export function leaseKey(id: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, id);
  return out;
}

/**
 * A `lease` table record: granted TTL and checkpointed remaining TTL (0: none
 * recorded), in seconds, as two big-endian float64s.
 */
export function leaseRecord(ttl: number, remaining: number): Uint8Array {
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
  /** Whether a member's attributes (peer URLs, name, client URLs) changed in this batch. */
  membersUpdated: boolean;
  /** Index of the last entry applied. */
  appliedIndex: number;
  /** The revision after the batch. */
  revision: number;
  /** Resolves once the batch's transaction is committed and visible to readers. */
  committed: Promise<void>;
}

/** Options of {@linkcode Applier}. */
export interface ApplierOptions {
  /**
   * ms an entry may take to apply before etcd's `apply request took too
   * long` warning is logged (--experimental-warning-apply-duration).
   * Default `WARNING_APPLY_DURATION_MS` (100 ms).
   */
  warningApplyDurationMs?: number;
  /** The clock entries are timed with, in ms. Default `performance.now`. */
  now?: () => number;
  /**
   * Called after each auth change applies (the member drops the tokens it
   * invalidates: a deleted user's, a changed password's, all on disable).
   */
  onAuthChange?: (change: AuthChange) => void;
}

/** The response message of each request kind, for its logged size. */
const RESPONSE_TYPE: Record<InternalRequest["type"], MessageName> = {
  put: "PutResponse",
  delete_range: "DeleteRangeResponse",
  txn: "TxnResponse",
  compaction: "CompactionResponse",
  lease_grant: "LeaseGrantResponse",
  lease_revoke: "LeaseRevokeResponse",
  // etcd's LeaseCheckpointResponse is a header alone, as LeaseRevokeResponse.
  lease_checkpoint: "LeaseRevokeResponse",
  member_update: "MemberUpdateResponse",
  alarm: "AlarmResponse",
  auth: "AuthUserAddResponse",
};

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
  /** The membership as of the last applied entry. */
  #membership: Membership;
  /** The raised alarms as of the last applied entry. */
  #alarms: AlarmSet;
  /** The auth store as of the last applied entry. */
  #auth: AuthStore;
  /** ms an entry may take to apply before it is logged as slow. */
  readonly #warningMs: number;
  /** The clock entries are timed with, in ms. */
  readonly #now: () => number;
  readonly #onAuthChange: ((change: AuthChange) => void) | undefined;

  /**
   * An applier over `backend`, which has applied entries up to its
   * `applied_index`; its leases are loaded into `lessor` (by default one
   * with etcd's 2 s minimum TTL on the wall clock).
   */
  constructor(
    backend: Backend,
    lessor = new Lessor({ now: Date.now, minTtl: 2 }),
    options: ApplierOptions = {},
  ) {
    this.#warningMs = options.warningApplyDurationMs ?? WARNING_APPLY_DURATION_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#onAuthChange = options.onAuthChange;
    this.#backend = backend;
    this.lessor = lessor;
    this.#leaseExists = (id) => lessor.has(id);
    loadLeases(backend, lessor);
    this.#applied = Number(backend.getMeta(Meta.appliedIndex) ?? 0);
    this.#state = {
      revision: Number(backend.getMeta(Meta.revision) ?? 1),
      compactRevision: Number(backend.getMeta(Meta.compactRevision) ?? 0),
    };
    this.#membership = loadMembership(backend);
    this.#alarms = AlarmSet.decode(backend.getMeta(Meta.alarms));
    this.#auth = AuthStore.decode(backend.getMeta(Meta.auth));
    this.#keys = backend.count("current", {});
  }

  /** Live keys (etcd_debugging_mvcc_keys_total), as of the last applied entry. */
  #keys: number;

  /** Live keys (not deleted) as of the last applied entry. */
  get keys(): number {
    return this.#keys;
  }

  /** The membership as of the last applied entry (a copy). */
  get membership(): Membership {
    return this.#membership.clone();
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
    this.#membership = loadMembership(this.#backend);
    this.#keys = this.#backend.count("current", {});
    this.#alarms = AlarmSet.decode(this.#backend.getMeta(Meta.alarms));
    this.#auth = AuthStore.decode(this.#backend.getMeta(Meta.auth));
  }

  /** The auth store as of the last applied entry (users, roles, enabled, auth revision). */
  get auth(): AuthStore {
    return this.#auth;
  }

  /** The raised alarms as of the last applied entry. */
  get alarms(): AlarmSet {
    return this.#alarms;
  }

  /**
   * Replace the whole replicated state with `source`'s (a copy of the
   * leader's store, received with a Raft snapshot), in one write
   * transaction: every table, the revisions, the applied index and term, and
   * the membership. The member's own IDs stay. Returns at once; `committed`
   * settles when the transaction does.
   */
  restore(source: StoreSource): { appliedIndex: number; committed: Promise<void> } {
    const b = this.#backend;
    const tables: Table[] = ["current", "history", "revlog", "lease"];
    const committed = b.write(() => {
      for (const table of tables) {
        const keys: Uint8Array[] = [];
        for (const { key } of b.scan(table, {})) keys.push(key);
        for (const key of keys) b.del(table, key);
        for (const { key, value } of source.scan(table)) b.put(table, key, value);
      }
      for (const name of REPLICATED_META) {
        const value = source.getMeta(name);
        if (value !== undefined) b.putMeta(name, value);
      }
      // A leader that never raised an alarm has none stored.
      if (source.getMeta(Meta.alarms) === undefined) {
        b.putMeta(Meta.alarms, new AlarmSet().encode());
      }
      // Nor an auth store, when no auth change ever applied.
      if (source.getMeta(Meta.auth) === undefined) b.putMeta(Meta.auth, new AuthStore().encode());
    });
    this.lessor.clear();
    this.#applied = Number(source.getMeta(Meta.appliedIndex));
    this.#state = {
      revision: Number(source.getMeta(Meta.revision) ?? 1),
      compactRevision: Number(source.getMeta(Meta.compactRevision) ?? 0),
    };
    const membership = source.getMeta(Meta.membership);
    invariant(typeof membership === "string", "a snapshot carries the membership");
    this.#membership = Membership.decode(membership);
    this.#alarms = AlarmSet.decode(source.getMeta(Meta.alarms));
    this.#auth = AuthStore.decode(source.getMeta(Meta.auth));
    // Leases: from the committed copy once it is visible.
    return {
      appliedIndex: this.#applied,
      committed: committed.then(() => {
        this.#backend.refresh();
        this.lessor.clear();
        loadLeases(this.#backend, this.lessor);
        this.#keys = this.#backend.count("current", {});
      }),
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
    let membersUpdated = false;
    const last = entries[entries.length - 1].index;
    let failure: { err: unknown } | undefined;
    const committed = this.#backend.write(() => {
      try {
        membersUpdated = this.#applyAll(entries, results, events, compactions, state);
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
      membersUpdated,
      appliedIndex: last,
      revision: state.revision,
      committed: committed.then(() => {}),
    };
  }

  /**
   * Apply `entries` in the open write transaction; record the applied index
   * and revision. Returns whether a member update (not a conf change) applied.
   */
  #applyAll(
    entries: readonly Entry[],
    results: Map<number, ApplyResult>,
    events: Event[],
    compactions: number[],
    state: ViewState,
  ): boolean {
    const startRevision = state.revision;
    let membership: Membership | undefined;
    let membersUpdated = false;
    for (const e of entries) {
      if (e.type === "confChange") {
        membership ??= this.#membership.clone();
        applyConfChangeEntry(membership, e.data);
        continue;
      }
      if (e.data.length === 0) continue;
      const { id, request } = decodeEntryData(e.data);
      if (request.type === "member_update") {
        membership ??= this.#membership.clone();
        const updated = applyMemberUpdate(membership, request.member_update);
        results.set(id, updated);
        if ("ok" in updated) membersUpdated = true;
        continue;
      }
      if (request.type === "alarm") {
        results.set(id, this.#applyAlarm(request.alarm, state));
        continue;
      }
      if (request.type === "auth") {
        results.set(id, this.#applyAuth(request.auth, state, authInfoOf(request)));
        continue;
      }
      const refused = this.#alarms.refuse(request) ?? this.#permission(request);
      if (refused !== undefined) {
        results.set(id, { error: refused });
        continue;
      }
      const start = this.#now();
      const result = this.#applyOne(request, events, state);
      const tookMs = this.#now() - start;
      if (tookMs > this.#warningMs) {
        // etcd's warnOfExpensiveRequest around each applied entry.
        warnIfSlow({
          tookMs,
          expectedMs: this.#warningMs,
          prefix: "",
          request: loggableRequest(id, request),
          response: "ok" in result ? responseSize(RESPONSE_TYPE[request.type], result.ok) : "",
          error: "error" in result ? result.error : undefined,
        });
      }
      if ("ok" in result && request.type === "compaction") {
        compactions.push(request.compaction.revision);
      }
      results.set(id, result);
    }
    if (state.revision !== startRevision) this.#backend.putMeta(Meta.revision, state.revision);
    const last = entries[entries.length - 1];
    this.#backend.putMeta(Meta.appliedIndex, last.index);
    this.#backend.putMeta(Meta.appliedTerm, last.term);
    if (membership !== undefined) {
      this.#backend.putMeta(Meta.membership, membership.encode());
      this.#membership = membership;
    }
    return membersUpdated;
  }

  /**
   * Raise or clear an alarm (etcd's applierV3backend.Alarm) in the open
   * write transaction. The response lists the alarm raised (also when it
   * already was) or cleared (none when it was not raised), without a header,
   * as etcd 3.4 answers.
   */
  #applyAlarm(change: AlarmChange, state: ViewState): ApplyResult {
    const alarms = this.#alarms;
    let response: AlarmResponse;
    if (change.action === "ACTIVATE") {
      const { alarm, added } = alarms.activate(change.memberID, change.alarm);
      if (added) {
        log.warn("alarm raised", { alarm: alarm.alarm, from: alarm.memberID.toString(16) });
      }
      response = { alarms: [alarm] };
    } else {
      const removed = alarms.deactivate(change.memberID, change.alarm);
      if (removed !== undefined) {
        log.info("alarm disarmed", {
          "alarm-request-action": "DEACTIVATE",
          "alarm-raised-by-peer": removed.memberID.toString(16),
          "alarm-type": removed.alarm,
        });
      }
      response = { alarms: removed === undefined ? [] : [removed] };
    }
    this.#backend.putMeta(Meta.alarms, alarms.encode());
    return { ok: { ...response, header: revisionHeader(state.revision) } };
  }

  /**
   * etcd's authApplierV3: the permissions of a write, checked against the
   * auth store as of this entry, for the user in its header (none: an
   * anonymous request). Compactions, lease grants and checkpoints are not
   * checked, as in etcd 3.4.
   */
  #permission(request: InternalRequest): EtcdError | undefined {
    const store = this.#auth;
    if (!store.enabled) return undefined;
    const info = authInfoOf(request);
    const leaseKeys = (id: bigint) => {
      const lease = this.lessor.get(id);
      return lease === undefined ? undefined : [...lease.keys.values()];
    };
    switch (request.type) {
      case "put":
        return putPermission(store, info, request.put, leaseKeys);
      case "delete_range":
        return deletePermission(store, info, request.delete_range);
      case "txn":
        return txnPermission(store, info, request.txn, leaseKeys);
      case "lease_revoke":
        return leaseRevokePermission(store, info, leaseKeys(request.lease_revoke.ID));
      default:
        return undefined;
    }
  }

  /**
   * Apply an auth change (etcd's applierV3backend Auth* methods) in the open
   * write transaction; the store is written back only when the change
   * applies. While auth is on, only a root user may change it (etcd's
   * needAdminPermission). The response is a header at the current revision.
   */
  #applyAuth(change: AuthChange, state: ViewState, info: AuthInfo | undefined): ApplyResult {
    const denied = adminPermission(this.#auth, info);
    if (denied !== undefined) return { error: denied };
    // A copy, so a refused change leaves the store as it was.
    const auth = AuthStore.decode(this.#auth.encode());
    try {
      auth.apply(change);
    } catch (err) {
      if (err instanceof EtcdError) return { error: err };
      throw err;
    }
    this.#backend.putMeta(Meta.auth, auth.encode());
    this.#auth = auth;
    this.#onAuthChange?.(change);
    if (change.op === "enable") log.info("enabled authentication");
    if (change.op === "disable") log.info("disabled authentication");
    return { ok: { header: revisionHeader(state.revision) } };
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
        case "member_update":
        case "alarm":
        case "auth":
          invariant(false, "member updates, alarms and auth changes apply beside the MVCC store");
          break;
        default:
          unreachable(request);
      }
    } catch (err) {
      // A request that fails its checks changes nothing; any other failure
      // would leave a half-applied entry, so it stops the member.
      if (err instanceof EtcdError && view.events.length === 0) return { error: err };
      throw err;
    } finally {
      view.endTxn();
      metrics.countMvcc(view.ops);
    }
    Object.assign(state, view.end());
    // Keys follow their lease: a put attaches, an overwrite or delete detaches.
    for (const ev of view.events) {
      const prev = ev.prev_kv;
      if (prev !== undefined && prev.lease !== 0n) lessor.detach(prev.lease, prev.key);
      if (ev.type === "PUT" && ev.kv.lease !== 0n) lessor.attach(ev.kv.lease, ev.kv.key);
      if (ev.type === "DELETE") this.#keys--;
      else if (prev === undefined) this.#keys++;
    }
    events.push(...view.events);
    return { ok };
  }
}

/** The meta values a snapshot carries from the leader (the member's own IDs are not among them). */
const REPLICATED_META = [
  Meta.revision,
  Meta.compactRevision,
  Meta.compactDone,
  Meta.appliedIndex,
  Meta.appliedTerm,
  Meta.membership,
  Meta.alarms,
  Meta.auth,
];

/** Where {@linkcode Applier.restore} reads a store copy from (an LMDB environment file). */
export interface StoreSource {
  /** The records of `table`, in key order. */
  scan(table: Table): Iterable<{ key: Uint8Array; value: Uint8Array }>;
  /** A `meta` value. */
  getMeta(name: string): unknown;
}

/**
 * The membership stored in `backend`; a store from before memberships were
 * stored is its own one-member cluster (raft ID 1).
 */
export function loadMembership(backend: Backend): Membership {
  const stored = backend.getMeta(Meta.membership);
  if (typeof stored === "string") return Membership.decode(stored);
  const m = new Membership();
  const id = backend.getMeta(Meta.memberId);
  if (id !== undefined) {
    m.set({
      id: BigInt(id as string),
      raftId: 1,
      name: "",
      peerURLs: [],
      clientURLs: [],
      isLearner: false,
    });
  }
  return m;
}

/** Apply a conf change entry's member to `membership` (core/raft applies it to its tracker). */
function applyConfChangeEntry(membership: Membership, data: Uint8Array): void {
  const change = decodeConfChange(data);
  if (change.context === undefined || change.context.length === 0) return;
  const member = decodeMemberContext(change.context);
  invariant(member.raftId === change.nodeId, "a conf change names its member's raft ID");
  switch (change.type) {
    case "addNode": {
      // A new voter, or a learner promoted.
      const known = membership.get(member.id);
      membership.set({ ...(known ?? member), isLearner: false });
      break;
    }
    case "addLearnerNode":
      membership.set({ ...member, isLearner: true });
      break;
    case "removeNode":
      membership.remove(member.id);
      break;
  }
}

/** Apply etcd's member attribute or peer URL update. */
function applyMemberUpdate(
  membership: Membership,
  update: MemberUpdateRequest,
): ApplyResult {
  const known = membership.get(update.ID);
  if (known === undefined) return { error: Errors.MemberNotFound() };
  membership.set({
    ...known,
    ...(update.peerURLs !== undefined ? { peerURLs: update.peerURLs } : {}),
    ...(update.name !== undefined ? { name: update.name } : {}),
    ...(update.clientURLs !== undefined ? { clientURLs: update.clientURLs } : {}),
  });
  return { ok: { header: revisionHeader(0) } };
}

/** The credentials in a request's header (none: anonymous). */
function authInfoOf(request: InternalRequest): AuthInfo | undefined {
  const h = request.header;
  return h === undefined ? undefined : { user: h.username, revision: h.auth_revision };
}
