/**
 * The raft node of a member: core/raft's Ready loop over the WAL and the
 * applier. Every write takes this path:
 *
 * propose → (batched) MsgProp → Ready → PERSIST entries and hard state to
 * the WAL (one write, one fdatasync) → SEND messages (none with one voter)
 * → APPLY committed entries through the applier (one LMDB transaction that
 * records the applied index; committed without a sync of its own, the WAL
 * being the durable copy) → ADVANCE → answer each waiting proposal once its
 * transaction is visible.
 *
 * Group commit: proposals that arrive while a Ready is being persisted go
 * into the next Ready, so one fdatasync covers every one of them; the LMDB
 * commit of one batch overlaps the WAL write of the next.
 *
 * A one-voter cluster commits an entry as soon as its own append is durable,
 * so a single member runs exactly the path a cluster will.
 *
 * Each Ready goes through {@linkcode ReadyHandler} (ready.ts) with the WAL as
 * its persistence, no transport, and the applier as its state machine; the
 * simulator (tests/sim) runs the nodes of its clusters through that same
 * handler. This module owns the loop around it: the proposal queue and its
 * waiters, the applier's backpressure, log compaction, ticks, and storage
 * failures.
 *
 * @module
 */
import {
  invalidateTokens,
  SimpleTokens,
  type TokenInfo,
  type TokenProvider,
} from "../../core/auth/simple_token.ts";
import type { Backend } from "../../core/backend.ts";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import { decodeGoBase64, encodeBase64 } from "../../core/api/base64.ts";
import { invariant } from "../../core/invariant.ts";
import {
  DEFAULT_AUTH_TOKEN_TTL_S,
  DISK_RESERVE_BYTES,
  MAX_BATCH_ENTRIES,
  MAX_CATCH_UP_BYTES,
  MAX_INFLIGHT_BATCHES,
  MAX_PENDING_PROPOSALS,
  MAX_PENDING_READ_INDEX,
  MAX_RETAINED_LOG_BYTES,
  MAX_WAITING_READS,
  READ_INDEX_RETRY_MS,
  REQUEST_TIMEOUT_BASE_MS,
  SNAPSHOT_CATCHUP_ENTRIES,
  STORAGE_RETRY_MS,
} from "../../core/limits.ts";
import { compactHistory } from "../../core/mvcc/compact.ts";
import { revisionHeader } from "../../core/mvcc/apply.ts";
import { Lessor } from "../../core/lease/mod.ts";
import { LeaseKeeper, type LeaseTtl } from "./lease_keeper.ts";
import { type Event, Meta } from "../../core/mvcc/view.ts";
import { Mulberry32 } from "../../core/raft/prng.ts";
import { RawNode } from "../../core/raft/raw_node.ts";
import { MemoryStorage } from "../../core/raft/storage.ts";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  ProposalDroppedError,
  type RaftEvent,
  type ReadState,
  type Ready,
  type Snapshot,
  type SnapshotMetadata,
} from "../../core/raft/types.ts";
import type { Status } from "../../core/raft/raw_node.ts";
import { Membership } from "../cluster/membership.ts";
import { type ClusterCall, ClusterManager, type ClusterResult } from "../cluster/manager.ts";
import { Wal } from "../../wal/wal.ts";
import { type AppliedBatch, Applier, type ApplyResult, type StoreSource } from "./applier.ts";
import { ReadyHandler } from "./ready.ts";
import { metrics } from "../metrics.ts";
import { encodeRequest, entryData, type InternalRequest } from "./request.ts";
import { createFenceBuffer, type FenceBuffer, ReadFence } from "./read_fence.ts";

export type { ApplyResult };

/**
 * The etcd error for a storage failure: a full disk is etcd's
 * `database space exceeded`; anything else means the member stopped.
 */
export function storageError(err: unknown): EtcdError {
  const code = (err as { code?: unknown })?.code;
  const text = String((err as Error)?.message ?? err);
  if (code === "ENOSPC" || /ENOSPC|No space left|MDB_MAP_FULL/i.test(text)) return Errors.NoSpace();
  return Errors.Stopped();
}

/** How a raft node reaches its peers (server/peer/transport.ts). */
export interface NodeTransport {
  /** Send messages to their `to` peers; never waits (Raft retries what gets lost). */
  send(messages: Message[]): void;
  /**
   * POST a JSON request to a peer's `path` and resolve with its JSON answer
   * (PeerTransport.request); rejects with a `PeerRequestError` carrying the
   * peer's etcd error, or an Error when it cannot be reached.
   */
  request?(id: number, path: string, body: unknown): Promise<unknown>;
}

/** Peer path of a lease keep-alive forwarded to the leader. */
export const LEASE_RENEW_PATH = "/cairn/lease/renew";
/** Peer path of a lease time-to-live forwarded to the leader. */
export const LEASE_TTL_PATH = "/cairn/lease/ttl";
/** Peer path of a membership change forwarded to the leader. */
export const CLUSTER_PATH = "/cairn/cluster";

/** `value` with every bigint as `{ $bigint: "…" }` (JSON has no 64-bit integers). */
function toJsonSafe(value: unknown): unknown {
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSafe(v)]));
  }
  return value;
}

/** The inverse of {@linkcode toJsonSafe}. */
function fromJsonSafe(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonSafe);
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.$bigint === "string" && Object.keys(o).length === 1) return BigInt(o.$bigint);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, fromJsonSafe(v)]));
  }
  return value;
}

/** A store copy received with a Raft snapshot, open for reading. */
export interface StoreFile extends StoreSource {
  /** Close it. */
  close(): Promise<void>;
}

/** Options of {@linkcode RaftNode.open}. */
export interface RaftNodeOptions {
  /** Directory of the WAL segments. */
  walDir: string;
  /**
   * The member's auth tokens (etcd's --auth-token). Default: `simple`
   * tokens living `authTokenTtlSeconds` after their last use.
   */
  tokens?: TokenProvider;
  /** --auth-token-ttl: seconds a `simple` token lives after its last use. Default 300. */
  authTokenTtlSeconds?: number;
  /** Milliseconds between Raft ticks (etcd's --heartbeat-interval). Default 100. */
  heartbeatMs?: number;
  /** Election timeout in milliseconds (etcd's --election-timeout). Default 1000. */
  electionMs?: number;
  /**
   * Raft's pre-vote phase (etcd's --pre-vote): a member that was cut off
   * asks whether it could win before it raises its term. Default true.
   */
  preVote?: boolean;
  /**
   * Applied entries after which the Raft log and the WAL are compacted
   * (etcd's --snapshot-count; the state machine in LMDB is the snapshot).
   * Default 100,000.
   */
  snapshotCount?: number;
  /** Size of a WAL segment in bytes. Default `WAL_SEGMENT_BYTES`. */
  walSegmentBytes?: number;
  /**
   * A file of `reserveBytes` zeros kept on the data disk and deleted when a
   * commit fails for lack of space, so that the entries already answered
   * can still be committed and reads go on; writes are refused until the
   * file can be written again. None when undefined.
   */
  reserveFile?: string;
  /** Size of the reserve file in bytes. Default `DISK_RESERVE_BYTES`. */
  reserveBytes?: number;
  /**
   * The member's leases: the applier loads them from the store and changes
   * them as lease requests apply. Default: a lessor with etcd's 2 s minimum
   * TTL on the wall clock.
   */
  lessor?: Lessor;
  /** Milliseconds between checkpoints of remaining lease TTLs. Default `LEASE_CHECKPOINT_INTERVAL_MS`. */
  leaseCheckpointMs?: number;
  /** This member's core/raft node ID (server/cluster/membership.ts maps member IDs onto them). Default 1. */
  raftId?: number;
  /** How messages reach the other members; none for a one-member cluster. */
  transport?: NodeTransport;
  /** Open a store copy received with a snapshot (native/lmdb.ts `openEnvironmentFile`). */
  openStoreFile?: (file: string) => StoreFile;
  /** Directory of snapshot files received from the leader (`<term>-<index>.snap`). */
  snapDir?: string;
  /** Called on Raft role changes and elections (core/raft's events), for the log. */
  onRaftEvent?: (event: RaftEvent) => void;
  /**
   * ms an entry may take to apply before it is logged as slow
   * (--experimental-warning-apply-duration). Default `WARNING_APPLY_DURATION_MS`.
   */
  warningApplyDurationMs?: number;
  /** Called when the known leader changes: its raft ID (0: none) and the term. */
  onLeaderChange?: (leader: number, term: number) => void;
  /**
   * Called after a membership change was applied (a conf change, a member's
   * new peer URLs, name or client URLs, or a snapshot installed), with the
   * membership after it.
   */
  onMembership?: (membership: Membership) => void;
  /** Called when a WAL write or an LMDB commit fails (writes are refused from then on). */
  onFailure?: (err: unknown) => void;
  /** Called when the history below a compacted revision was removed, after `tookMs` ms. */
  onCompacted?: (revision: number, tookMs: number) => void;
  /** Called when the Raft log and WAL were compacted up to `index` (--snapshot-count). */
  onLogCompacted?: (index: number, appliedIndex: number) => void;
  /** Called when a snapshot from the leader replaced the state machine (durably). */
  onSnapshotApplied?: (snapshot: { index: number; term: number; revision: number }) => void;
  /** Called when removing history below a compacted revision failed (a restart resumes it). */
  onCompactionFailure?: (revision: number, err: unknown) => void;
  /** Called when a failed LMDB commit finally succeeded (writes are taken again). */
  onRecovered?: () => void;
  /**
   * Directory for defragmentation's compacted copy of the store, on the
   * store's file system (its file is moved into place). Without it (or
   * `openStore`), {@linkcode RaftNode.defragment} is refused.
   */
  defragDir?: string;
  /** Open a store in a directory (native/lmdb.ts `openBackend`), for defragmentation's copy. */
  openStore?: (dir: string) => Backend;
}

/** Defragmentation's compacted copy of the store, catching up with the applied index. */
interface CatchingUpCopy {
  /** The copy, open. */
  store: Backend;
  /** Applies the entries it lacks (with a lessor of its own: renewals live in memory). */
  applier: Applier;
  /** False once entries it needed were gone. */
  caughtUp: boolean;
  /** Set once the copy is closed. */
  closed?: boolean;
}

/** What {@linkcode RaftNode.defragment} did. */
export interface DefragResult {
  /** The store's file size before, in bytes. */
  sizeBefore: number;
  /** The store's file size after, in bytes. */
  sizeAfter: number;
  /** Milliseconds from the start of the copy to the swap's end. */
  tookMs: number;
  /** Milliseconds the apply loop (writes) and the other threads' reads were held. */
  pauseMs: number;
}

/**
 * The store's readers in other threads (the HTTP workers): they close the
 * store while defragmentation replaces its file, and open it again after.
 */
export interface StoreReaders {
  /**
   * Resolves once every reader has opened the store (readers that start
   * after a swap would otherwise keep the replaced file open); rejects when
   * they failed to start.
   */
  ready(): Promise<void>;
  /**
   * Make every reader close the store and hold its reads; resolves once all
   * have. On failure, the readers that did are resumed before it rejects.
   */
  suspend(): Promise<void>;
  /** Let the readers open the store again and go on. */
  resume(): void;
}

interface Waiter {
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
  /** When it fails with `request timed out` (performance.now(), ms). */
  deadline: number;
}

/** A ReadIndex request sent to Raft, and the reads it serves. */
interface ReadRound {
  /** When it was sent (performance.now(), ms); resent with a fresh ID after READ_INDEX_RETRY_MS. */
  sent: number;
  /** When its reads fail with `request timed out`. */
  deadline: number;
  waiters: { resolve: (index: number) => void; reject: (e: unknown) => void }[];
}

/** Bits of a request ID that name the member that proposed it. */
const PROPOSER_BITS = 1024;
/** Request IDs count from this epoch (2023-11-14), 16 a millisecond. */
const ID_EPOCH_MS = 1_700_000_000_000;

/**
 * The Ready loop of one member of a cluster of one or more. Create with
 * {@linkcode RaftNode.open}.
 */
export class RaftNode {
  readonly #backend: Backend;
  readonly #raw: RawNode;
  readonly #storage: MemoryStorage;
  readonly #wal: Wal;
  readonly #applier: Applier;
  /** Persist → send → apply → advance of each Ready (ready.ts), over the WAL and the applier. */
  readonly #ready: ReadyHandler;
  readonly #options: RaftNodeOptions;
  /** Encoded proposals not yet handed to Raft (proposed as one batch per Ready). */
  #queue: Uint8Array[] = [];
  /** The request IDs of `#queue`, in the same order. */
  #queuedIds: number[] = [];
  /** Proposals waiting for their entry to be applied, by request ID. */
  readonly #waiters = new Map<number, Waiter>();
  #nextId: number;
  /** Acknowledged and visible indexes, shared with every thread that reads. */
  readonly #fenceBuffer: FenceBuffer;
  readonly #fence: ReadFence;
  /** Index of the last entry durable in LMDB itself (WAL segments up to it can go). */
  #durableIndex: number;
  /** Bytes of entry data in the in-memory log (bounded by MAX_RETAINED_LOG_BYTES). */
  #logBytes = 0;
  #running = false;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;
  /** The store's readers in other threads (see {@linkcode RaftNode.addStoreReaders}). */
  #storeReaders = new Set<StoreReaders>();
  /** The defragmentation in progress. */
  #defragging: Promise<DefragResult> | undefined;
  /** A compacted copy waiting for the apply loop to reach a point where no batch is applying. */
  #swapRequest:
    | {
      file: string;
      dir: string;
      copy: CatchingUpCopy;
      done: PromiseWithResolvers<{ pauseMs: number }>;
    }
    | undefined;
  /** A WAL write failed: writes are refused until a restart (reads go on). */
  #failure: unknown = undefined;
  /**
   * An LMDB commit failed (e.g. the disk is full): acknowledged entries are
   * in the WAL but not in the state machine. Writes are refused and reads
   * wait while the applier retries them.
   */
  #commitFailure: unknown = undefined;
  /**
   * The disk ran full and the reserve was given up: writes are refused
   * (with this cause) until the reserve can be written again.
   */
  #spaceLow: unknown = undefined;
  /** Whether the reserve file exists. */
  #reserved = false;
  /** LMDB commits in flight; each settles (never rejects) once handled. */
  #inflight = new Set<Promise<void>>();
  /** The recommit loop running after a failed LMDB commit. */
  #recovery: Promise<void> | undefined;
  #compaction: Promise<void> = Promise.resolve();
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Called after each batch becomes visible (worker threads are told this way). */
  readonly #visibleListeners = new Set<(appliedIndex: number) => void>();
  readonly #changeListeners = new Set<(events: Event[], revision: number) => void>();
  readonly #restoreListeners = new Set<(revision: number) => void>();
  /** This member's raft node ID. */
  readonly #id: number;
  /** The leader as of the last Ready (0: none known). */
  #leader = 0;
  /** Reads waiting for the next ReadIndex request. */
  #readQueue: ReadRound["waiters"] = [];
  /** ReadIndex requests in flight, by context. */
  readonly #readRounds = new Map<string, ReadRound>();
  #readSeq = 0;
  /** Milliseconds a proposal or read waits before `request timed out`. */
  readonly #requestTimeoutMs: number;
  /** Received snapshot files, by the snapshot index they carry. */
  readonly #snapshotFiles = new Map<number, string>();
  /** A member was added: drop the in-memory log after this Ready (see #retained). */
  #compactForNewMember = false;
  /** Membership change waiters, by the member ID they wait for. */
  readonly #confWaiters = new Map<bigint, Waiter>();

  private constructor(
    backend: Backend,
    raw: RawNode,
    storage: MemoryStorage,
    wal: Wal,
    applier: Applier,
    options: RaftNodeOptions,
  ) {
    this.#backend = backend;
    this.#raw = raw;
    this.#storage = storage;
    this.#wal = wal;
    this.#applier = applier;
    this.#options = options;
    this.#fenceBuffer = createFenceBuffer(applier.appliedIndex);
    this.#fence = new ReadFence(this.#fenceBuffer, () => backend.commitSoon());
    this.#durableIndex = applier.appliedIndex;
    this.#id = options.raftId ?? 1;
    this.#requestTimeoutMs = REQUEST_TIMEOUT_BASE_MS + 2 * (options.electionMs ?? 1000);
    this.#ready = new ReadyHandler(raw, storage, {
      persistence: {
        save: (hardState, entries, sync, snapshot) =>
          snapshot === undefined
            ? wal.save(hardState, entries, sync)
            : wal.saveSnapshot(snapshot.metadata).then(() => wal.save(hardState, entries, sync)),
      },
      transport: {
        send: (messages) => {
          if (messages.length === 0) return;
          invariant(options.transport !== undefined, "a member with peers has a transport");
          options.transport.send(messages);
        },
      },
      stateMachine: {
        admit: () => this.#admit(),
        // Its LMDB commit overlaps the next Ready's WAL write.
        apply: (entries) => this.#track(this.#applier.apply(entries)),
        restore: (snapshot) => this.#restore(snapshot),
        confChanged: (change, confState, index) => this.#confChanged(change, confState, index),
        read: (state) => this.#readState(state),
      },
      // The followers write while the leader does (etcd's optimisation).
      leaderSendsFirst: true,
    });
    // Request IDs are unique in the cluster: the low bits name the member
    // (its raft ID), the rest count from the time this process started.
    this.#nextId = Math.max(1, (Date.now() - ID_EPOCH_MS) * 16);
  }

  /**
   * Open the node over `backend`: read the WAL (creating it on a new
   * member), rebuild the Raft log, re-apply committed entries the state
   * machine does not have yet (those after its applied index), and elect
   * this member. Resolves once it is leader with everything committed
   * applied.
   *
   * @throws {Error} when the WAL and the state machine disagree (the WAL
   *   lacks entries the state machine needs), or the WAL is damaged.
   */
  static async open(backend: Backend, options: RaftNodeOptions): Promise<RaftNode> {
    // etcd's minimum lease TTL: ceil(1.5 × election timeout), in seconds.
    const minTtl = Math.ceil((1.5 * (options.electionMs ?? 1000)) / 1000);
    const tokens = options.tokens ?? new SimpleTokens({
      ttlSeconds: options.authTokenTtlSeconds ?? DEFAULT_AUTH_TOKEN_TTL_S,
      now: Date.now,
      random: (n) => crypto.getRandomValues(new Uint8Array(n)),
    });
    let authChanged = () => {};
    const applier = new Applier(backend, options.lessor ?? new Lessor({ now: Date.now, minTtl }), {
      warningApplyDurationMs: options.warningApplyDurationMs,
      onAuthChange: (change) => {
        invalidateTokens(tokens, change);
        authChanged();
      },
    });
    const raftId = options.raftId ?? 1;
    // The membership as of the applied index: entries after it (conf
    // changes included) are applied again below.
    const confState = applier.membership.confState();
    const appliedTerm = Number(
      backend.getMeta(Meta.appliedTerm) ?? backend.getMeta(Meta.term) ?? 1,
    );
    // A new member's log starts after index 1, term 1, with the bootstrap
    // membership. A store written before the WAL existed starts after its
    // applied index.
    const initial: SnapshotMetadata = {
      index: Math.max(applier.appliedIndex, 1),
      term: appliedTerm,
      confState,
    };
    const { wal, state } = await Wal.open(options.walDir, initial, {
      segmentBytes: options.walSegmentBytes,
    });
    let walBytes = 0;
    wal.onWrite = (bytes, syncSeconds) => {
      metrics.walWriteBytes.set(walBytes += bytes);
      if (syncSeconds !== undefined) metrics.walFsync.observe(syncSeconds);
    };
    // A snapshot installed from the leader whose store copy LMDB lost in a
    // crash: restore it again from the file kept for this.
    if (applier.appliedIndex < state.base.index - 1 && options.snapDir !== undefined) {
      const file = `${options.snapDir}/${state.base.term}-${state.base.index}.snap`;
      if (existsFile(file) && options.openStoreFile !== undefined) {
        const source = options.openStoreFile(file);
        try {
          await applier.restore(source).committed;
        } finally {
          await source.close();
        }
      }
    }
    const applied = applier.appliedIndex;
    const last = state.entries.at(-1)?.index ?? state.base.index;
    if (applied < state.base.index - (state.base.index === 1 ? 1 : 0) || applied > last) {
      await wal.close();
      throw new Error(
        `Cannot open store: applied index ${applied} is outside the WAL (entries ${state.base.index}..${last})`,
      );
    }
    const storage = new MemoryStorage();
    storage.applySnapshot({
      metadata: { ...state.base, confState: applier.membership.confState() },
      data: new Uint8Array(),
    });
    storage.append(state.entries);
    storage.setHardState(
      state.hardState.term > 0
        ? state.hardState
        : { term: state.base.term, vote: 0, commit: state.base.index },
    );
    const heartbeatMs = options.heartbeatMs ?? 100;
    const electionTick = Math.max(2, Math.round((options.electionMs ?? 1000) / heartbeatMs));
    const raw = new RawNode({
      id: raftId,
      electionTick,
      heartbeatTick: 1,
      storage,
      prng: new Mulberry32((Date.now() ^ (raftId * 0x9e3779b1)) >>> 0),
      applied: Math.max(applied, state.base.index),
      // etcd's --max-request-bytes-sized appends: 1 MiB per message.
      maxSizePerMsg: 1024 * 1024,
      maxCommittedSizePerReady: Number.MAX_SAFE_INTEGER,
      maxInflightMsgs: 256,
      checkQuorum: true,
      preVote: options.preVote ?? true,
      onEvent: options.onRaftEvent,
    });
    const node = new RaftNode(backend, raw, storage, wal, applier, options);
    node.#tokens = tokens;
    authChanged = () => node.#authChanged = true;
    for (const e of state.entries) node.#logBytes += e.data.length;
    const conf = raw.confState();
    const alone = conf.voters.length === 1 && conf.voters[0] === raftId &&
      conf.learners.length === 0;
    // One voter: win the election now rather than after a timeout.
    if (alone) raw.campaign();
    node.#kick();
    await node.#idle;
    await Promise.allSettled([...node.#inflight]);
    if (node.#failure !== undefined) {
      await node.close();
      throw node.#failure;
    }
    if (alone) invariant(raw.isLeader(), "a single voter is leader after campaigning");
    node.#fence.setClustered(!node.alone);
    node.#fence.setTerm(raw.status().hardState.term);
    await node.#reserve();
    const requested = Number(backend.getMeta(Meta.compactRevision) ?? 0);
    const done = Number(backend.getMeta(Meta.compactDone) ?? 0);
    if (requested > done) node.#scheduleCompaction(requested);
    const ticker = setInterval(() => node.#tick(), heartbeatMs);
    Deno.unrefTimer(ticker);
    node.#ticker = ticker;
    return node;
  }

  /** A Raft tick; then time out what waited too long and resend unanswered ReadIndex requests. */
  #tick(): void {
    this.#raw.tick();
    const now = performance.now();
    for (const [id, w] of this.#waiters) {
      if (w.deadline > now) break; // in proposal order: the rest are younger
      this.#waiters.delete(id);
      metrics.proposalsFailed.inc();
      w.reject(Errors.Timeout());
    }
    for (const [ctx, round] of this.#readRounds) {
      if (round.deadline <= now) {
        this.#readRounds.delete(ctx);
        metrics.readIndexesFailed.inc();
        for (const w of round.waiters) w.reject(Errors.Timeout());
      } else if (now - round.sent >= READ_INDEX_RETRY_MS) {
        // Lost, or the leader changed: ask again with a fresh ID.
        this.#readRounds.delete(ctx);
        this.#sendReadIndex(round);
      }
    }
    if (this.#raw.hasReady() || this.#readQueue.length > 0) this.#kick();
  }

  /** Proposals of this member waiting for their entry to be applied. */
  get pendingProposals(): number {
    return this.#waiters.size;
  }

  /** Live keys (not deleted), as of the last applied entry. */
  get keys(): number {
    return this.#applier.keys;
  }

  /** The revision after the last applied entry. */
  get revision(): number {
    return this.#applier.revision;
  }

  /** The current Raft term. */
  get term(): number {
    return this.#ready.term;
  }

  /** Index of the last entry applied and visible to readers. */
  get appliedIndex(): number {
    return this.#fence.visibleIndex;
  }

  /** Index of the first entry the Raft log still holds (earlier ones were compacted). */
  get logStart(): number {
    return this.#storage.firstIndex();
  }

  /** The shared memory of the read fence, for worker threads ({@linkcode ReadFence}). */
  get fenceBuffer(): FenceBuffer {
    return this.#fenceBuffer;
  }

  /**
   * Call `listener` with the applied index each time a batch becomes
   * visible to readers; returns the function that unsubscribes it.
   */
  onVisible(listener: (appliedIndex: number) => void): () => void {
    this.#visibleListeners.add(listener);
    return () => this.#visibleListeners.delete(listener);
  }

  /**
   * The applied-change feed: call `listener` once per batch that becomes
   * visible and changed keys, with its changes in revision order (each
   * with its prev_kv) and the revision after it; batches come in log order.
   * Returns the function that unsubscribes it.
   */
  onApplied(listener: (events: Event[], revision: number) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /**
   * Call `listener` with the store's revision each time the whole store was
   * replaced by a snapshot from the leader (the feed skipped everything up
   * to it: watchers catch up from the restored history). Returns the
   * function that unsubscribes it.
   */
  onRestored(listener: (revision: number) => void): () => void {
    this.#restoreListeners.add(listener);
    return () => this.#restoreListeners.delete(listener);
  }

  #announce(batch: AppliedBatch): void {
    for (const listener of this.#visibleListeners) listener(batch.appliedIndex);
    if (batch.events.length === 0) return;
    for (const listener of this.#changeListeners) listener(batch.events, batch.revision);
  }

  /** The member's leases (changed by the applier; renewed by the lease service). */
  get lessor(): Lessor {
    return this.#applier.lessor;
  }

  #leases: LeaseKeeper | undefined;

  /** The leader's lease duties: expiry, checkpoints, keep-alive, time-to-live. */
  get leases(): LeaseKeeper {
    return this.#leases ??= new LeaseKeeper(
      this.#applier.lessor,
      (req) => this.propose(req),
      this.#options.leaseCheckpointMs,
    );
  }

  /**
   * etcd's LeaseKeepAlive: on the leader, {@linkcode LeaseKeeper.renew};
   * elsewhere forwarded to the leader (leases expire on the leader's clock).
   *
   * @throws {EtcdError} NoLeader without a leader; the leader's error.
   */
  renewLease(id: bigint): Promise<number | undefined> {
    if (this.#raw.isLeader()) return Promise.resolve(this.leases.renew(id));
    return this.#toLeader(LEASE_RENEW_PATH, { ID: id.toString() }).then((r) =>
      (r as { TTL: number | null }).TTL ?? undefined
    );
  }

  /**
   * etcd's LeaseTimeToLive: on the leader, {@linkcode LeaseKeeper.timeToLive};
   * elsewhere forwarded to the leader.
   *
   * @throws {EtcdError} NoLeader without a leader; the leader's error.
   */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<LeaseTtl | undefined> {
    if (this.#raw.isLeader()) return Promise.resolve(this.leases.timeToLive(id, keys));
    return this.#toLeader(LEASE_TTL_PATH, { ID: id.toString(), keys }).then((r) => {
      const ttl = r as { TTL: number; grantedTTL: number; keys: string[] } | null;
      if (ttl === null) return undefined;
      return {
        TTL: ttl.TTL,
        grantedTTL: ttl.grantedTTL,
        keys: ttl.keys.map((k) => decodeGoBase64(k) as Uint8Array),
      };
    });
  }

  /**
   * The leader's side of the requests followers forward (peer POST
   * handlers): lease keep-alive and time-to-live, and membership changes.
   */
  peerHandlers(): Record<string, (body: unknown) => Promise<unknown>> {
    const leader = () => {
      if (!this.#raw.isLeader()) {
        throw this.#raw.leader() === 0 ? Errors.NoLeader() : Errors.LeaderChanged();
      }
    };
    return {
      [LEASE_RENEW_PATH]: (body) => {
        leader();
        const { ID } = body as { ID: string };
        return Promise.resolve({ TTL: this.leases.renew(BigInt(ID)) ?? null });
      },
      [LEASE_TTL_PATH]: (body) => {
        leader();
        const { ID, keys } = body as { ID: string; keys: boolean };
        const ttl = this.leases.timeToLive(BigInt(ID), keys === true);
        return Promise.resolve(
          ttl === undefined ? null : { ...ttl, keys: ttl.keys.map(encodeBase64) },
        );
      },
      [CLUSTER_PATH]: async (body) => {
        leader();
        return toJsonSafe(await this.cluster(fromJsonSafe(body) as ClusterCall));
      },
    };
  }

  /**
   * Run a membership change on the leader (from a follower): its applied
   * membership is the newest, so the raft ID it gives a new member is free.
   *
   * @throws {EtcdError} NoLeader, LeaderChanged, or the leader's error.
   */
  async clusterOnLeader(call: ClusterCall): Promise<ClusterResult> {
    return fromJsonSafe(await this.#toLeader(CLUSTER_PATH, toJsonSafe(call))) as ClusterResult;
  }

  /**
   * POST `body` to `path` on the peer port of the member with raft ID
   * `raftId`; resolves with its JSON answer.
   *
   * @throws {Error} when the member has no peers or the peer cannot answer.
   */
  requestPeer(raftId: number, path: string, body: unknown): Promise<unknown> {
    const transport = this.#options.transport;
    if (transport?.request === undefined) return Promise.reject(new Error("no peers"));
    return transport.request(raftId, path, body);
  }

  /** POST a request to the leader's peer port. */
  async #toLeader(path: string, body: unknown): Promise<unknown> {
    const lead = this.#raw.leader();
    const request = this.#options.transport?.request;
    if (lead === 0 || request === undefined) throw Errors.NoLeader();
    try {
      return await request.call(this.#options.transport, lead, path, body);
    } catch (err) {
      const e = err as { name?: string; message?: string; code?: number };
      if (e?.name === "PeerRequestError") {
        throw new EtcdError(String(e.message), (e.code ?? 2) as GrpcCode);
      }
      throw Errors.LeaderChanged();
    }
  }

  /** The member's auth tokens (set by `open`). */
  #tokens!: TokenProvider;
  /** The batch being applied changed the auth store. */
  #authChanged = false;

  /**
   * Wait until the last auth change this member answered is visible to
   * reads on this thread; undefined when it is.
   */
  linearizeAuth(): Promise<void> | undefined {
    return this.#fence.waitForAuth();
  }

  /** Index of the last batch that changed the auth store (0: none since the member started). */
  get authChangeIndex(): number {
    return this.#fence.authChangeIndex;
  }

  /** A new auth token of this member for `info` (etcd's tokenProvider.assign). */
  async assignToken(info: TokenInfo): Promise<string> {
    return await this.#tokens.assign(info);
  }

  /** What an auth token of this member stands for; undefined when invalid or expired. */
  async tokenInfo(token: string): Promise<TokenInfo | undefined> {
    return await this.#tokens.info(token);
  }

  /** etcd's LeaseLeases: every lease ID. */
  leaseIds(): Promise<bigint[]> {
    return Promise.resolve(this.leases.ids());
  }

  /** A read on another thread waits for acknowledged writes: commit them now. */
  readWaiting(): void {
    this.#backend.commitSoon();
  }

  /**
   * Wait until every write acknowledged so far is visible to readers (call
   * before a linearizable read); undefined when nothing is pending.
   *
   * @throws {EtcdError} Stopped (as a rejection) after a failed commit.
   */
  linearize(): Promise<void> | undefined {
    return this.#fence.wait();
  }

  /** Whether this member is the only voter and has no learners (reads need no ReadIndex). */
  get alone(): boolean {
    const conf = this.#ready.confState;
    return conf.voters.length === 1 && conf.voters[0] === this.#id && conf.learners.length === 0;
  }

  /**
   * The read index of a linearizable read (etcd's ReadIndex): the leader's
   * commit index once it confirmed with a quorum that it still leads. Reads
   * that arrive while a request is in flight share the next one. Resolves
   * once this member applied up to it (then wait for it to be visible with
   * {@linkcode RaftNode.waitVisible}). A one-member cluster answers at once
   * with the highest index answered to a client.
   *
   * @throws {EtcdError} NoLeader without a leader; Timeout when no answer
   *   came within the request timeout; TooManyRequests over the bounds.
   */
  readIndex(): Promise<number> {
    if (this.#closed) return Promise.reject(Errors.Stopped());
    if (!this.#fence.clustered) return Promise.resolve(this.#fence.acknowledgedIndex);
    if (this.#readQueue.length >= MAX_WAITING_READS) {
      return Promise.reject(Errors.TooManyRequests());
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#readQueue.push({ resolve, reject });
    this.#kick();
    return promise;
  }

  /**
   * Wait until a linearizable read may be served on this thread: ReadIndex,
   * then until the read index is visible; the local fence in a one-member
   * cluster (undefined when nothing is pending).
   *
   * @throws {EtcdError} as {@linkcode RaftNode.readIndex}.
   */
  linearizeRead(): Promise<void> | undefined {
    if (!this.#fence.clustered) return this.#fence.wait();
    return this.readIndex().then((index) => this.#fence.waitFor(index));
  }

  /** Wait until the entries up to `index` are visible to readers (undefined: they are). */
  waitVisible(index: number): Promise<void> | undefined {
    return this.#fence.waitFor(index);
  }

  /** The election timeout in milliseconds (--election-timeout). */
  get electionMs(): number {
    return this.#options.electionMs ?? 1000;
  }

  /** This member's raft node ID. */
  get raftId(): number {
    return this.#id;
  }

  /** The leader's raft node ID as of the last Ready (0: none known). */
  get leader(): number {
    return this.#leader;
  }

  /** Whether this member is the leader. */
  get isLeader(): boolean {
    return this.#raw.isLeader();
  }

  /** core/raft's status: term, commit index, role, and on the leader every member's progress. */
  status(): Status {
    return this.#raw.status();
  }

  #cluster: ClusterManager | undefined;

  /** etcd's Cluster service and Raft status; see {@linkcode ClusterManager.call}. */
  cluster(call: ClusterCall): Promise<ClusterResult> {
    return (this.#cluster ??= new ClusterManager(this)).call(call);
  }

  /** The membership as of the applied index. */
  get membership(): Membership {
    return this.#applier.membership;
  }

  /** Step a message received from a peer. Messages from unknown members are dropped by Raft. */
  step(messages: Message[]): void {
    for (const m of messages) {
      try {
        this.#raw.step(m);
      } catch (err) {
        // A forwarded proposal the leader cannot take: the proposer times out.
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
    }
    if (this.#raw.hasReady()) this.#kick();
  }

  /**
   * A MsgSnap arrived with the store copy at `file`: step it, carrying the
   * file so that {@linkcode RaftNode} restores from it when Raft installs
   * the snapshot.
   */
  stepSnapshot(message: Message, file: string): void {
    invariant(message.snapshot !== undefined, "a MsgSnap carries a snapshot");
    this.#snapshotFiles.set(message.snapshot.metadata.index, file);
    this.step([message]);
  }

  /** The transport could not reach `id` (Raft probes it again). */
  reportUnreachable(id: number): void {
    this.#raw.reportUnreachable(id);
    if (this.#raw.hasReady()) this.#kick();
  }

  /** A snapshot to `id` was delivered (or failed). */
  reportSnapshot(id: number, failed: boolean): void {
    this.#raw.reportSnapshot(id, failed);
    if (this.#raw.hasReady()) this.#kick();
  }

  /** Ask the leader to hand leadership to `id` (etcd's MoveLeader); see core/raft's transferLeader. */
  transferLeader(id: number): void {
    this.#raw.transferLeader(id);
    if (this.#raw.hasReady()) this.#kick();
  }

  /**
   * Propose a membership change for `member` (whose ID is in the change's
   * context) and wait until it is applied.
   *
   * @throws {EtcdError} NoLeader, LeaderChanged when it cannot be proposed;
   *   Timeout when it was not applied in time (another change was pending,
   *   or leadership changed).
   */
  changeMembership(change: ConfChange, member: bigint): Promise<void> {
    if (this.#closed) return Promise.reject(Errors.Stopped());
    if (this.#confWaiters.has(member)) return Promise.reject(Errors.TooManyRequests());
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>();
    const deadline = performance.now() + this.#requestTimeoutMs;
    this.#confWaiters.set(member, { resolve, reject, deadline });
    const timer = setTimeout(() => {
      if (this.#confWaiters.get(member)?.resolve !== resolve) return;
      this.#confWaiters.delete(member);
      reject(Errors.Timeout());
    }, this.#requestTimeoutMs);
    try {
      this.#raw.proposeConfChange(change);
    } catch (err) {
      clearTimeout(timer);
      this.#confWaiters.delete(member);
      if (!(err instanceof ProposalDroppedError)) throw err;
      return Promise.reject(this.#raw.leader() === 0 ? Errors.NoLeader() : Errors.LeaderChanged());
    }
    this.#kick();
    return promise.then(() => clearTimeout(timer));
  }

  /** A conf change took effect: tell who waits for it; snapshot so a new member can catch up. */
  #confChanged(change: ConfChange, confState: ConfState, index: number): void {
    const membership = this.#applier.membership;
    // A follower ignores a snapshot whose membership does not list it, so a
    // member added here must be sent one taken at or after this index.
    if (index > this.#storage.snapshot().metadata.index) {
      this.#storage.createSnapshot(index, confState, new Uint8Array());
    }
    // A new member's log starts from the bootstrap base, and the bootstrap
    // membership is in no entry: it must start from a snapshot. Dropping
    // the in-memory log (not the WAL) makes the leader send one.
    if (change.type !== "removeNode") this.#compactForNewMember = true;
    for (const [id, w] of this.#confWaiters) {
      const m = membership.get(id);
      const done = change.type === "removeNode" ? m === undefined : m?.raftId === change.nodeId;
      if (!done) continue;
      this.#confWaiters.delete(id);
      w.resolve({ ok: { header: revisionHeader(0) } });
    }
    this.#fence.setClustered(!this.alone);
    this.#options.onMembership?.(membership);
  }

  /**
   * Raft installs a snapshot: replace the state machine with the store copy
   * that came with it.
   */
  #restore(snapshot: Snapshot): void {
    const { index } = snapshot.metadata;
    const file = this.#snapshotFiles.get(index);
    invariant(file !== undefined, "a snapshot is installed with the store copy it came with");
    invariant(
      this.#options.openStoreFile !== undefined,
      "a member that takes snapshots opens them",
    );
    for (const k of this.#snapshotFiles.keys()) if (k <= index) this.#snapshotFiles.delete(k);
    const source = this.#options.openStoreFile(file);
    let restored: { appliedIndex: number; committed: Promise<void> };
    try {
      restored = this.#applier.restore(source);
    } finally {
      void source.close();
    }
    invariant(restored.appliedIndex === index, "the store copy is at the snapshot's index");
    // The copy may hold auth changes this member never applied one by one.
    this.#fence.authChanged(index);
    this.#fence.acknowledge(Math.max(index, this.#fence.acknowledgedIndex));
    const revision = this.#applier.revision;
    const done = restored.committed.then(async () => {
      this.#fence.publish(index);
      for (const listener of this.#restoreListeners) listener(revision);
      await this.#backend.flushed();
      this.#durableIndex = Math.max(this.#durableIndex, index);
      // Kept until LMDB holds the restored state durably (a restart restores it again).
      this.#removeSnapshotFiles(index);
      this.#options.onSnapshotApplied?.({ index, term: snapshot.metadata.term, revision });
      this.#options.onMembership?.(this.#applier.membership);
    }, (err) => {
      this.#commitFailure ??= err;
      this.#options.onFailure?.(err);
    });
    this.#inflight.add(done);
    done.finally(() => this.#inflight.delete(done));
  }

  #removeSnapshotFiles(upTo: number): void {
    const dir = this.#options.snapDir;
    if (dir === undefined) return;
    try {
      for (const e of Deno.readDirSync(dir)) {
        const m = /^\d+-(\d+)\.snap$/.exec(e.name);
        if (m !== null && Number(m[1]) <= upTo) Deno.removeSync(`${dir}/${e.name}`);
      }
    } catch { /* the directory does not exist yet */ }
  }

  /**
   * The store copy to send with a MsgSnap (etcd's merged snapshot): a
   * consistent copy of the LMDB environment, and the message with the
   * snapshot metadata of that copy (its applied index and term, its
   * membership) in place of the Raft storage's.
   */
  async snapshotToSend(message: Message, dir: string): Promise<{ message: Message; file: string }> {
    const file = await this.#backend.copyTo(dir);
    invariant(
      this.#options.openStoreFile !== undefined,
      "a member that sends snapshots opens them",
    );
    const copy = this.#options.openStoreFile(file);
    try {
      const index = Number(copy.getMeta(Meta.appliedIndex));
      const term = Number(copy.getMeta(Meta.appliedTerm) ?? this.#storage.snapshot().metadata.term);
      const membership = copy.getMeta(Meta.membership);
      invariant(typeof membership === "string", "a store copy carries the membership");
      const confState = Membership.decode(membership).confState();
      return {
        message: {
          ...message,
          snapshot: { metadata: { index, term, confState }, data: new Uint8Array() },
        },
        file,
      };
    } finally {
      await copy.close();
    }
  }

  /**
   * Propose a write; resolves once its entry is durable in the WAL and
   * applied, with its response or the etcd error it produced.
   *
   * @throws {EtcdError} TooManyRequests when MAX_PENDING_PROPOSALS are
   *   waiting; Stopped after {@linkcode RaftNode.close} or a storage failure.
   */
  propose(request: InternalRequest): Promise<ApplyResult> {
    return this.proposeEncoded(encodeRequest(request));
  }

  /**
   * {@linkcode RaftNode.propose} for a request already encoded with
   * `encodeRequest` (a worker thread sends it so; the main thread never
   * decodes it before the applier does).
   *
   * @throws {EtcdError} as `propose`.
   */
  proposeEncoded(encoded: Uint8Array): Promise<ApplyResult> {
    if (this.#closed) return Promise.reject(Errors.Stopped());
    const failure = this.#failure ?? this.#commitFailure ?? this.#spaceLow;
    if (failure !== undefined) return Promise.reject(storageError(failure));
    if (this.#waiters.size >= MAX_PENDING_PROPOSALS) {
      return Promise.reject(Errors.TooManyRequests());
    }
    const id = this.#nextId++ * PROPOSER_BITS + (this.#id % PROPOSER_BITS);
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>();
    this.#waiters.set(id, {
      resolve,
      reject,
      deadline: performance.now() + this.#requestTimeoutMs,
    });
    this.#queue.push(entryData(id, encoded));
    this.#queuedIds.push(id);
    this.#kick();
    return promise;
  }

  /** Wait for the physical compaction in progress, if any. */
  compacted(): Promise<void> {
    return this.#compaction;
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    this.#idle = this.#run();
  }

  /** The Ready loop; runs while there is work. */
  async #run(): Promise<void> {
    // Let proposals made in this event-loop turn join the first Ready.
    await Promise.resolve();
    try {
      for (;;) {
        this.#proposeQueued();
        this.#readQueued();
        if (!this.#raw.hasReady()) break;
        const rd = this.#raw.ready();
        if (rd.softState !== undefined) this.#softState(rd.softState.lead);
        if (rd.hardState !== undefined) this.#fence.setTerm(rd.hardState.term);
        const pending = this.#ready.handle(rd);
        if (pending !== undefined) await pending;
        this.#retained(rd);
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#running = false;
    }
    // A proposal that arrived after the last hasReady() check.
    if (this.#queue.length > 0 && this.#failure === undefined) this.#kick();
  }

  /** Hand queued proposals to Raft, at most MAX_BATCH_ENTRIES per Ready. */
  #proposeQueued(): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue.length <= MAX_BATCH_ENTRIES
      ? this.#queue
      : this.#queue.slice(0, MAX_BATCH_ENTRIES);
    const ids = this.#queuedIds.slice(0, batch.length);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(MAX_BATCH_ENTRIES);
    this.#queuedIds = this.#queuedIds.slice(batch.length);
    try {
      this.#raw.proposeMany(batch);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      // No leader to take them (or a leader transfer is in progress).
      const reason = this.#raw.leader() === 0 ? Errors.NoLeader() : Errors.LeaderChanged();
      for (const id of ids) {
        this.#waiters.get(id)?.reject(reason);
        this.#waiters.delete(id);
      }
      metrics.proposalsFailed.inc(ids.length);
    }
  }

  /**
   * Send a ReadIndex request for the reads queued since the last one; one
   * at a time (etcd's read loop): reads that arrive meanwhile share the
   * next, so a heartbeat round serves all of them.
   */
  #readQueued(): void {
    if (this.#readQueue.length === 0 || this.#readRounds.size > 0) return;
    const waiters = this.#readQueue;
    this.#readQueue = [];
    if (this.#raw.leader() === 0) {
      metrics.readIndexesFailed.inc();
      for (const w of waiters) w.reject(Errors.NoLeader());
      return;
    }
    const now = performance.now();
    this.#sendReadIndex({ sent: now, deadline: now + this.#requestTimeoutMs, waiters });
  }

  #sendReadIndex(round: ReadRound): void {
    if (this.#readRounds.size >= MAX_PENDING_READ_INDEX) {
      for (const w of round.waiters) w.reject(Errors.TooManyRequests());
      return;
    }
    // A fresh context per attempt: a late answer to an earlier one is ignored.
    const ctx = new Uint8Array(12);
    const view = new DataView(ctx.buffer);
    view.setUint32(0, this.#id);
    view.setFloat64(4, ++this.#readSeq);
    const key = ctxKey(ctx);
    round.sent = performance.now();
    this.#readRounds.set(key, round);
    this.#raw.readIndex(ctx);
  }

  /** A read state whose index the applied index reached: its reads go on once it is visible. */
  #readState(state: ReadState): void {
    const key = ctxKey(state.requestCtx);
    const round = this.#readRounds.get(key);
    if (round === undefined) return; // answered already, or timed out
    this.#readRounds.delete(key);
    for (const w of round.waiters) w.resolve(state.index);
    // The reads that waited for this round go next.
    if (this.#readQueue.length > 0) this.#kick();
  }

  /** The leader changed (or is now known): leases follow leadership. */
  #softState(lead: number): void {
    if (lead === this.#leader) return;
    const wasLeader = this.#leader === this.#id;
    this.#leader = lead;
    // etcd counts a change each time a leader other than the last known one is seen.
    if (lead !== 0) metrics.leaderChanges.inc();
    metrics.hasLeader.set(lead !== 0 ? 1 : 0);
    metrics.isLeader.set(lead === this.#id ? 1 : 0);
    if (lead === this.#id) {
      // etcd's Promote: no lease expires for the time without a leader.
      this.lessor.promote(this.#options.electionMs ?? 1000);
      this.leases.start();
    } else if (wasLeader) this.#leases?.stop();
    this.#options.onLeaderChange?.(lead, this.#raw.status().hardState.term);
  }

  /**
   * Backpressure before a Ready's committed entries are applied: at most
   * MAX_INFLIGHT_BATCHES LMDB commits in flight, none while a failed one is
   * being committed again. Undefined when they may be applied now.
   *
   * @throws the failed commit's error when a close stopped its recovery.
   */
  #admit(): Promise<void> | undefined {
    if (this.#swapRequest !== undefined) return this.#swapPoint().then(() => this.#admit());
    if (this.#inflight.size >= MAX_INFLIGHT_BATCHES || this.#recovery !== undefined) {
      return this.#admitLater();
    }
    if (this.#commitFailure !== undefined) throw this.#commitFailure;
    return undefined;
  }

  async #admitLater(): Promise<void> {
    for (;;) {
      if (this.#inflight.size >= MAX_INFLIGHT_BATCHES) await Promise.race(this.#inflight);
      else if (this.#recovery !== undefined) await this.#recovery;
      else break;
    }
    if (this.#commitFailure !== undefined) throw this.#commitFailure; // closed while recovering
  }

  /** After a Ready: count the bytes its entries added to the log; compact the log. */
  #retained(rd: Ready): void {
    for (const e of rd.entries) this.#logBytes += e.data.length;
    if (this.#compactForNewMember) {
      this.#compactForNewMember = false;
      // Only entries LMDB holds durably: a failed commit re-applies from memory.
      const target = Math.min(this.#durableIndex, this.appliedIndex);
      if (target >= this.#storage.firstIndex()) this.#compactMemory(target);
    }
    this.#compactLog();
  }

  /**
   * Drop the in-memory log up to `target` (a follower that needs those
   * entries gets a snapshot for at least this index, sent as a copy of the
   * store with that copy's index and membership: snapshotToSend). The WAL
   * keeps them until {@linkcode RaftNode.#compactLog} releases them.
   */
  #compactMemory(target: number): void {
    for (const e of this.#storage.entries(this.#storage.firstIndex(), target + 1, Infinity)) {
      this.#logBytes -= e.data.length;
    }
    if (target > this.#storage.snapshot().metadata.index) {
      this.#storage.createSnapshot(target, this.#ready.confState, new Uint8Array());
    }
    this.#storage.compact(target);
  }

  /**
   * Answer a batch's proposals: their entries are durable in the WAL and
   * applied in memory. The fence makes every linearizable read wait until
   * the batch's transaction is visible.
   */
  #track(batch: AppliedBatch): void {
    if (this.#authChanged) {
      this.#authChanged = false;
      this.#fence.authChanged(batch.appliedIndex);
    }
    const answered = batch.results.size > 0;
    if (answered) this.#fence.acknowledge(batch.appliedIndex);
    for (const [id, result] of batch.results) {
      const waiter = this.#waiters.get(id);
      if (waiter === undefined) continue; // replayed, or proposed by an earlier run
      this.#waiters.delete(id);
      waiter.resolve(result);
    }
    // A member's attributes changed (conf changes are told in #confChanged).
    if (batch.membersUpdated) this.#options.onMembership?.(this.#applier.membership);
    const done = batch.committed.then(() => {
      this.#fence.publish(batch.appliedIndex);
      this.#announce(batch);
      for (const revision of batch.compactions) this.#scheduleCompaction(revision);
      // LMDB makes the commit durable in the background; once it is, the
      // WAL no longer needs the entries.
      this.#backend.flushed().then(() => {
        this.#durableIndex = Math.max(this.#durableIndex, batch.appliedIndex);
      }, () => {});
    }, (err) => {
      // The entries are durable in the WAL and answered; the state machine
      // must get them before anything else is applied or read.
      if (this.#commitFailure === undefined) {
        this.#commitFailure = err;
        this.#options.onFailure?.(err);
        // Proposals not yet in the log certainly fail; those in the log are
        // answered with their real result once their entries are applied.
        this.#rejectQueued(storageError(err));
      }
    });
    this.#inflight.add(done);
    done.finally(() => {
      this.#inflight.delete(done);
      const drained = this.#inflight.size === 0;
      if (this.#commitFailure !== undefined && this.#recovery === undefined && drained) {
        this.#recovery = this.#recommit().finally(() => this.#recovery = undefined);
      }
    });
  }

  /**
   * Compact the Raft log (memory and WAL segments) once --snapshot-count
   * entries were applied since its start, or it holds more than
   * MAX_RETAINED_LOG_BYTES: keep SNAPSHOT_CATCHUP_ENTRIES (at most
   * --snapshot-count) behind the applied index (none when over the byte
   * bound), and never drop an entry
   * LMDB has not made durable (a crash would need it for replay).
   */
  #compactLog(): void {
    const first = this.#storage.firstIndex();
    const applied = this.appliedIndex;
    const overBytes = this.#logBytes > MAX_RETAINED_LOG_BYTES;
    const snapshotCount = this.#options.snapshotCount ?? 100_000;
    if (!overBytes && applied - first < snapshotCount) return;
    const keep = overBytes ? 0 : Math.min(SNAPSHOT_CATCHUP_ENTRIES, snapshotCount);
    const target = Math.min(this.#durableIndex, applied - keep);
    if (target < first) return;
    this.#compactMemory(target);
    this.#wal.release(target);
    this.#options.onLogCompacted?.(target, applied);
  }

  /**
   * After a failed LMDB commit: apply again, from the state LMDB holds,
   * every committed entry it lacks, until a commit succeeds (space is back),
   * retrying every STORAGE_RETRY_MS. Writes are refused meanwhile; reads
   * wait for the acknowledged entries to become visible.
   */
  async #recommit(): Promise<void> {
    invariant(this.#inflight.size === 0, "no commit is in flight while recommitting");
    while (this.#commitFailure !== undefined) {
      if (this.#closed) return;
      this.#backend.refresh();
      this.#applier.reload();
      const from = this.#applier.appliedIndex + 1;
      const to = this.#raw.logView().applied;
      try {
        if (from <= to) {
          const batch = this.#applier.apply(this.#storage.entries(from, to + 1, Infinity));
          await batch.committed;
          this.#fence.publish(batch.appliedIndex);
          this.#announce(batch);
        }
        this.#commitFailure = undefined;
        if (this.#spaceLow === undefined) this.#options.onRecovered?.();
      } catch (err) {
        this.#options.onFailure?.(err);
        // First give LMDB the reserve's space; then wait for space to come back.
        if (this.#reserved && this.#options.reserveFile !== undefined) {
          Deno.removeSync(this.#options.reserveFile);
          this.#reserved = false;
          this.#spaceLow = err;
          this.#retryReserve();
        } else await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS));
      }
    }
  }

  /** Write the reserve file (if one is configured); false when it cannot be written. */
  async #reserve(): Promise<boolean> {
    const path = this.#options.reserveFile;
    if (path === undefined) return false;
    const size = this.#options.reserveBytes ?? DISK_RESERVE_BYTES;
    try {
      const file = await Deno.open(path, { create: true, write: true });
      try {
        await file.truncate(0);
        const zeros = new Uint8Array(Math.min(size, 1024 * 1024));
        for (let done = 0; done < size; done += zeros.length) {
          let n = 0;
          const chunk = zeros.subarray(0, Math.min(zeros.length, size - done));
          while (n < chunk.length) n += await file.write(chunk.subarray(n));
        }
        await file.sync();
      } finally {
        file.close();
      }
      this.#reserved = true;
      return true;
    } catch {
      try {
        Deno.removeSync(path);
      } catch { /* never created */ }
      return false;
    }
  }

  /** While writes are refused for lack of space: try to write the reserve again. */
  #retryReserve(): void {
    const timer = setTimeout(async () => {
      if (this.#closed) return;
      if (await this.#reserve()) {
        this.#spaceLow = undefined;
        this.#options.onRecovered?.();
      } else this.#retryReserve();
    }, STORAGE_RETRY_MS);
    Deno.unrefTimer(timer);
  }

  /** Reject the proposals not yet handed to Raft (they will never be applied). */
  #rejectQueued(err: unknown): void {
    for (const id of this.#queuedIds) {
      this.#waiters.get(id)?.reject(err);
      this.#waiters.delete(id);
    }
    metrics.proposalsFailed.inc(this.#queuedIds.length);
    this.#queue = [];
    this.#queuedIds = [];
  }

  /**
   * A WAL write failed: what it wrote is unknown until the WAL is read again
   * at the next start, so the member refuses further writes (reads go on:
   * nothing acknowledged is missing from the state machine). A restart
   * replays the WAL.
   */
  #fail(err: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = err;
    this.#options.onFailure?.(err);
    this.#rejectQueued(storageError(err));
    // The rest may be in the WAL or not, and a restart applies what is:
    // their outcome is unknown, which etcd reports as a timeout.
    for (const w of this.#waiters.values()) w.reject(Errors.Timeout());
    this.#waiters.clear();
  }

  #scheduleCompaction(revision: number): void {
    this.#compaction = this.#compaction
      .then(async () => {
        const start = performance.now();
        await compactHistory(this.#backend, revision);
        this.#options.onCompacted?.(revision, performance.now() - start);
      })
      .catch((err) => this.#options.onCompactionFailure?.(revision, err));
  }

  /**
   * Register the store's readers in other threads, suspended while
   * {@linkcode RaftNode.defragment} replaces the store's file. Returns the
   * function that unregisters them.
   */
  addStoreReaders(readers: StoreReaders): () => void {
    this.#storeReaders.add(readers);
    return () => this.#storeReaders.delete(readers);
  }

  /**
   * etcd's Defragment, without etcd's stop-the-world: a compacted copy of
   * the store is made while reads and writes go on (one LMDB read
   * transaction; free pages left out); then, at a point where no batch is
   * applying, the apply loop holds, the copy catches up by applying the
   * committed entries it lacks (from the in-memory log; when they are gone,
   * a second copy is made there), the other threads close the store, and
   * the copy's file takes the store's place. Reads and writes wait only for
   * that swap (`pauseMs`). A call while one runs shares it.
   *
   * @throws {EtcdError} Stopped when the node closes first; Unavailable
   *   when the node was opened without `defragDir`.
   * @throws {Error} what failed while copying or swapping (the store is
   *   left as it was, serving).
   */
  defragment(): Promise<DefragResult> {
    if (this.#closed) return Promise.reject(Errors.Stopped());
    return this.#defragging ??= this.#defragment().finally(() => {
      this.#defragging = undefined;
    });
  }

  async #defragment(): Promise<DefragResult> {
    const dir = this.#options.defragDir;
    const openStore = this.#options.openStore;
    if (dir === undefined || openStore === undefined) {
      throw new EtcdError("etcdserver: defragmentation is not available", GrpcCode.Unavailable);
    }
    // Readers still starting are waited for: one that opened the store
    // after the swap's suspension was sent would keep reading the old file.
    await Promise.all([...this.#storeReaders].map((r) => r.ready()));
    const before = this.#backend.size().dbSize;
    const started = performance.now();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    let copy: CatchingUpCopy | undefined;
    try {
      const file = await this.#backend.copyTo(dir, true);
      // Opened, and brought near the applied index, while the member serves.
      const store = openStore(dir);
      copy = {
        store,
        // A lessor of its own (renewals live in memory), with the member's
        // minimum TTL so that grants apply to the copy as to the store.
        applier: new Applier(store, new Lessor({ now: Date.now, minTtl: this.lessor.minTtl })),
        caughtUp: true,
      };
      copy.caughtUp = await this.#catchUp(copy);
      const done = Promise.withResolvers<{ pauseMs: number }>();
      this.#swapRequest = { file, dir, copy, done };
      if (!this.#running) {
        // The apply loop is idle: swap now, holding it off meanwhile.
        this.#running = true;
        try {
          await this.#swapPoint();
        } finally {
          this.#running = false;
        }
        if (this.#queue.length > 0 || this.#raw.hasReady()) this.#kick();
      }
      const { pauseMs } = await done.promise;
      return {
        sizeBefore: before,
        sizeAfter: this.#backend.size().dbSize,
        tookMs: performance.now() - started,
        pauseMs,
      };
    } finally {
      if (copy !== undefined && !copy.closed) await copy.store.close().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Swap in the requested compacted copy; called where no batch is being
   * applied (the apply loop's admission, or an idle loop held off). Never
   * rejects: the outcome settles the request.
   */
  async #swapPoint(): Promise<void> {
    const request = this.#swapRequest;
    if (request === undefined) return;
    this.#swapRequest = undefined;
    const paused = performance.now();
    try {
      // Every batch applied so far is committed, and no history removal runs.
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
      await this.#recovery;
      if (this.#commitFailure !== undefined) throw this.#commitFailure;
      await this.#compaction;
      const { copy } = request;
      let file = request.file;
      const caughtUp = copy.caughtUp && (await this.#catchUp(copy));
      copy.closed = true;
      await copy.store.close();
      if (!caughtUp) {
        // The entries the copy lacks are gone from memory: copy again, now
        // that nothing changes the store.
        await Deno.remove(request.dir, { recursive: true });
        file = await this.#backend.copyTo(request.dir, true);
      }
      const readers = [...this.#storeReaders];
      const suspended: StoreReaders[] = [];
      try {
        for (const r of readers) {
          await r.suspend();
          suspended.push(r);
        }
        await this.#backend.swapIn(file);
      } finally {
        for (const r of suspended) r.resume();
      }
      // History removal the copy had not caught up with resumes.
      const requested = Number(this.#backend.getMeta(Meta.compactRevision) ?? 0);
      const removed = Number(this.#backend.getMeta(Meta.compactDone) ?? 0);
      if (requested > removed) this.#scheduleCompaction(requested);
      request.done.resolve({ pauseMs: performance.now() - paused });
    } catch (err) {
      request.done.reject(err);
    }
  }

  /**
   * Bring `copy` up to the applied index by applying the committed entries
   * it lacks, from the in-memory log (entries are immutable once
   * committed, so this may run while the member serves). False when they
   * are no longer there (compacted away, or the store was replaced by a
   * snapshot meanwhile).
   */
  async #catchUp(copy: CatchingUpCopy): Promise<boolean> {
    const to = this.#applier.appliedIndex;
    for (let lo = copy.applier.appliedIndex + 1; lo <= to;) {
      if (lo < this.#storage.firstIndex()) return false;
      let entries: Entry[];
      try {
        entries = this.#storage.entries(lo, to + 1, MAX_CATCH_UP_BYTES);
      } catch {
        return false; // compacted meanwhile
      }
      await copy.applier.apply(entries).committed;
      lo = entries[entries.length - 1].index + 1;
    }
    return copy.applier.appliedIndex === to;
  }

  /** Stop taking proposals; finish the Ready in progress and the compaction; close the WAL. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#leases?.stop();
    await this.#idle;
    // A defragmentation waiting for the apply loop: the loop has stopped.
    this.#swapRequest?.done.reject(Errors.Stopped());
    this.#swapRequest = undefined;
    await this.#defragging?.catch(() => {});
    await Promise.allSettled([...this.#inflight]);
    await this.#recovery;
    await this.#compaction;
    await this.#wal.close();
  }
}

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function ctxKey(ctx: Uint8Array): string {
  let k = "";
  for (const b of ctx) k += String.fromCharCode(b);
  return k;
}
