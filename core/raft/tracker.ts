/**
 * Leader-side bookkeeping of followers (etcd-raft `tracker/`): per-peer
 * `Progress` with the probe/replicate/snapshot flow-control states and the
 * `Inflights` window, plus the `ProgressTracker` that holds the membership
 * (voters, learners), counts votes and computes the quorum commit index.
 *
 * @module
 */

import { type ConfState, invariant, type NodeId } from "./types.ts";

/**
 * A bounded window of in-flight MsgApp messages to one follower (etcd
 * `Inflights`): each slot holds the last index of one message and its bytes.
 * Full when `maxCount` messages or `maxBytes` bytes are outstanding.
 */
export class Inflights {
  /** Max messages in flight. */
  readonly maxCount: number;
  /** Max payload bytes in flight; 0 = unlimited. */
  readonly maxBytes: number;
  #indexes: number[] = [];
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;

  /**
   * An empty window.
   * @throws {RaftInvariantError} if `maxCount` < 1.
   */
  constructor(maxCount: number, maxBytes: number) {
    invariant(maxCount > 0, "inflight window holds at least one message");
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  /** Number of messages in flight. */
  get count(): number {
    return this.#indexes.length - this.#head;
  }

  /** Bytes in flight. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records a message whose last entry is `index`, carrying `bytes` of payload. */
  add(index: number, bytes: number): void {
    invariant(!this.full(), "cannot add to a full inflight window");
    invariant(
      this.count === 0 || this.#indexes[this.#indexes.length - 1] < index,
      "inflight indexes increase",
    );
    this.#indexes.push(index);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
  }

  /** Frees every message whose last index is `<= to` (acknowledged). */
  freeLE(to: number): void {
    while (this.#head < this.#indexes.length && this.#indexes[this.#head] <= to) {
      this.#bytes -= this.#sizes[this.#head];
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#indexes.length) {
      this.#indexes = this.#indexes.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Whether no more messages may be sent. */
  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.#bytes >= this.maxBytes);
  }

  /** Empties the window. */
  reset(): void {
    this.#indexes = [];
    this.#sizes = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

/** Flow-control state of one follower (etcd `StateType` in tracker). */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * What the leader knows about one follower's log (etcd `tracker.Progress`).
 *
 * Invariant: `0 <= match < next`. All entries in `(match, next)` are in flight.
 * - probe: at most one MsgApp per heartbeat interval until the follower's
 *   log position is found;
 * - replicate: entries are streamed optimistically, bounded by `inflights`;
 * - snapshot: a snapshot at `pendingSnapshot` is in flight; MsgApp paused.
 */
export class Progress {
  /** Highest index known to be replicated on the follower. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  /** Flow-control state. */
  state: ProgressState = "probe";
  /** Index of the snapshot in flight (snapshot state), else 0. */
  pendingSnapshot = 0;
  /** Whether we heard from the follower since the last CheckQuorum round. */
  recentActive = false;
  /** Probe: a MsgApp was sent since the last heartbeat response; replicate: window full. */
  msgAppFlowPaused = false;
  /** Window of in-flight MsgApp (replicate state). */
  readonly inflights: Inflights;
  /** Whether the peer is a learner (non-voting). */
  isLearner: boolean;

  /** New progress in probe state, probing from `next`. */
  constructor(next: number, inflights: Inflights, isLearner: boolean) {
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  #resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Enters probe state; after a snapshot, resumes after the snapshot index. */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState("probe");
      this.next = this.match + 1;
    }
  }

  /** Enters replicate state (optimistic pipelining from `match + 1`). */
  becomeReplicate(): void {
    this.#resetState("replicate");
    this.next = this.match + 1;
  }

  /** Enters snapshot state for a snapshot at `snapshotIndex`. */
  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Accounts for a MsgApp carrying `entries` entries (`bytes` of payload)
   * starting at `next`.
   */
  updateOnEntriesSend(entries: number, bytes: number, next: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        const last = next + entries - 1;
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === "probe") {
      if (entries > 0) this.msgAppFlowPaused = true;
    } else {
      invariant(false, `MsgApp is not sent in state ${this.state}`);
    }
  }

  /** Handles an acknowledgement up to `n`; returns whether `match` advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejection of the MsgApp at `rejected`, with the follower's hint
   * `matchHint`. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false; // stale
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // stale
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether sending MsgApp to this follower is throttled. */
  isPaused(): boolean {
    if (this.state === "snapshot") return true;
    return this.msgAppFlowPaused;
  }
}

/** Outcome of an election tally. */
export type VoteResult = "pending" | "lost" | "won";

/**
 * Membership and progress of all peers (etcd `ProgressTracker`), with a
 * majority quorum over the voters. Single-server membership changes mean the
 * configuration is always one majority set (no joint configurations).
 */
export class ProgressTracker {
  /** IDs that vote (the majority configuration). */
  voters: Set<NodeId> = new Set();
  /** Non-voting members. */
  learners: Set<NodeId> = new Set();
  /** Progress of every member (voters and learners), keyed by ID. */
  progress: Map<NodeId, Progress> = new Map();
  /** Votes received in the current election. */
  votes: Map<NodeId, boolean> = new Map();
  /** Inflight window size for new progress. */
  readonly maxInflight: number;
  /** Inflight byte bound for new progress; 0 = unlimited. */
  readonly maxInflightBytes: number;

  /** An empty tracker; add members with `voters`/`learners` and `initProgress`. */
  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  /** Creates progress for a new peer with `next` as the first index to probe. */
  initProgress(id: NodeId, next: number, isLearner: boolean): Progress {
    const pr = new Progress(
      next,
      new Inflights(this.maxInflight, this.maxInflightBytes),
      isLearner,
    );
    this.progress.set(id, pr);
    return pr;
  }

  /** The membership as a `ConfState` (sorted IDs). */
  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  /** Whether `id` is a voter. */
  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  /** Whether this is a single-voter configuration. */
  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /**
   * The largest index acknowledged by a majority of voters (the quorum
   * commit index before the leader's term check). Returns 0 with no voters.
   */
  committed(): number {
    const n = this.voters.size;
    if (n === 0) return 0;
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    // With n voters, the (floor(n/2)+1)-th largest match is on a majority.
    return matches[Math.floor(n / 2)];
  }

  /** Clears the recorded votes. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Records `id`'s vote (the first vote of each node counts). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Tally of the votes among voters. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: this.voteResult((id) => this.votes.get(id)) };
  }

  /** Majority decision over voters given each voter's yes/no/unknown. */
  voteResult(vote: (id: NodeId) => boolean | undefined): VoteResult {
    const n = this.voters.size;
    if (n === 0) return "won"; // by convention, as etcd's empty MajorityConfig
    const q = Math.floor(n / 2) + 1;
    let yes = 0;
    let missing = 0;
    for (const id of this.voters) {
      const v = vote(id);
      if (v === true) yes++;
      else if (v === undefined) missing++;
    }
    if (yes >= q) return "won";
    if (yes + missing >= q) return "pending";
    return "lost";
  }

  /** Whether a quorum of voters was recently active (CheckQuorum). */
  quorumActive(self: NodeId): boolean {
    return this.voteResult((id) =>
      id === self || (this.progress.get(id)?.recentActive ?? false)
    ) === "won";
  }
}
