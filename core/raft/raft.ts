/**
 * The Raft state machine (etcd-raft `raft.go`): `step` handles terms, then
 * dispatches to `#stepLeader`, `#stepCandidate` or `#stepFollower`. No I/O,
 * no clock (time is `tick()`), no global randomness (an injected `Prng`).
 * Output accumulates in `msgs` and `readStates`, and in the log's unstable
 * part; `RawNode` turns them into `Ready` batches.
 *
 * @module
 */

import { RaftLog } from "./log.ts";
import type { Mutant } from "./mutant.ts";
import type { Prng } from "./prng.ts";
import { ReadOnly } from "./read_only.ts";
import { CompactedError, SnapshotTemporarilyUnavailableError, type Storage } from "./storage.ts";
import { type Progress, ProgressTracker } from "./tracker.ts";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type HardState,
  invariant,
  type Message,
  type MessageType,
  msg,
  type NodeId,
  NONE,
  payloadsSize,
  ProposalDroppedError,
  type RaftEvent,
  type ReadState,
  type Snapshot,
  type SoftState,
  type StateType,
} from "./types.ts";

/** Configuration of one Raft node (etcd-raft `Config`). */
export interface RaftConfig {
  /** This node's ID; must be non-zero. */
  id: NodeId;
  /**
   * Ticks without hearing from a leader before a follower campaigns; the
   * actual timeout is randomized in `[electionTick, 2*electionTick)`.
   * Must be greater than `heartbeatTick` (etcd suggests 10x).
   */
  electionTick: number;
  /** Ticks between leader heartbeats. */
  heartbeatTick: number;
  /** Durable log and state. */
  storage: Storage;
  /** Randomness for election timeouts. */
  prng: Prng;
  /** Last applied index on restart (entries up to it are not re-delivered). */
  applied?: number;
  /** Max bytes of entries per MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries per Ready. Default `maxSizePerMsg`. */
  maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted entry payloads on a leader; proposals beyond it are dropped. Default unlimited. */
  maxUncommittedEntriesSize?: number;
  /** Max MsgApp messages in flight per follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Max payload bytes in flight per follower; 0 = unlimited. Default 0. */
  maxInflightBytes?: number;
  /** Leader steps down without a live quorum over an election timeout (etcd `CheckQuorum`). */
  checkQuorum?: boolean;
  /** Run a pre-election before raising the term (thesis §9.6, etcd `PreVote`). */
  preVote?: boolean;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** A deliberate bug for the simulator; never set outside tests. */
  mutant?: Mutant;
  /** Told of role changes and elections, for the server's log; nothing depends on it. */
  onEvent?: (event: RaftEvent) => void;
}

/** Why a campaign starts (etcd `CampaignType`). */
type CampaignType = "preElection" | "election" | "transfer";

/**
 * The Raft protocol state of one node. Use through `RawNode`; exposed for
 * tests that need to drive a node message by message.
 */
export class Raft {
  /** This node's ID. */
  readonly id: NodeId;
  /** Current term (persisted). */
  term = 0;
  /** Vote in the current term, or NONE (persisted). */
  vote: NodeId = NONE;
  /** Confirmed ReadIndex results for the next Ready. */
  readStates: ReadState[] = [];
  /** The log: durable entries plus the unstable tail. */
  readonly log: RaftLog;
  /** Membership and per-peer progress. */
  trk: ProgressTracker;
  /** Current role. */
  state: StateType = "follower";
  /** Whether this node is a learner in its own configuration. */
  isLearner = false;
  /** Outgoing messages for the next Ready. */
  msgs: Message[] = [];
  /** The leader this node knows for the current term, or NONE. */
  lead: NodeId = NONE;
  /** Target of an in-progress leader transfer, or NONE. */
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change proposed by this leader; one may be pending (applied < it). */
  pendingConfIndex = 0;
  /** Payload bytes of uncommitted entries in this leader's log. */
  uncommittedSize = 0;
  /** Pending ReadIndex requests (leader). */
  readOnly: ReadOnly = new ReadOnly();
  /** ReadIndex requests waiting for a current-term commit. */
  pendingReadIndexMessages: Message[] = [];
  /** Ticks since the last election timer reset (or, on a leader, since the last CheckQuorum). */
  electionElapsed = 0;
  /** Ticks since the last heartbeat (leader). */
  heartbeatElapsed = 0;
  /** This term's election timeout in ticks, in [electionTimeout, 2*electionTimeout). */
  randomizedElectionTimeout = 0;
  /** See `RaftConfig.checkQuorum`. */
  readonly checkQuorum: boolean;
  /** See `RaftConfig.preVote`. */
  readonly preVote: boolean;
  /** Heartbeat interval in ticks. */
  readonly heartbeatTimeout: number;
  /** Base election timeout in ticks. */
  readonly electionTimeout: number;
  /** Max bytes of entries per MsgApp. */
  readonly maxMsgSize: number;
  /** Max payload bytes of uncommitted entries on a leader. */
  readonly maxUncommittedSize: number;
  /** See `RaftConfig.disableProposalForwarding`. */
  readonly disableProposalForwarding: boolean;
  /** The deliberate bug switched on, if any (simulator only). */
  readonly mutant: Mutant | undefined;
  readonly #prng: Prng;
  readonly #onEvent: ((event: RaftEvent) => void) | undefined;

  /**
   * @throws {RaftInvariantError} on an invalid config or inconsistent storage.
   */
  /** Creates a follower from the state persisted in `c.storage`. */
  constructor(c: RaftConfig) {
    invariant(c.id !== NONE, "node id is not NONE");
    invariant(c.heartbeatTick > 0, "heartbeatTick > 0");
    invariant(c.electionTick > c.heartbeatTick, "electionTick > heartbeatTick");
    this.id = c.id;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.log = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? this.maxMsgSize);
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? 256, c.maxInflightBytes ?? 0);
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? Number.POSITIVE_INFINITY;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.mutant = c.mutant;
    this.#prng = c.prng;
    this.#onEvent = c.onEvent;

    const { hardState, confState } = c.storage.initialState();
    this.#restoreConf(confState);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) {
      this.#loadState(hardState);
    }
    if (c.applied !== undefined && c.applied > 0) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  /** Current soft state. */
  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** Current hard state. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  #loadState(hs: HardState): void {
    invariant(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      `persisted commit ${hs.commit} within [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  #restoreConf(cs: ConfState): void {
    this.trk = new ProgressTracker(this.trk.maxInflight, this.trk.maxInflightBytes);
    const next = this.log.lastIndex() + 1;
    for (const id of cs.voters) {
      this.trk.voters.add(id);
      this.trk.initProgress(id, next, false);
    }
    for (const id of cs.learners) {
      invariant(!this.trk.voters.has(id), `node ${id} is not both voter and learner`);
      this.trk.learners.add(id);
      this.trk.initProgress(id, next, true);
    }
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
  }

  /** Whether this node may campaign: it is a voter and has no snapshot pending. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  // ---- sending -------------------------------------------------------------

  #send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === "MsgVote" || m.type === "MsgVoteResp" || m.type === "MsgPreVote" ||
      m.type === "MsgPreVoteResp"
    ) {
      invariant(m.term !== 0, `${m.type} carries a term`);
    } else {
      invariant(m.term === 0, `${m.type} term is set by send`);
      // Proposals and ReadIndex forwarded to the leader are local (term 0).
      if (m.type !== "MsgProp" && m.type !== "MsgReadIndex") m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends MsgApp (or MsgSnap) to `to` if flow control allows; etcd `maybeSendAppend`. */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        // A throttled replicate stream sends only an empty MsgApp: if every
        // in-flight message was lost, its ack or rejection frees the window.
        ents = pr.state === "replicate" && pr.inflights.full()
          ? []
          : this.log.entries(pr.next, this.maxMsgSize);
      } catch (e) {
        if (!(e instanceof CompactedError)) throw e;
      }
    }
    if (prevTerm === undefined || ents === undefined) return this.#maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.#send(msg({
      type: "MsgApp",
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    }));
    pr.updateOnEntriesSend(ents.length, payloadsSize(ents), pr.next);
    return true;
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false; // wait until the follower is known to be up
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    invariant(snapshot.metadata.index > 0, "a compacted log has a non-empty snapshot");
    pr.becomeSnapshot(snapshot.metadata.index);
    this.#send(msg({ type: "MsgSnap", to, snapshot }));
    return true;
  }

  #sendAppend(to: NodeId): void {
    this.#maybeSendAppend(to, true);
  }

  #sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    if (!pr) return;
    // A follower may not yet have the leader's committed entries; never tell it
    // to commit beyond what it is known to store.
    const commit = Math.min(pr.match, this.log.committed);
    this.#send(msg({ type: "MsgHeartbeat", to, commit, context: ctx }));
  }

  /** Sends MsgApp to every peer (etcd `bcastAppend`). */
  #bcastAppend(): void {
    for (const id of this.trk.progress.keys()) {
      if (id !== this.id) this.#sendAppend(id);
    }
  }

  #bcastHeartbeat(): void {
    this.#bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  #bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.trk.progress.keys()) {
      if (id !== this.id) this.#sendHeartbeat(id, ctx);
    }
  }

  // ---- commit and append -----------------------------------------------------

  /** Advances the commit index to the quorum match index if it is of the current term. */
  #maybeCommit(): boolean {
    return this.log.maybeCommit(
      this.trk.committed(),
      this.term,
      this.mutant === "commit-previous-term",
    );
  }

  #appendEntry(es: Entry[]): boolean {
    let li = this.log.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i].term = this.term;
      es[i].index = li + 1 + i;
    }
    if (!this.#increaseUncommittedSize(es)) return false;
    li = this.log.append(es);
    // The leader's own log counts as one replica (it persists before sending).
    this.trk.progress.get(this.id)?.maybeUpdate(li);
    this.#maybeCommit();
    return true;
  }

  #increaseUncommittedSize(ents: Entry[]): boolean {
    const s = payloadsSize(ents);
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) {
      return false;
    }
    this.uncommittedSize += s;
    return true;
  }

  /** Accounts for committed entries handed to the application. */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSize === 0) return;
    const s = payloadsSize(ents);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---- role changes ----------------------------------------------------------

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.#prng.intn(this.electionTimeout);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of [...this.trk.progress]) {
      const np = this.trk.initProgress(id, last + 1, pr.isLearner);
      if (id === this.id) np.match = last;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  /** Becomes a follower of `lead` in `term`. */
  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.lead = lead;
    this.state = "follower";
    this.#onEvent?.({ type: "became", state: "follower", term: this.term });
  }

  /** Becomes a candidate: new term, votes for itself. */
  becomeCandidate(): void {
    invariant(this.state !== "leader", "a leader does not become candidate directly");
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.state = "candidate";
    this.#onEvent?.({ type: "became", state: "candidate", term: this.term });
  }

  /** Becomes a pre-candidate: neither term nor vote changes (thesis §9.6). */
  becomePreCandidate(): void {
    invariant(this.state !== "leader", "a leader does not become pre-candidate");
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = "preCandidate";
    this.#onEvent?.({ type: "became", state: "preCandidate", term: this.term });
  }

  /** Becomes leader and appends the no-op entry of its term (§5.4.2, §8). */
  becomeLeader(): void {
    invariant(this.state !== "follower", "a follower does not become leader directly");
    this.#reset(this.term);
    this.lead = this.id;
    this.state = "leader";
    const self = this.trk.progress.get(this.id);
    invariant(self !== undefined, "a leader is in its own configuration");
    self.becomeReplicate();
    self.recentActive = true;
    // No conf change may be proposed until everything before this term is
    // applied (etcd: pendingConfIndex = lastIndex). This also closes the
    // single-server membership-change bug Ongaro describes.
    this.pendingConfIndex = this.log.lastIndex();
    const ok = this.#appendEntry([{ term: 0, index: 0, type: "normal", data: new Uint8Array() }]);
    invariant(ok, "the empty leader entry is always accepted");
    this.uncommittedSize = 0; // the no-op is not counted
    this.#onEvent?.({ type: "became", state: "leader", term: this.term });
  }

  #hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    const ents = this.log.slice(lo, this.log.committed + 1, Number.POSITIVE_INFINITY);
    return ents.some((e) => e.type === "confChange");
  }

  #hup(t: CampaignType): void {
    if (this.state === "leader") return;
    if (!this.promotable()) return;
    if (this.#hasUnappliedConfChanges()) return; // wait until the config in effect is known
    this.#onEvent?.({ type: "campaign", term: this.term });
    this.#campaign(t);
  }

  #campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === "preElection") {
      this.becomePreCandidate();
      voteMsg = "MsgPreVote";
      term = this.term + 1; // the term we would campaign in; our term is unchanged
    } else {
      this.becomeCandidate();
      voteMsg = "MsgVote";
      term = this.term;
    }
    if (this.#poll(this.id, true) === "won") {
      // Single-voter configuration.
      if (t === "preElection") this.#campaign("election");
      else this.becomeLeader();
      return;
    }
    const ids = [...this.trk.voters].sort((a, b) => a - b);
    for (const id of ids) {
      if (id === this.id) continue;
      this.#send(msg({
        type: voteMsg,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        transfer: t === "transfer" ? true : undefined,
      }));
    }
  }

  #poll(id: NodeId, granted: boolean): "pending" | "lost" | "won" {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- step ----------------------------------------------------------------

  /**
   * Processes one message (from the network, or local: MsgHup, MsgBeat,
   * MsgProp, MsgReadIndex...). Term handling first (§5.1), then the role's
   * step function.
   * @throws {ProposalDroppedError} when a proposal (MsgProp) cannot be accepted.
   */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const force = m.transfer === true;
        const inLease = this.checkQuorum && this.lead !== NONE &&
          this.electionElapsed < this.electionTimeout;
        // With CheckQuorum, a node that heard from a live leader within the
        // election timeout ignores (pre)votes: a rejoining node must not
        // disrupt a healthy leader (§4.2.3).
        if (!force && inLease) return;
      }
      if (m.type === "MsgPreVote") {
        // Never change term in response to a PreVote.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // A granted pre-vote carries the future term; we only adopt it when we
        // win the pre-election.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term && this.mutant !== "no-term-check") {
      if (
        (this.checkQuorum || this.preVote) && (m.type === "MsgHeartbeat" || m.type === "MsgApp")
      ) {
        // A leader partitioned away would never learn of the higher term with
        // CheckQuorum/PreVote (no disruptive votes reach it); tell it.
        this.#send(msg({ type: "MsgAppResp", to: m.from }));
      } else if (m.type === "MsgPreVote") {
        this.#send(msg({ type: "MsgPreVoteResp", to: m.from, term: this.term, reject: true }));
      }
      return; // ignore other stale messages
    }

    switch (m.type) {
      case "MsgHup":
        this.#hup(this.preVote ? "preElection" : "election");
        return;
      case "MsgVote":
      case "MsgPreVote":
        this.#handleVoteRequest(m);
        return;
      default:
        break;
    }
    if (this.state === "leader") this.#stepLeader(m);
    else if (this.state === "follower") this.#stepFollower(m);
    else this.#stepCandidate(m);
  }

  #handleVoteRequest(m: Message): void {
    // We can vote if this is a repeat of a vote we already cast, or we have
    // not voted and know no leader in this term, or it is a PreVote for a
    // future term...
    const canVote = this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === "MsgPreVote" && m.term > this.term);
    // ...and the candidate's log is at least as up to date as ours (§5.4.1).
    const upToDate = this.mutant === "no-up-to-date-check" ||
      this.log.isUpToDate(m.index, m.logTerm);
    const respType: MessageType = m.type === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp";
    if (canVote && upToDate) {
      // The response carries the request's term: a granted PreVote is for a
      // term we have not adopted.
      this.#send(msg({ type: respType, to: m.from, term: m.term }));
      if (m.type === "MsgVote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.#send(msg({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case "MsgBeat":
        this.#bcastHeartbeat();
        return;
      case "MsgCheckQuorum":
        if (!this.trk.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
        // Mark everyone (but ourselves) inactive for the next round.
        for (const [id, pr] of this.trk.progress) {
          if (id !== this.id) pr.recentActive = false;
        }
        return;
      case "MsgProp":
        this.#handleProposal(m);
        return;
      case "MsgReadIndex":
        this.#handleReadIndex(m);
        return;
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case "MsgAppResp":
        this.#handleAppendResponse(m, pr);
        return;
      case "MsgHeartbeatResp":
        this.#handleHeartbeatResponse(m, pr);
        return;
      case "MsgSnapStatus":
        if (pr.state !== "snapshot") return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a MsgAppResp/MsgHeartbeatResp before probing again.
        pr.msgAppFlowPaused = true;
        return;
      case "MsgUnreachable":
        if (pr.state === "replicate") pr.becomeProbe();
        return;
      case "MsgTransferLeader":
        this.#handleTransferLeader(m, pr);
        return;
      default:
        return;
    }
  }

  #handleProposal(m: Message): void {
    invariant(m.entries.length > 0, "a proposal carries entries");
    if (!this.trk.progress.has(this.id)) {
      throw new ProposalDroppedError("this leader was removed from the configuration");
    }
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(`leader transfer to ${this.leadTransferee} in progress`);
    }
    const ents = m.entries.map((e) => ({ ...e }));
    for (let i = 0; i < ents.length; i++) {
      if (ents[i].type !== "confChange") continue;
      let refused = "";
      if (this.pendingConfIndex > this.log.applied) {
        refused = "a conf change is already pending";
      } else {
        refused = this.#validateConfChange(decodeConfChange(ents[i].data));
      }
      if (refused !== "") {
        // Keep the entry's slot but make it a no-op (etcd behaviour).
        ents[i] = { term: 0, index: 0, type: "normal", data: new Uint8Array() };
      } else {
        this.pendingConfIndex = this.log.lastIndex() + i + 1;
      }
    }
    if (!this.#appendEntry(ents)) {
      throw new ProposalDroppedError("uncommitted log size limit reached");
    }
    this.#bcastAppend();
  }

  /** Returns "" if `cc` is a valid single-server change of the current configuration, else why not. */
  #validateConfChange(cc: ConfChange): string {
    const voters = new Set(this.trk.voters);
    const learners = new Set(this.trk.learners);
    applyToSets(cc, voters, learners);
    if (voters.size === 0) return "removing all voters";
    let changed = 0;
    for (const v of voters) if (!this.trk.voters.has(v)) changed++;
    for (const v of this.trk.voters) if (!voters.has(v)) changed++;
    if (changed > 1) return "more than one voter changed";
    return "";
  }

  #handleReadIndex(m: Message): void {
    if (this.trk.isSingleton()) {
      this.#respondToReadIndex(m, this.log.committed);
      return;
    }
    // The leader's commit index is only known to be current once an entry of
    // its own term is committed (thesis §6.4, step 1).
    if (!this.#committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.#sendReadIndexHeartbeats(m);
  }

  #sendReadIndexHeartbeats(m: Message): void {
    this.readOnly.addRequest(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.#bcastHeartbeatWithCtx(m.context);
  }

  #committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  #releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.#committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.#sendReadIndexHeartbeats(m);
  }

  #respondToReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: req.context ?? new Uint8Array() });
      return;
    }
    this.#send(msg({ type: "MsgReadIndexResp", to: req.from, index, context: req.context }));
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking: skip all entries of the follower's conflicting term.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === "probe")) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up through the snapshot; resume replication.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.index);
    }
    if (this.#maybeCommit()) {
      this.#releasePendingReadIndexMessages();
      this.#bcastAppend();
    } else if (oldPaused) {
      this.#sendAppend(m.from);
    }
    // Keep the pipe full while the window allows.
    while (this.#maybeSendAppend(m.from, false)) { /* send more */ }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.#send(msg({ type: "MsgTimeoutNow", to: m.from }));
    }
  }

  #handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.match < this.log.lastIndex() || pr.state === "probe") this.#sendAppend(m.from);
    if (!m.context || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (this.trk.voteResult((id) => acks.has(id) ? true : undefined) !== "won") return;
    for (const rs of this.readOnly.advance(m.context)) {
      this.#respondToReadIndex(rs.req, rs.index);
    }
  }

  #handleTransferLeader(m: Message, pr: Progress): void {
    if (pr.isLearner) return; // a learner cannot lead
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.leadTransferee = NONE; // abort the previous one
    }
    if (transferee === this.id) return;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) {
      this.#send(msg({ type: "MsgTimeoutNow", to: transferee }));
    } else {
      this.#sendAppend(transferee);
    }
  }

  #stepCandidate(m: Message): void {
    const myVoteResp: MessageType = this.state === "preCandidate"
      ? "MsgPreVoteResp"
      : "MsgVoteResp";
    switch (m.type) {
      case "MsgProp":
        throw new ProposalDroppedError("no leader");
      case "MsgApp":
        this.becomeFollower(m.term, m.from);
        this.#handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const result = this.#poll(m.from, !m.reject);
    if (result === "won") {
      if (this.state === "preCandidate") {
        this.#campaign("election");
      } else {
        this.becomeLeader();
        this.#bcastAppend();
      }
    } else if (result === "lost") {
      // A rejected pre-vote or vote with a higher term already made us follow.
      this.becomeFollower(this.term, NONE);
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgProp":
        if (this.lead === NONE) throw new ProposalDroppedError("no leader");
        if (this.disableProposalForwarding) {
          throw new ProposalDroppedError("proposal forwarding disabled");
        }
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case "MsgApp":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case "MsgTransferLeader":
        if (this.lead === NONE) return;
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case "MsgTimeoutNow":
        // Campaign at once, skipping PreVote (the leader asked us to).
        this.#hup("transfer");
        return;
      case "MsgReadIndex":
        if (this.lead === NONE) return; // dropped; the client retries
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case "MsgReadIndexResp":
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array() });
        return;
      default:
        return;
    }
  }

  #handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.#send(msg({ type: "MsgAppResp", to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.#send(msg({ type: "MsgAppResp", to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: the largest index <= min(m.index, last) whose term
    // is <= m.logTerm, so the leader can skip a whole term (fast backtracking).
    const hintIndex = Math.min(m.index, this.log.lastIndex());
    const [hi, ht] = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.#send(msg({
      type: "MsgAppResp",
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hi,
      logTerm: ht,
    }));
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.#send(msg({ type: "MsgHeartbeatResp", to: m.from, context: m.context }));
  }

  #handleSnapshot(m: Message): void {
    const s = m.snapshot;
    invariant(s !== undefined, "MsgSnap carries a snapshot");
    if (this.#restore(s)) {
      this.#send(msg({ type: "MsgAppResp", to: m.from, index: this.log.lastIndex() }));
    } else {
      this.#send(msg({ type: "MsgAppResp", to: m.from, index: this.log.committed }));
    }
  }

  #restore(s: Snapshot): boolean {
    const { index, term, confState } = s.metadata;
    if (index <= this.log.committed) return false;
    if (this.state !== "follower") {
      // Defense in depth: only followers install snapshots.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const found = confState.voters.includes(this.id) || confState.learners.includes(this.id);
    if (!found) return false; // not for us (stale or misrouted)
    if (this.log.matchTerm(index, term)) {
      // We already have the snapshot's last entry: just fast-forward commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.#restoreConf(confState);
    const pr = this.trk.progress.get(this.id);
    pr?.maybeUpdate(pr.next - 1);
    return true;
  }

  // ---- ticks -----------------------------------------------------------------

  /** Advances logical time by one tick (election or heartbeat timer). */
  tick(): void {
    if (this.state === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(msg({ type: "MsgHup", from: this.id }));
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(msg({ type: "MsgCheckQuorum", from: this.id }));
      // A transfer that did not finish within an election timeout is aborted.
      if (this.state === "leader" && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== "leader") return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(msg({ type: "MsgBeat", from: this.id }));
    }
  }

  // ---- membership ------------------------------------------------------------

  /**
   * Applies a committed conf change (called by the application when it
   * applies the entry). Invalid changes (not single-server) are ignored on
   * every node alike. Returns the new membership.
   */
  applyConfChange(cc: ConfChange): ConfState {
    if (this.#validateConfChange(cc) !== "") return this.trk.confState();
    const voters = this.trk.voters;
    const learners = this.trk.learners;
    const next = Math.max(this.log.lastIndex(), 1);
    const had = this.trk.progress.has(cc.nodeId);
    applyToSets(cc, voters, learners);
    if (cc.type === "removeNode") {
      this.trk.progress.delete(cc.nodeId);
    } else {
      const isLearner = cc.type === "addLearnerNode";
      const pr = had ? this.trk.progress.get(cc.nodeId) : undefined;
      if (pr) {
        pr.isLearner = isLearner;
      } else {
        // A new peer starts probing at our last index and counts as recently
        // active, so CheckQuorum does not fire before it had a chance to reply.
        const np = this.trk.initProgress(cc.nodeId, next, isLearner);
        np.recentActive = true;
      }
    }
    this.#switchToConfig();
    return this.trk.confState();
  }

  #switchToConfig(): void {
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if ((!pr || this.isLearner) && this.state === "leader") {
      // Removed or demoted leader steps down; the rest elect a new one.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.state !== "leader" || this.trk.voters.size === 0) return;
    // Removing a voter can shrink the quorum and commit pending entries.
    if (this.#maybeCommit()) {
      this.#bcastAppend();
    } else {
      for (const id of this.trk.progress.keys()) {
        if (id !== this.id) this.#maybeSendAppend(id, false);
      }
    }
    if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) {
      this.leadTransferee = NONE;
    }
  }
}

function applyToSets(cc: ConfChange, voters: Set<NodeId>, learners: Set<NodeId>): void {
  switch (cc.type) {
    case "addNode":
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      return;
    case "addLearnerNode":
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      return;
    case "removeNode":
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      return;
  }
}
