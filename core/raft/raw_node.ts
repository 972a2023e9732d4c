/**
 * `RawNode`: the application's handle on one Raft node (etcd-raft
 * `rawnode.go`). Not thread-safe, no I/O: feed it ticks, proposals and
 * messages; take a `Ready`; persist, send and apply it; then `advance()`.
 * See core/raft/README.md for the required order.
 *
 * @example
 * ```ts
 * const storage = new MemoryStorage();
 * const node = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, prng: new Mulberry32(1) });
 * node.tick();
 * if (node.hasReady()) {
 *   const rd = node.ready();
 *   // persist rd.entries / rd.hardState / rd.snapshot, send rd.messages,
 *   // apply rd.snapshot and rd.committedEntries
 *   node.advance();
 * }
 * ```
 *
 * @module
 */

import { Raft, type RaftConfig } from "./raft.ts";
import type { ProgressState } from "./tracker.ts";
import {
  type ConfChange,
  type ConfState,
  encodeConfChange,
  type HardState,
  invariant,
  isLocalMsg,
  isResponseMsg,
  type Message,
  msg,
  type NodeId,
  NONE,
  type Ready,
  type SoftState,
  StepLocalMsgError,
} from "./types.ts";

/** Per-follower replication status as seen by a leader. */
export interface ProgressStatus {
  /** Highest index known replicated on the member. */
  match: number;
  /** Next index to send. */
  next: number;
  /** Flow-control state. */
  state: ProgressState;
  /** Whether the member is a learner. */
  isLearner: boolean;
  /** Heard from since the last CheckQuorum round. */
  recentActive: boolean;
}

/** A snapshot of a node's Raft status (etcd-raft `Status`). */
export interface Status {
  /** The node's ID. */
  id: NodeId;
  /** Term, vote and commit index. */
  hardState: HardState;
  /** Known leader and role. */
  softState: SoftState;
  /** Applied index acknowledged through `advance()`. */
  applied: number;
  /** Target of an in-progress leader transfer, or NONE. */
  leadTransferee: NodeId;
  /** Only on the leader: progress of every member, keyed by ID. */
  progress: Map<NodeId, ProgressStatus>;
}

/** Read-only view of the in-memory log, for tests and invariant checks. */
export interface LogView {
  /** Index of the first available entry. */
  firstIndex(): number;
  /** Index of the last entry (durable or not). */
  lastIndex(): number;
  /** Term of entry `i`, or undefined when compacted or beyond the last index. */
  term(i: number): number | undefined;
  /** Commit index. */
  committed: number;
  /** Applied index. */
  applied: number;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The RawNode API (tick/step/propose/ready/advance). All methods are
 * synchronous; `ready()` must be followed by `advance()` before the next
 * `ready()`.
 */
export class RawNode {
  readonly #raft: Raft;
  #prevSoft: SoftState;
  #prevHard: HardState;
  #pending: Ready | undefined = undefined;

  /**
   * Creates a node from persisted state in `config.storage` (an empty
   * storage starts a node with no log; its membership comes from the
   * storage's snapshot ConfState, or later from the leader).
   * @throws {RaftInvariantError} on an invalid config or inconsistent storage.
   */
  constructor(config: RaftConfig) {
    this.#raft = new Raft(config);
    this.#prevSoft = this.#raft.softState();
    this.#prevHard = this.#raft.hardState();
  }

  /** The underlying state machine (for scenario tests; not for servers). */
  get raft(): Raft {
    return this.#raft;
  }

  /** Advances logical time by one tick (heartbeat or election timer). */
  tick(): void {
    this.#raft.tick();
  }

  /** Starts an election now (or a pre-election with PreVote), as if the election timer fired. */
  campaign(): void {
    this.#raft.step(msg({ type: "MsgHup", from: this.#raft.id }));
  }

  /**
   * Proposes `data` for appending to the log. A follower forwards it to the
   * leader; the proposal may still be lost, so callers wait for the entry to
   * be applied, with a timeout.
   * @throws {ProposalDroppedError} with no known leader, during a leader
   * transfer, or when the uncommitted log size bound is reached.
   */
  propose(data: Uint8Array): void {
    this.#raft.step(msg({
      type: "MsgProp",
      from: this.#raft.id,
      entries: [{ term: 0, index: 0, type: "normal", data }],
    }));
  }

  /**
   * Proposes several entries at once, in order, as one MsgProp (etcd batches
   * proposals the same way): one append and one commit check for the batch.
   * @throws {ProposalDroppedError} as `propose`; then none of them is appended.
   */
  proposeMany(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    this.#raft.step(msg({
      type: "MsgProp",
      from: this.#raft.id,
      entries: data.map((d) => ({ term: 0, index: 0, type: "normal" as const, data: d })),
    }));
  }

  /**
   * Proposes a single-server membership change. Only one change may be
   * pending: the leader turns a second one (or an invalid one) into a no-op
   * entry. Apply it with `applyConfChange` when it is committed.
   * @throws {ProposalDroppedError} as `propose`.
   */
  proposeConfChange(cc: ConfChange): void {
    this.#raft.step(msg({
      type: "MsgProp",
      from: this.#raft.id,
      entries: [{ term: 0, index: 0, type: "confChange", data: encodeConfChange(cc) }],
    }));
  }

  /**
   * Applies a committed conf change to the membership (call while applying
   * its entry). Returns the resulting `ConfState`, to store with snapshots.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.#raft.applyConfChange(cc);
  }

  /**
   * Steps a message received from a peer.
   * @throws {StepLocalMsgError} for local-only message types.
   * @throws {ProposalDroppedError} for a forwarded proposal the leader cannot take.
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw new StepLocalMsgError(m.type);
    if (isResponseMsg(m.type) && !this.#raft.trk.progress.has(m.from)) {
      return; // response from a peer that is not (or no longer) a member
    }
    this.#raft.step(m);
  }

  /**
   * Requests a linearizable read (ReadIndex, thesis §6.4). When confirmed, a
   * `ReadState` with the same `context` appears in a later Ready; the read is
   * served once applied >= its index. Use a fresh context per attempt.
   * Followers forward to the leader; without a leader the request is dropped
   * silently, and the caller retries on timeout.
   */
  readIndex(context: Uint8Array): void {
    this.#raft.step(msg({ type: "MsgReadIndex", context }));
  }

  /**
   * Asks the leader to hand leadership to `transferee` (thesis §3.10). The
   * leader brings it up to date, then sends MsgTimeoutNow; proposals are
   * dropped meanwhile, and the transfer aborts after an election timeout.
   */
  transferLeader(transferee: NodeId): void {
    this.#raft.step(msg({ type: "MsgTransferLeader", from: transferee }));
  }

  /** Tells the leader that sending to `id` failed (its progress drops to probe). */
  reportUnreachable(id: NodeId): void {
    this.#raft.step(msg({ type: "MsgUnreachable", from: id }));
  }

  /** Tells the leader whether a snapshot sent to `id` was delivered (`failed` = true if not). */
  reportSnapshot(id: NodeId, failed: boolean): void {
    this.#raft.step(msg({ type: "MsgSnapStatus", from: id, reject: failed }));
  }

  /** Whether `ready()` would return anything to do. */
  hasReady(): boolean {
    const r = this.#raft;
    const soft = r.softState();
    if (soft.lead !== this.#prevSoft.lead || soft.raftState !== this.#prevSoft.raftState) {
      return true;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.#prevHard)) return true;
    if (r.log.unstable.snapshot !== undefined) return true;
    if (r.log.unstable.entries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEnts();
  }

  /**
   * Returns the work accumulated since the last `advance()`.
   * @throws {RaftInvariantError} if the previous Ready was not advanced.
   */
  ready(): Ready {
    invariant(this.#pending === undefined, "advance() is called before the next ready()");
    const r = this.#raft;
    const rd: Ready = {
      readStates: r.readStates,
      entries: [...r.log.unstable.entries],
      committedEntries: r.log.nextCommittedEnts(),
      messages: r.msgs,
      mustSync: false,
    };
    const soft = r.softState();
    if (soft.lead !== this.#prevSoft.lead || soft.raftState !== this.#prevSoft.raftState) {
      rd.softState = soft;
      this.#prevSoft = soft;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.#prevHard)) {
      rd.hardState = hs;
    }
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot;
    rd.mustSync = rd.entries.length > 0 || hs.term !== this.#prevHard.term ||
      hs.vote !== this.#prevHard.vote;
    this.#prevHard = hs;
    // Accept the Ready: its messages and read states are now the application's.
    r.msgs = [];
    r.readStates = [];
    if (rd.committedEntries.length > 0) {
      r.log.acceptApplying(rd.committedEntries[rd.committedEntries.length - 1].index);
      r.reduceUncommittedSize(rd.committedEntries);
    }
    this.#pending = rd;
    return rd;
  }

  /**
   * Acknowledges the last Ready: its entries/snapshot are durable and its
   * snapshot and committed entries are applied.
   * @throws {RaftInvariantError} if there is no outstanding Ready.
   */
  advance(): void {
    const rd = this.#pending;
    invariant(rd !== undefined, "advance() follows a ready()");
    this.#pending = undefined;
    const log = this.#raft.log;
    if (rd.snapshot) log.unstable.stableSnapTo(rd.snapshot.metadata.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      log.unstable.stableTo(last.index, last.term);
    }
    let applied = 0;
    if (rd.committedEntries.length > 0) {
      applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    } else if (rd.snapshot) applied = rd.snapshot.metadata.index;
    if (applied > 0) log.appliedTo(applied);
  }

  /** A snapshot of this node's status; `progress` is filled only on the leader. */
  status(): Status {
    const r = this.#raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.state === "leader") {
      for (const [id, pr] of r.trk.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
        });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  /** Read-only view of the log (durable + unstable), for invariant checks. */
  logView(): LogView {
    const log = this.#raft.log;
    return {
      firstIndex: () => log.firstIndex(),
      lastIndex: () => log.lastIndex(),
      term: (i) => log.term(i),
      get committed() {
        return log.committed;
      },
      get applied() {
        return log.applied;
      },
    };
  }

  /** The membership currently in effect on this node. */
  confState(): ConfState {
    return this.#raft.trk.confState();
  }

  /** Whether this node believes it is the leader. */
  isLeader(): boolean {
    return this.#raft.state === "leader";
  }

  /** The leader this node follows, or NONE. */
  leader(): NodeId {
    return this.#raft.lead === NONE ? NONE : this.#raft.lead;
  }
}
