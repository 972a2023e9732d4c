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
import type { Backend } from "../../core/backend.ts";
import { Errors, type EtcdError } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import {
  DISK_RESERVE_BYTES,
  MAX_BATCH_ENTRIES,
  MAX_INFLIGHT_BATCHES,
  MAX_PENDING_PROPOSALS,
  MAX_RETAINED_LOG_BYTES,
  SNAPSHOT_CATCHUP_ENTRIES,
  STORAGE_RETRY_MS,
} from "../../core/limits.ts";
import { compactHistory } from "../../core/mvcc/compact.ts";
import { Lessor } from "../../core/lease/mod.ts";
import { LeaseKeeper, type LeaseTtl } from "./lease_keeper.ts";
import { type Event, Meta } from "../../core/mvcc/view.ts";
import { Mulberry32 } from "../../core/raft/prng.ts";
import { RawNode } from "../../core/raft/raw_node.ts";
import { MemoryStorage } from "../../core/raft/storage.ts";
import type { Ready, SnapshotMetadata } from "../../core/raft/types.ts";
import { Wal } from "../../wal/wal.ts";
import { type AppliedBatch, Applier, type ApplyResult } from "./applier.ts";
import { ReadyHandler } from "./ready.ts";
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

/** The Raft node ID of a single member (etcd's 64-bit member IDs map onto it). */
const SINGLE_MEMBER_ID = 1;

/** Options of {@linkcode RaftNode.open}. */
export interface RaftNodeOptions {
  /** Directory of the WAL segments. */
  walDir: string;
  /** Milliseconds between Raft ticks (etcd's --heartbeat-interval). Default 100. */
  heartbeatMs?: number;
  /** Election timeout in milliseconds (etcd's --election-timeout). Default 1000. */
  electionMs?: number;
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
  /** Called when a WAL write or an LMDB commit fails (writes are refused from then on). */
  onFailure?: (err: unknown) => void;
  /** Called when removing history below a compacted revision failed (a restart resumes it). */
  onCompactionFailure?: (revision: number, err: unknown) => void;
  /** Called when a failed LMDB commit finally succeeded (writes are taken again). */
  onRecovered?: () => void;
}

interface Waiter {
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The Ready loop of one member (a single voter for now). Create with
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
    this.#ready = new ReadyHandler(raw, storage, {
      persistence: wal,
      transport: {
        send: (messages) =>
          invariant(
            messages.every((m) => m.to === SINGLE_MEMBER_ID),
            "a single voter sends no messages to peers",
          ),
      },
      stateMachine: {
        admit: () => this.#admit(),
        // Its LMDB commit overlaps the next Ready's WAL write.
        apply: (entries) => this.#track(this.#applier.apply(entries)),
        restore: () => invariant(false, "a single voter never receives a snapshot"),
      },
    });
    // Request IDs only need to be unique among this process's proposals.
    this.#nextId = Date.now() * 1000;
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
    const applier = new Applier(backend, options.lessor ?? new Lessor({ now: Date.now, minTtl }));
    const applied = applier.appliedIndex;
    // A new member's log starts after index 1, term 1, with itself as voter.
    // A store written before the WAL existed starts after its applied index.
    const initial: SnapshotMetadata = {
      index: Math.max(applied, 1),
      term: Number(backend.getMeta(Meta.term) ?? 1),
      confState: { voters: [SINGLE_MEMBER_ID], learners: [] },
    };
    const { wal, state } = await Wal.open(options.walDir, initial, {
      segmentBytes: options.walSegmentBytes,
    });
    const last = state.entries.at(-1)?.index ?? state.base.index;
    if (applied < state.base.index - (state.base.index === 1 ? 1 : 0) || applied > last) {
      await wal.close();
      throw new Error(
        `Cannot open store: applied index ${applied} is outside the WAL (entries ${state.base.index}..${last})`,
      );
    }
    const storage = new MemoryStorage();
    storage.applySnapshot({ metadata: state.base, data: new Uint8Array() });
    storage.append(state.entries);
    storage.setHardState(
      state.hardState.term > 0
        ? state.hardState
        : { term: state.base.term, vote: 0, commit: state.base.index },
    );
    const heartbeatMs = options.heartbeatMs ?? 100;
    const electionTick = Math.max(2, Math.round((options.electionMs ?? 1000) / heartbeatMs));
    const raw = new RawNode({
      id: SINGLE_MEMBER_ID,
      electionTick,
      heartbeatTick: 1,
      storage,
      prng: new Mulberry32(Date.now() >>> 0),
      applied: Math.max(applied, state.base.index),
      maxSizePerMsg: Number.MAX_SAFE_INTEGER,
      checkQuorum: true,
      preVote: true,
    });
    const node = new RaftNode(backend, raw, storage, wal, applier, options);
    for (const e of state.entries) node.#logBytes += e.data.length;
    // One voter: win the election now rather than after a timeout.
    raw.campaign();
    node.#kick();
    await node.#idle;
    await Promise.allSettled([...node.#inflight]);
    if (node.#failure !== undefined) {
      await node.close();
      throw node.#failure;
    }
    invariant(raw.isLeader(), "a single voter is leader after campaigning");
    await node.#reserve();
    const requested = Number(backend.getMeta(Meta.compactRevision) ?? 0);
    const done = Number(backend.getMeta(Meta.compactDone) ?? 0);
    if (requested > done) node.#scheduleCompaction(requested);
    const ticker = setInterval(() => {
      node.#raw.tick();
      if (node.#raw.hasReady()) node.#kick();
    }, heartbeatMs);
    Deno.unrefTimer(ticker);
    node.#ticker = ticker;
    // The leader expires and checkpoints leases.
    node.leases.start();
    return node;
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

  /** etcd's LeaseKeepAlive on the leader; see {@linkcode LeaseKeeper.renew}. */
  renewLease(id: bigint): Promise<number | undefined> {
    return Promise.resolve(this.leases.renew(id));
  }

  /** etcd's LeaseTimeToLive; see {@linkcode LeaseKeeper.timeToLive}. */
  leaseTimeToLive(id: bigint, keys: boolean): Promise<LeaseTtl | undefined> {
    return Promise.resolve(this.leases.timeToLive(id, keys));
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
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>();
    this.#waiters.set(id, { resolve, reject });
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
        if (!this.#raw.hasReady()) break;
        const rd = this.#raw.ready();
        invariant(rd.snapshot === undefined, "a single voter never receives a snapshot");
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
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(MAX_BATCH_ENTRIES);
    this.#queuedIds = this.#queuedIds.slice(batch.length);
    this.#raw.proposeMany(batch);
  }

  /**
   * Backpressure before a Ready's committed entries are applied: at most
   * MAX_INFLIGHT_BATCHES LMDB commits in flight, none while a failed one is
   * being committed again. Undefined when they may be applied now.
   *
   * @throws the failed commit's error when a close stopped its recovery.
   */
  #admit(): Promise<void> | undefined {
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
    this.#compactLog();
  }

  /**
   * Answer a batch's proposals: their entries are durable in the WAL and
   * applied in memory. The fence makes every linearizable read wait until
   * the batch's transaction is visible.
   */
  #track(batch: AppliedBatch): void {
    const answered = batch.results.size > 0;
    if (answered) this.#fence.acknowledge(batch.appliedIndex);
    for (const [id, result] of batch.results) {
      const waiter = this.#waiters.get(id);
      if (waiter === undefined) continue; // replayed, or proposed by an earlier run
      this.#waiters.delete(id);
      waiter.resolve(result);
    }
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
    for (const e of this.#storage.entries(first, target + 1, Infinity)) {
      this.#logBytes -= e.data.length;
    }
    this.#storage.compact(target);
    this.#wal.release(target);
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
      .then(() => compactHistory(this.#backend, revision))
      .catch((err) => this.#options.onCompactionFailure?.(revision, err));
  }

  /** Stop taking proposals; finish the Ready in progress and the compaction; close the WAL. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#leases?.stop();
    await this.#idle;
    await Promise.allSettled([...this.#inflight]);
    await this.#recovery;
    await this.#compaction;
    await this.#wal.close();
  }
}
