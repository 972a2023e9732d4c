/**
 * The Ready handling of a raft member: one Ready at a time, in the order
 * core/raft/README.md gives (etcd-raft's README):
 *
 * 1. PERSIST the snapshot, entries and hard state (one durable write), then
 *    bring the raft Storage in step with it;
 * 2. SEND the messages;
 * 3. APPLY the snapshot, then the committed entries (a conf change through
 *    `RawNode.applyConfChange` as its entry is applied), and hand over the
 *    read states the applied index has reached;
 * 4. ADVANCE.
 *
 * Its I/O sits behind three ports: persistence (a server's WAL; the
 * simulator's in-memory storage), transport (nothing to send for a one-voter
 * server; the simulated network) and the state machine (the applier over
 * core/mvcc). A step is synchronous when its ports are, so the deterministic
 * simulator (tests/sim) runs every node of its clusters through this same
 * code; it returns a promise only when a port does (the WAL's fdatasync, the
 * applier's backpressure), and costs no promise otherwise.
 *
 * @module
 */
import { invariant } from "../../core/invariant.ts";
import { MAX_PENDING_READ_STATES } from "../../core/limits.ts";
import type { RawNode } from "../../core/raft/raw_node.ts";
import type { MemoryStorage } from "../../core/raft/storage.ts";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type HardState,
  type Message,
  type ReadState,
  type Ready,
  type Snapshot,
} from "../../core/raft/types.ts";

/** Where a member makes a Ready durable (the WAL in a server). */
export interface ReadyPersistence {
  /**
   * Make `snapshot` (when present), `entries` and `hardState` (when present)
   * durable in one write; with `sync`, on stable storage before it settles
   * (Raft Figure 2: term, vote and log before answering any RPC). Writing
   * entry i drops every persisted entry from i on.
   *
   * Returns a promise when the write is asynchronous; nothing else of the
   * Ready happens before it resolves, and its rejection fails the step. A
   * persistence that holds no snapshots (the WAL of a one-voter server) must
   * never get a Ready with one; its owner asserts that.
   */
  save(
    hardState: HardState | undefined,
    entries: Entry[],
    sync: boolean,
    snapshot?: Snapshot,
  ): Promise<void> | undefined;
}

/** How a member reaches its peers. */
export interface ReadyTransport {
  /**
   * Send a Ready's messages; called once its hard state and entries are
   * durable. Never waits: Raft retries what gets lost.
   */
  send(messages: Message[]): void;
}

/** The replicated state machine of a member (the applier over core/mvcc in a server). */
export interface ReadyStateMachine {
  /**
   * Backpressure before committed entries are applied: undefined when they
   * may be applied now, else a promise that resolves once they may. Throws
   * (or rejects) when they never may; that fails the step. None: always now.
   */
  admit?(): Promise<void> | undefined;
  /**
   * Apply committed entries, one batch: consecutive, starting right after
   * the applied index. Every entry comes through here, no-ops and conf
   * changes included; a conf change entry ends its batch.
   */
  apply(entries: Entry[]): void;
  /** Replace the whole state with `snapshot`'s; its index becomes the applied index. */
  restore(snapshot: Snapshot): void;
  /** Called once conf change `change` at `index` took effect in Raft, with the membership after it. */
  confChanged?(change: ConfChange, confState: ConfState, index: number): void;
  /**
   * Called with a read state once the applied index has reached its index:
   * a read issued with its context may be served now. Required of a member
   * that asks for ReadIndex.
   */
  read?(state: ReadState): void;
}

/** The ports of a {@linkcode ReadyHandler}. */
export interface ReadyPorts {
  /** Where Readys are made durable. */
  persistence: ReadyPersistence;
  /** How messages reach peers. */
  transport: ReadyTransport;
  /** What committed entries and snapshots are applied to. */
  stateMachine: ReadyStateMachine;
  /**
   * A leader sends its messages before its own append is durable, so the
   * followers' writes run in parallel with the leader's (etcd's
   * optimisation, Raft thesis §10.2.1). Default false.
   */
  leaderSendsFirst?: boolean;
}

/**
 * The raft Storage a {@linkcode ReadyHandler} keeps in step with what was
 * persisted: the write side of `MemoryStorage`.
 */
export type ReadyStorage = Pick<
  MemoryStorage,
  "append" | "applySnapshot" | "setHardState" | "initialState"
>;

/**
 * Handles the Readys of one RawNode. Create one per RawNode (a restarted
 * member gets a new one), after its Storage holds the persisted state.
 *
 * @example
 * ```ts
 * const handler = new ReadyHandler(raw, storage, { persistence: wal, transport, stateMachine });
 * while (raw.hasReady()) await handler.handle(raw.ready());
 * ```
 */
export class ReadyHandler {
  readonly #raw: RawNode;
  readonly #storage: ReadyStorage;
  readonly #persistence: ReadyPersistence;
  readonly #transport: ReadyTransport;
  readonly #stateMachine: ReadyStateMachine;
  /** Term of the last hard state persisted. */
  #term: number;
  /** Index of the last entry (or snapshot) handed to the state machine. */
  #applied: number;
  /** Membership as of the applied index. */
  #confState: ConfState;
  /** Read states whose index the applied index has not reached yet, in arrival order. */
  readonly #reads: ReadState[] = [];
  readonly #leaderSendsFirst: boolean;
  /** Whether the node led as of the last Ready's soft state. */
  #leading: boolean;

  /**
   * A handler for `raw`, whose persisted state `storage` holds; the
   * applied index is `raw`'s.
   */
  constructor(raw: RawNode, storage: ReadyStorage, ports: ReadyPorts) {
    this.#raw = raw;
    this.#storage = storage;
    this.#persistence = ports.persistence;
    this.#transport = ports.transport;
    this.#stateMachine = ports.stateMachine;
    const initial = storage.initialState();
    this.#term = initial.hardState.term;
    this.#confState = initial.confState;
    this.#applied = raw.logView().applied;
    this.#leaderSendsFirst = ports.leaderSendsFirst ?? false;
    this.#leading = this.#leaderSendsFirst && raw.isLeader();
  }

  /** Term of the last hard state persisted. */
  get term(): number {
    return this.#term;
  }

  /** Index of the last entry or snapshot handed to the state machine. */
  get applied(): number {
    return this.#applied;
  }

  /** Membership as of the applied index. */
  get confState(): ConfState {
    return this.#confState;
  }

  /**
   * Persist, send, apply and advance `rd`, the Ready just taken from the
   * RawNode. Returns undefined when every port was synchronous (all is
   * done), else a promise that resolves when all is done. The next Ready
   * must wait for it.
   *
   * @throws {InvariantError} when committed entries do not follow the
   *   applied index, or too many read states wait.
   * @throws whatever a port throws; the Ready is then not advanced.
   */
  handle(rd: Ready): Promise<void> | undefined {
    if (rd.softState !== undefined) this.#leading = rd.softState.raftState === "leader";
    // A leader's messages (appends, heartbeats, read-index answers) reveal
    // nothing it must have persisted: its term and vote were durable before
    // it became leader, and a commit that counts its own new entries leaves
    // only in a later Ready, after this one's write. Its own entries count
    // toward a commit as soon as they are appended, as in etcd.
    const early = this.#leaderSendsFirst && this.#leading && rd.snapshot === undefined;
    if (early) this.#transport.send(rd.messages);
    const saving = this.#persistence.save(rd.hardState, rd.entries, rd.mustSync, rd.snapshot);
    if (saving === undefined) return this.#persisted(rd, early);
    return saving.then(() => this.#persisted(rd, early));
  }

  /**
   * The Ready is durable: update the raft Storage, send (unless sent
   * already), then apply (after any backpressure).
   */
  #persisted(rd: Ready, sent: boolean): Promise<void> | undefined {
    if (rd.snapshot !== undefined) this.#storage.applySnapshot(rd.snapshot);
    this.#storage.append(rd.entries);
    if (rd.hardState !== undefined) {
      this.#storage.setHardState(rd.hardState);
      this.#term = rd.hardState.term;
    }
    if (!sent) this.#transport.send(rd.messages);
    if (rd.committedEntries.length > 0) {
      const admitted = this.#stateMachine.admit?.();
      if (admitted !== undefined) return admitted.then(() => this.#applyAndAdvance(rd));
    }
    this.#applyAndAdvance(rd);
    return undefined;
  }

  #applyAndAdvance(rd: Ready): void {
    if (rd.snapshot !== undefined) {
      const { index, confState } = rd.snapshot.metadata;
      invariant(index > this.#applied, "a snapshot moves the applied index forward");
      this.#stateMachine.restore(rd.snapshot);
      this.#applied = index;
      this.#confState = { voters: [...confState.voters], learners: [...confState.learners] };
    }
    if (rd.committedEntries.length > 0) this.#applyEntries(rd.committedEntries);
    if (rd.readStates.length > 0 || this.#reads.length > 0) this.#release(rd.readStates);
    this.#raw.advance();
  }

  /** Apply committed entries in batches that end at conf changes (one batch without any). */
  #applyEntries(entries: Entry[]): void {
    if (entries[0].index !== this.#applied + 1) {
      invariant(
        false,
        `committed entries apply in order (next ${entries[0].index}, applied ${this.#applied})`,
      );
    }
    let from = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.type !== "confChange") continue;
      this.#stateMachine.apply(
        from === 0 && i === entries.length - 1 ? entries : entries.slice(from, i + 1),
      );
      this.#applied = e.index;
      const change = decodeConfChange(e.data);
      this.#confState = this.#raw.applyConfChange(change);
      this.#stateMachine.confChanged?.(change, this.#confState, e.index);
      from = i + 1;
    }
    if (from < entries.length) {
      this.#stateMachine.apply(from === 0 ? entries : entries.slice(from));
      this.#applied = entries[entries.length - 1].index;
    }
  }

  /** Queue `states`; hand over, in arrival order, every queued one the applied index reached. */
  #release(states: ReadState[]): void {
    invariant(
      this.#reads.length + states.length <= MAX_PENDING_READ_STATES,
      "at most MAX_PENDING_READ_STATES read states wait for the applied index",
    );
    for (const s of states) this.#reads.push(s);
    invariant(
      this.#stateMachine.read !== undefined,
      "a member that asks for ReadIndex serves its read states",
    );
    let kept = 0;
    for (const s of this.#reads) {
      if (s.index <= this.#applied) this.#stateMachine.read(s);
      else this.#reads[kept++] = s;
    }
    this.#reads.length = kept;
  }
}
