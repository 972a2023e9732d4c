/**
 * The data shapes of cairn's Raft core: log entries, messages, persistent
 * (hard) and volatile (soft) state, snapshots, configuration changes and the
 * `Ready` batch handed to the application. They mirror etcd-io/raft's
 * `raftpb` protobufs, with paper names (term, vote, commit index).
 *
 * Node IDs are positive safe integers; 0 (`NONE`) means "no node". Log
 * indexes and terms are non-negative safe integers starting at 1; index 0 /
 * term 0 denote the empty log.
 *
 * @module
 */
import { InvariantError } from "../invariant.ts";

/** A Raft node ID. Positive safe integer; `NONE` (0) means no node. */
export type NodeId = number;

/** The "no node" ID (etcd-raft `None`). */
export const NONE: NodeId = 0;

/** Kind of a log entry (raftpb.EntryType, v1 conf changes only). */
export type EntryType = "normal" | "confChange";

/**
 * One Raft log entry (raftpb.Entry). `data` is opaque to Raft for normal
 * entries; for `confChange` entries it is `encodeConfChange(cc)`. An empty
 * normal entry is the no-op a new leader appends (Raft §5.4.2).
 */
export interface Entry {
  /** Term of the leader that created the entry. */
  term: number;
  /** Position in the log, starting at 1. */
  index: number;
  /** Normal or conf change. */
  type: EntryType;
  /** Payload, opaque to Raft for normal entries. */
  data: Uint8Array;
}

/** Membership of the cluster (raftpb.ConfState): voters and learners. */
export interface ConfState {
  /** IDs that vote and count towards quorum. */
  voters: NodeId[];
  /** IDs that receive the log but neither vote in quorums nor campaign. */
  learners: NodeId[];
}

/** Metadata of a snapshot: the last index/term it covers, and membership then. */
export interface SnapshotMetadata {
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of that entry. */
  confState: ConfState;
}

/** A state machine snapshot (raftpb.Snapshot). `data` is opaque to Raft. */
export interface Snapshot {
  /** Index, term and membership covered. */
  metadata: SnapshotMetadata;
  /** The state machine image (opaque to Raft). */
  data: Uint8Array;
}

/**
 * Persistent state that must be on stable storage before any message that
 * depends on it is sent (Raft Figure 2: currentTerm, votedFor; plus commit).
 */
export interface HardState {
  /** Latest term this node has seen. */
  term: number;
  /** Candidate that received this node's vote in `term`, or `NONE`. */
  vote: NodeId;
  /** Highest log index known to be committed. */
  commit: number;
}

/** Role of a node (etcd-raft `StateType`). */
export type StateType = "follower" | "candidate" | "leader" | "preCandidate";

/**
 * A protocol event a server logs (etcd-raft logs these through its
 * `Logger`): `became` a role at a term (`… became leader at term 2`), or
 * `campaign`, an election starting at the current term (`… is starting a
 * new election at term 1`).
 */
export type RaftEvent =
  | { type: "became"; state: StateType; term: number }
  | { type: "campaign"; term: number };

/** Volatile state useful to the application; never persisted. */
export interface SoftState {
  /** Current leader as this node believes, or `NONE`. */
  lead: NodeId;
  /** This node's role. */
  raftState: StateType;
}

/**
 * The result of a ReadIndex request (etcd-raft `ReadState`): reads issued
 * with `requestCtx` are linearizable once this node's applied index is at
 * least `index`.
 */
export interface ReadState {
  /** The commit index the read must wait for (applied >= index). */
  index: number;
  /** The context passed to `readIndex`. */
  requestCtx: Uint8Array;
}

/** Message types (raftpb.MessageType). Local ones never cross the network. */
export type MessageType =
  | "MsgHup"
  | "MsgBeat"
  | "MsgProp"
  | "MsgApp"
  | "MsgAppResp"
  | "MsgVote"
  | "MsgVoteResp"
  | "MsgSnap"
  | "MsgHeartbeat"
  | "MsgHeartbeatResp"
  | "MsgUnreachable"
  | "MsgSnapStatus"
  | "MsgCheckQuorum"
  | "MsgTransferLeader"
  | "MsgTimeoutNow"
  | "MsgReadIndex"
  | "MsgReadIndexResp"
  | "MsgPreVote"
  | "MsgPreVoteResp";

/**
 * A Raft message (raftpb.Message). Fields unused by a type are 0/empty.
 * `term` 0 marks a local message (proposal or ReadIndex forwarded to the
 * leader carries term 0, as in etcd-raft).
 */
export interface Message {
  /** Message type. */
  type: MessageType;
  /** Recipient. */
  to: NodeId;
  /** Sender. */
  from: NodeId;
  /** Sender's term (0 for local messages). */
  term: number;
  /** MsgApp: term of entry `index`; votes: candidate's last log term; rejections: hint term. */
  logTerm: number;
  /** MsgApp: index preceding `entries`; votes: candidate's last index; responses: see handlers. */
  index: number;
  /** MsgApp/MsgProp: entries to append. */
  entries: Entry[];
  /** Leader's commit index (MsgApp, MsgHeartbeat). */
  commit: number;
  /** MsgSnap only. */
  snapshot?: Snapshot;
  /** Responses: whether the request was refused. */
  reject: boolean;
  /** MsgAppResp rejection: follower's hint for the probe index. */
  rejectHint: number;
  /** ReadIndex request context (MsgReadIndex/Resp, MsgHeartbeat/Resp). */
  context?: Uint8Array;
  /** Vote request sent because of a leader transfer (etcd `campaignTransfer`). */
  transfer?: boolean;
}

/** Kind of a single-server membership change (raftpb.ConfChangeType, v1). */
export type ConfChangeType = "addNode" | "removeNode" | "addLearnerNode";

/**
 * A single-server membership change (raftpb.ConfChange v1). `addNode` on a
 * learner promotes it; `addLearnerNode` on a voter demotes it. `context` is
 * opaque (the server stores member metadata there).
 */
export interface ConfChange {
  /** Kind of change. */
  type: ConfChangeType;
  /** The member added, removed, promoted or demoted. */
  nodeId: NodeId;
  /** Opaque metadata (the server stores the member there). */
  context?: Uint8Array;
}

/**
 * Everything the application must do after a batch of input (etcd-raft
 * `Ready`). See core/raft/README.md for the order: persist `entries`,
 * `hardState` and `snapshot`; then send `messages`; then apply `snapshot`
 * and `committedEntries`; then call `RawNode.advance()`.
 */
export interface Ready {
  /** Present when lead or role changed since the last Ready. Not persisted. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist it. */
  hardState?: HardState;
  /** ReadIndex results to serve once applied >= index. */
  readStates: ReadState[];
  /** Entries to append to stable storage (overwriting any at >= entries[0].index). */
  entries: Entry[];
  /** Snapshot to persist and then apply to the state machine. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order (already persisted or in `entries`). */
  committedEntries: Entry[];
  /** Messages to send after `entries`/`hardState` are durable. */
  messages: Message[];
  /** Whether the write of this Ready must be fsynced (entries, term or vote changed). */
  mustSync: boolean;
}

/** Returns a message with all fields at their zero value, then `fields`. */
export function msg(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** Whether `t` is a local message type that must never come from the network. */
export function isLocalMsg(t: MessageType): boolean {
  return t === "MsgHup" || t === "MsgBeat" || t === "MsgUnreachable" ||
    t === "MsgSnapStatus" || t === "MsgCheckQuorum";
}

/** Whether `t` is a response message type (its sender must be a known peer). */
export function isResponseMsg(t: MessageType): boolean {
  return t === "MsgAppResp" || t === "MsgVoteResp" || t === "MsgHeartbeatResp" ||
    t === "MsgUnreachable" || t === "MsgPreVoteResp";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a conf change as the `data` of a `confChange` entry (JSON bytes;
 * `context` as an array of byte values).
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({
    type: cc.type,
    nodeId: cc.nodeId,
    context: cc.context ? Array.from(cc.context) : undefined,
  }));
}

/**
 * Decodes `encodeConfChange` output.
 * @throws {Error} if `data` is not an encoded conf change.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const o = JSON.parse(decoder.decode(data));
  if (
    (o.type !== "addNode" && o.type !== "removeNode" && o.type !== "addLearnerNode") ||
    !Number.isSafeInteger(o.nodeId) || o.nodeId <= 0
  ) {
    throw new Error(`Cannot decode conf change: ${decoder.decode(data)}`);
  }
  const cc: ConfChange = { type: o.type, nodeId: o.nodeId };
  if (Array.isArray(o.context)) cc.context = Uint8Array.from(o.context);
  return cc;
}

/** Approximate encoded size of an entry in bytes (payload plus fixed overhead). */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 16;
}

/** Sum of the payload sizes of `ents` in bytes (etcd-raft `payloadsSize`). */
export function payloadsSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.byteLength;
  return s;
}

/**
 * Returns the longest prefix of `ents` whose total `entrySize` is at most
 * `maxSize` bytes, but always at least one entry (etcd-raft `limitSize`).
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** Thrown when an internal invariant of the Raft core does not hold. */
export class RaftInvariantError extends InvariantError {
  /**
   * Builds the error.
   * @param message names the violated invariant.
   */
  constructor(message: string) {
    super(message);
    this.name = "RaftInvariantError";
  }
}

/**
 * Asserts an invariant; always on (TigerBeetle style).
 * @throws {RaftInvariantError} naming the invariant when `cond` is false.
 */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RaftInvariantError(`Raft invariant violated: ${message}`);
}

/** Thrown by `propose`/`step` when a proposal cannot be accepted (etcd `ErrProposalDropped`). */
export class ProposalDroppedError extends Error {
  /**
   * Builds the error.
   * @param reason why the proposal was dropped.
   */
  constructor(reason: string) {
    super(`Raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/** Thrown by `RawNode.step` for a local message type coming from outside (etcd `ErrStepLocalMsg`). */
export class StepLocalMsgError extends Error {
  /**
   * Builds the error.
   * @param t the offending message type.
   */
  constructor(t: MessageType) {
    super(`Cannot step local message from the network: ${t}`);
    this.name = "StepLocalMsgError";
  }
}
