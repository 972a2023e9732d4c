/**
 * An in-process, synchronous, fully deterministic network of RawNodes for
 * scenario tests (modelled on etcd-raft's `network` in raft_test.go and the
 * interaction harness): `stabilize()` processes Ready batches and delivers
 * messages until quiet; links can be cut, nodes isolated, message types
 * dropped.
 */

import {
  type ConfChange,
  decodeConfChange,
  type Entry,
  MemoryStorage,
  type Message,
  type MessageType,
  Mulberry32,
  ProposalDroppedError,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
} from "../../../core/raft/mod.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** One member: its durable storage, its RawNode and what it applied. */
export class TestNode {
  readonly id: number;
  readonly storage: MemoryStorage;
  node: RawNode;
  applied: Entry[] = [];
  readStates: ReadState[] = [];
  readonly config: Partial<RaftConfig>;

  constructor(id: number, storage: MemoryStorage, config: Partial<RaftConfig>) {
    this.id = id;
    this.storage = storage;
    this.config = config;
    this.node = this.#make(0);
  }

  #make(applied: number): RawNode {
    return new RawNode({
      id: this.id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: this.storage,
      prng: new Mulberry32(this.id),
      applied,
      ...this.config,
    });
  }

  /** Restarts from durable storage (everything unpersisted is lost). */
  restart(): void {
    this.node = this.#make(this.storage.snapshot().metadata.index);
    this.applied = [];
  }

  /** Data of applied normal entries, as strings (no-ops skipped). */
  appliedData(): string[] {
    return this.applied.filter((e) => e.type === "normal" && e.data.length > 0).map((e) =>
      dec(e.data)
    );
  }

  get term(): number {
    return this.node.status().hardState.term;
  }

  get state(): string {
    return this.node.status().softState.raftState;
  }
}

/** A test cluster with a synchronous network. */
export class Network {
  nodes: Map<number, TestNode> = new Map();
  /** Directed links that drop messages ("from>to"). */
  cutLinks: Set<string> = new Set();
  /** Message types that are dropped everywhere. */
  dropTypes: Set<MessageType> = new Set();
  /** Inspect/drop hook: return false to drop. */
  hook: ((m: Message) => boolean) | undefined = undefined;
  /** Every message that was delivered, in order. */
  delivered: Message[] = [];
  down: Set<number> = new Set();
  /** Take a snapshot right after applying each conf change (so it lists new members). */
  snapshotAfterConfChange = false;

  /**
   * Starts `ids` as voters (plus `learners`) from a shared snapshot at index 1.
   */
  constructor(
    ids: number[],
    config: Partial<RaftConfig> = {},
    learners: number[] = [],
    logs: Record<number, number[]> = {},
  ) {
    for (const id of [...ids, ...learners]) {
      const n = this.addNode(id, config, { voters: ids, learners }, logs[id]);
      void n;
    }
  }

  /** Adds a node; with `conf` it bootstraps from the index-1 snapshot, else it starts empty. */
  addNode(
    id: number,
    config: Partial<RaftConfig> = {},
    conf?: { voters: number[]; learners: number[] },
    logTerms: number[] = [],
  ): TestNode {
    const storage = new MemoryStorage();
    if (conf) {
      storage.applySnapshot({
        metadata: { index: 1, term: 1, confState: conf },
        data: new Uint8Array(),
      });
      // Entries at indexes 2, 3, ... with the given terms (uncommitted).
      storage.append(
        logTerms.map((term, i) => ({
          term,
          index: i + 2,
          type: "normal" as const,
          data: enc(`e${i + 2}t${term}`),
        })),
      );
      storage.setHardState({ term: Math.max(1, ...logTerms), vote: 0, commit: 1 });
    }
    const n = new TestNode(id, storage, config);
    this.nodes.set(id, n);
    return n;
  }

  get(id: number): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Cuts both directions between a and b. */
  cut(a: number, b: number): void {
    this.cutLinks.add(`${a}>${b}`);
    this.cutLinks.add(`${b}>${a}`);
  }

  /** Cuts `id` from every other node. */
  isolate(id: number): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  /** Heals all links and filters. */
  recover(): void {
    this.cutLinks.clear();
    this.dropTypes.clear();
    this.hook = undefined;
  }

  /** Processes one node's Ready: persist, collect messages, apply. */
  handleReady(n: TestNode): Message[] {
    return this.finishReady(n, n.node.ready());
  }

  /** Persists, applies and advances a Ready already taken from `n`; returns its messages. */
  finishReady(n: TestNode, rd: Ready): Message[] {
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      n.applied.push(e);
      if (e.type === "confChange") {
        const cs = n.node.applyConfChange(decodeConfChange(e.data));
        if (this.snapshotAfterConfChange) n.storage.createSnapshot(e.index, cs, enc("state"));
      }
    }
    n.readStates.push(...rd.readStates);
    n.node.advance();
    return rd.messages;
  }

  /** Delivers messages and processes Readies until nothing is left. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const msgs: Message[] = [];
      for (const n of this.nodes.values()) {
        if (this.down.has(n.id)) continue;
        while (n.node.hasReady()) msgs.push(...this.handleReady(n));
      }
      if (msgs.length === 0) return;
      for (const m of msgs) this.deliver(m);
    }
    throw new Error("network did not stabilize");
  }

  /** Delivers one message unless filtered. */
  deliver(m: Message): void {
    if (this.cutLinks.has(`${m.from}>${m.to}`) || this.dropTypes.has(m.type)) return;
    if (this.down.has(m.to)) return;
    if (this.hook && !this.hook(m)) return;
    const to = this.nodes.get(m.to);
    if (!to) return;
    this.delivered.push(m);
    try {
      to.node.step(m);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
    // Like etcd's transport, report a delivered snapshot to its sender.
    if (m.type === "MsgSnap") this.nodes.get(m.from)?.node.reportSnapshot(m.to, false);
  }

  /** Node `id` campaigns, then the network settles. */
  campaign(id: number): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  /** Proposes `data` at `id` and settles. */
  propose(id: number, data: string): void {
    this.get(id).node.propose(enc(data));
    this.stabilize();
  }

  /** Proposes a conf change at `id` and settles. */
  proposeConfChange(id: number, cc: ConfChange): void {
    this.get(id).node.proposeConfChange(cc);
    this.stabilize();
  }

  /** Ticks `id` `n` times, settling after each tick. */
  tick(id: number, n: number): void {
    for (let i = 0; i < n; i++) {
      this.get(id).node.tick();
      this.stabilize();
    }
  }

  /** Ticks every live node `n` times, settling after each round. */
  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) if (!this.down.has(node.id)) node.node.tick();
      this.stabilize();
    }
  }

  /** IDs of nodes that believe they lead. */
  leaders(): number[] {
    return [...this.nodes.values()].filter((n) => !this.down.has(n.id) && n.node.isLeader()).map((
      n,
    ) => n.id);
  }
}

/** Terms of a node's durable log from index 2 to its last index. */
export function logTerms(n: TestNode): number[] {
  const out: number[] = [];
  for (let i = Math.max(2, n.storage.firstIndex()); i <= n.storage.lastIndex(); i++) {
    out.push(n.storage.term(i));
  }
  return out;
}
