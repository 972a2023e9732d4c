/**
 * A deterministic cluster simulator for cairn's Raft core (in the spirit of
 * TigerBeetle's VOPR and FoundationDB's simulation): 3–7 nodes, simulated
 * time and network, faults, clients, and safety checks after every step. A
 * run is a pure function of its seed.
 *
 * Time is in simulated milliseconds; every node ticks once per 10 ms (with
 * its own phase). The network delays, drops, duplicates and reorders
 * messages, and partitions links (symmetric and one-way). Nodes crash
 * (losing everything not yet persisted: unstable entries, volatile state,
 * the applied state machine) and restart from their MemoryStorage.
 *
 * Every node handles its Readys with the server's own code
 * (server/raftnode/ready.ts, as `RaftNode` does): its ports are the node's
 * MemoryStorage (checked before each write), the simulated network and the
 * state machine (core/mvcc through the server's `Applier`, or a toy map).
 *
 * @module
 */

import {
  type ConfChange,
  type Entry,
  type HardState,
  MemoryStorage,
  type Message,
  Mulberry32,
  type Mutant,
  ProposalDroppedError,
  type RaftConfig,
  RawNode,
  type Snapshot,
} from "../../core/raft/mod.ts";
import { ReadyHandler, type ReadyPorts } from "../../server/raftnode/ready.ts";
import { checkHistory, type CheckResult, type Operation } from "./linearizability.ts";
import {
  type Command,
  decodeCommand,
  encodeCommand,
  KvStateMachine,
  MvccStateMachine,
  type StateMachine,
} from "./kv.ts";

/** Options of one simulation run. */
export interface SimOptions {
  seed: number;
  mutant?: Mutant;
  /** Record a trace (kept for printing on failure). */
  trace?: boolean;
  /** Number of chaos+heal cycles. Default 2. */
  cycles?: number;
  /** Chaos ticks per cycle. Default 500. */
  chaosTicks?: number;
  /**
   * Serve gets from the contacted node's state machine without ReadIndex (a
   * deliberately broken client path, like etcd 0.4's non-quorum reads), to
   * show that the linearizability checker catches stale reads.
   */
  localReads?: boolean;
  /**
   * The nodes' state machine: `mvcc` is core/mvcc, the one cairn serves,
   * over an in-memory backend; `toy` a Map. Default `toy`.
   */
  stateMachine?: "toy" | "mvcc";
}

/** Outcome of a run. */
export interface SimResult {
  seed: number;
  violations: string[];
  /** Last trace lines (only with `trace`). */
  trace: string[];
  stats: SimStats;
  linearizability: CheckResult["result"] | "skipped";
}

/** Counters of a run. */
export interface SimStats {
  messages: number;
  elections: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  snapshotsSent: number;
  committed: number;
  clientOps: number;
  transfers: number;
  /** Times a node's durable log was truncated by a new leader's entries. */
  truncations: number;
  /** Longest time from heal to a committed proposal, in ticks. */
  maxRecoveryTicks: number;
}

const TICK_MS = 10;
// Elections without PreVote can duel for many rounds (each node redraws its
// timeout on every term change), so the bound is generous: 100 election timeouts.
const LIVENESS_TICKS = 1000;
const TRACE_KEEP = 400;
const CLIENT_TIMEOUT_MS = 1500;
const KEYS = ["a", "b", "c"];

/** A violated safety or liveness property. */
class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Violation";
  }
}

interface PendingOp {
  op: Operation;
  node: number;
  req: number;
  /** ReadIndex context (gets). */
  ctx?: string;
  /** Read index once confirmed. */
  readIndex?: number;
}

interface Client {
  id: number;
  req: number;
  pending: PendingOp | undefined;
  nextAt: number;
}

class SimNode {
  readonly id: number;
  readonly storage = new MemoryStorage();
  raw: RawNode | undefined = undefined;
  /** The server's Ready handling for `raw` (a new one at each start). */
  ready: ReadyHandler | undefined = undefined;
  sm: StateMachine = new KvStateMachine();
  /** Index of the last entry or snapshot the state machine got, as observed through its port. */
  applied = 0;
  removed = false;
  /** Paused (SIGSTOP-like) until this time: no ticks, no Ready, inbound messages wait. */
  pausedUntil = 0;
  readonly phase: number;
  /** Read contexts awaiting a ReadState on this node. */
  reads: Map<string, PendingOp> = new Map();

  constructor(id: number, phase: number) {
    this.id = id;
    this.phase = phase;
  }

  get alive(): boolean {
    return this.raw !== undefined;
  }
}

interface Envelope {
  kind: "msg" | "snapStatus" | "unreachable";
  m: Message;
  failed?: boolean;
}

/** Runs one seeded simulation. Never throws: failures are returned as violations. */
export function runSimulation(opts: SimOptions): SimResult {
  const sim = new Simulation(opts);
  return sim.run();
}

class Simulation {
  readonly opts: SimOptions;
  readonly rng: Mulberry32;
  now = 0;
  nodes: Map<number, SimNode> = new Map();
  events: Map<number, Envelope[]> = new Map();
  /** Blocked directed links "from>to". */
  blocked: Set<string> = new Set();
  partitionUntil = 0;
  crashedUntil: Map<number, number> = new Map();
  violations: string[] = [];
  trace: string[] = [];
  stats: SimStats = {
    messages: 0,
    elections: 0,
    crashes: 0,
    partitions: 0,
    confChanges: 0,
    snapshotsSent: 0,
    committed: 0,
    clientOps: 0,
    transfers: 0,
    truncations: 0,
    maxRecoveryTicks: 0,
  };
  history: Operation[] = [];
  clients: Client[] = [];
  // network parameters (chaos)
  dropRate = 0;
  dupRate = 0;
  maxDelay = 5;
  /** Fraction of messages held back for up to 2 s (stale messages). */
  longDelayRate = 0;
  /** Chance that a new leader is crashed or paused a few ms after its election. */
  leaderKillRate = 0;
  /** Chance per tick that a leader gets a background proposal. */
  loadRate = 0;
  /** Pending targeted faults: time -> node to crash/pause. */
  targeted: Map<number, number> = new Map();
  chaos = true;
  // raft parameters
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly electionTick: number;
  readonly maxSizePerMsg: number;
  readonly maxInflight: number;
  readonly maxInflightBytes: number;
  readonly snapshotEvery: number;
  readonly compactKeep: number;
  readonly readyProb: number;
  // safety state
  leaderOfTerm: Map<number, number> = new Map();
  /** term and data key of committed (applied somewhere) entries, by index. */
  committedTerm: number[] = [];
  committedData: string[] = [];
  /** Members whose removal was applied during the current Ready. */
  toRetire: number[] = [];
  /** Upper bound of the term each index was committed in. */
  commitTermBound: number[] = [];
  maxCommitted = 0;
  /** "index:term" -> data key + previous entry's term (log matching). */
  entryIdentity: Map<string, string> = new Map();
  // liveness
  healAt = -1;
  probeId = 0;
  probeApplied = false;
  probeProposedAt = -1;

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rng = new Mulberry32(opts.seed * 2654435761 + 12345);
    const r = this.rng;
    this.preVote = r.next() < 0.6;
    this.checkQuorum = r.next() < 0.6;
    this.electionTick = 8 + r.intn(8);
    this.maxSizePerMsg = r.next() < 0.75 ? 1 : 64 + r.intn(512);
    this.maxInflight = 1 + r.intn(8);
    this.maxInflightBytes = r.next() < 0.3 ? 100 + r.intn(1000) : 0;
    this.snapshotEvery = 5 + r.intn(40);
    this.compactKeep = r.intn(6);
    this.readyProb = 0.5 + r.next() * 0.5;
    const n = r.next() < 0.5 ? 3 : 3 + r.intn(5); // 3..7 initial voters, often 3
    const voters = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of voters) this.#bootstrap(id, voters);
    const nClients = 2 + r.intn(3);
    for (let c = 1; c <= nClients; c++) {
      this.clients.push({ id: c, req: 0, pending: undefined, nextAt: 0 });
    }
    this.#log(
      `seed ${opts.seed}: voters ${voters} preVote=${this.preVote} checkQuorum=${this.checkQuorum} ` +
        `electionTick=${this.electionTick} maxSizePerMsg=${this.maxSizePerMsg} maxInflight=${this.maxInflight} ` +
        `maxInflightBytes=${this.maxInflightBytes} ` +
        `snapshotEvery=${this.snapshotEvery} mutant=${opts.mutant ?? "none"}`,
    );
  }

  #log(line: string): void {
    if (!this.opts.trace) return;
    this.trace.push(`t=${this.now} ${line}`);
    if (this.trace.length > TRACE_KEEP * 2) this.trace = this.trace.slice(-TRACE_KEEP);
  }

  #violate(what: string): never {
    throw new Violation(`t=${this.now}: ${what}`);
  }

  #config(id: number): RaftConfig {
    return {
      id,
      electionTick: this.electionTick,
      heartbeatTick: 1,
      storage: this.nodes.get(id)!.storage,
      prng: new Mulberry32(this.opts.seed * 31 + id * 7919 + this.stats.crashes),
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflight,
      maxInflightBytes: this.maxInflightBytes,
      maxUncommittedEntriesSize: 4096,
      mutant: this.opts.mutant,
    };
  }

  #bootstrap(id: number, voters: number[]): void {
    const node = new SimNode(id, this.rng.intn(TICK_MS));
    this.nodes.set(id, node);
    // Every initial member starts from the same snapshot at index 1 holding
    // the initial membership, so nodes added later get it via MsgSnap.
    const sm = this.#newStateMachine();
    sm.apply([{ index: 1, term: 1, type: "normal", data: new Uint8Array() }]);
    node.storage.applySnapshot({
      metadata: { index: 1, term: 1, confState: { voters, learners: [] } },
      data: sm.snapshot(),
    });
    node.storage.setHardState({ term: 1, vote: 0, commit: 1 });
    this.#start(node);
  }

  #newStateMachine(): StateMachine {
    return this.opts.stateMachine === "mvcc" ? new MvccStateMachine() : new KvStateMachine();
  }

  #start(node: SimNode): void {
    const snap = node.storage.snapshot();
    node.sm = this.#newStateMachine();
    node.sm.restore(snap.data, snap.metadata.index);
    node.applied = snap.metadata.index;
    node.raw = new RawNode({ ...this.#config(node.id), applied: node.applied });
    node.reads = new Map();
    node.ready = new ReadyHandler(node.raw, node.storage, this.#ports(node));
  }

  /**
   * The ports of `node`'s Ready handling: its MemoryStorage is its durable
   * storage (the handler writes it; the persistence port checks each write
   * first), the simulated network, and its state machine with the checks
   * of every applied entry.
   */
  #ports(node: SimNode): ReadyPorts {
    return {
      // As the server: a leader's messages go out before its write (the
      // simulated network delivers them in later steps, after it).
      leaderSendsFirst: true,
      persistence: {
        save: (hardState, entries, _sync, snapshot) => {
          this.#checkWrite(node, hardState, entries, snapshot);
          return undefined;
        },
      },
      transport: {
        send: (messages) => {
          for (const m of messages) this.#send(m);
        },
      },
      stateMachine: {
        apply: (entries) => this.#apply(node, entries),
        restore: (snapshot) => {
          node.sm.restore(snapshot.data, snapshot.metadata.index);
          node.applied = snapshot.metadata.index;
          this.#log(`n${node.id} applied snapshot at ${node.applied}`);
        },
        confChanged: (cc, confState, index) => {
          this.#log(
            `n${node.id} applied conf change ${cc.type} n${cc.nodeId} -> voters ${confState.voters} learners ${confState.learners}`,
          );
          if (cc.type === "removeNode") this.toRetire.push(cc.nodeId);
          // A snapshot sent to a new member must list it (the core ignores a
          // snapshot that does not): take one now, as etcd builds one at send time.
          node.storage.createSnapshot(index, confState, node.sm.snapshot());
        },
        read: (state) => {
          // Served after the Ready, in the order the clients asked.
          const p = node.reads.get(new TextDecoder().decode(state.requestCtx));
          if (p) p.readIndex = state.index;
        },
      },
    };
  }

  run(): SimResult {
    const cycles = this.opts.cycles ?? 8;
    const chaosTicks = this.opts.chaosTicks ?? 1000;
    try {
      for (let c = 0; c < cycles; c++) {
        this.#startChaos();
        const chaosEnd = this.now + chaosTicks * TICK_MS;
        while (this.now < chaosEnd) this.#stepMs();
        this.#heal();
        const deadline = this.now + LIVENESS_TICKS * TICK_MS;
        while (!this.probeApplied) {
          if (this.now >= deadline) {
            this.#violate(
              `liveness: no proposal committed within ${LIVENESS_TICKS} ticks after faults healed`,
            );
          }
          this.#stepMs();
        }
        const recovery = Math.ceil((this.now - this.healAt) / TICK_MS);
        this.stats.maxRecoveryTicks = Math.max(this.stats.maxRecoveryTicks, recovery);
        this.#log(`liveness ok: probe committed ${recovery} ticks after heal`);
        // Let in-flight client operations settle a little under calm conditions.
        const settle = this.now + 30 * TICK_MS;
        while (this.now < settle) this.#stepMs();
      }
    } catch (e) {
      const what = e instanceof Violation
        ? e.message
        : `t=${this.now}: core threw ${e instanceof Error ? e.stack : e}`;
      this.violations.push(what);
      this.#log(`VIOLATION ${what}`);
      this.#dumpNodes();
    }
    let lin: SimResult["linearizability"] = "skipped";
    if (this.violations.length === 0) {
      this.#finishClients();
      const r = checkHistory(this.history, 500_000);
      lin = r.result;
      if (r.result === "illegal") {
        this.violations.push(`linearizability: history of key ${r.key} is not linearizable`);
      }
    }
    return {
      seed: this.opts.seed,
      violations: this.violations,
      trace: this.trace.slice(-TRACE_KEEP),
      stats: this.stats,
      linearizability: lin,
    };
  }

  #dumpNodes(): void {
    for (const n of this.nodes.values()) {
      if (!n.raw) {
        this.#log(`  n${n.id}: ${n.removed ? "removed" : "down"}`);
        continue;
      }
      const r = n.raw.raft;
      const log = n.raw.logView();
      this.#log(
        `  n${n.id}: ${r.state} term=${r.term} vote=${r.vote} lead=${r.lead} commit=${log.committed} ` +
          `applied=${log.applied} last=${log.lastIndex()}:${log.term(log.lastIndex())} ` +
          `conf=${JSON.stringify(n.raw.confState())} promotable=${r.promotable()} ` +
          `elapsed=${r.electionElapsed}/${r.randomizedElectionTimeout} paused=${
            n.pausedUntil > this.now
          }`,
      );
    }
  }

  // ---- phases ---------------------------------------------------------------

  #startChaos(): void {
    this.chaos = true;
    this.probeApplied = false;
    this.healAt = -1;
    const r = this.rng;
    this.dropRate = r.next() * 0.15;
    this.dupRate = r.next() * 0.08;
    this.maxDelay = 1 + r.intn(40);
    this.longDelayRate = r.next() < 0.5 ? 0 : r.next() * 0.05;
    this.leaderKillRate = r.next() * 0.8;
    this.loadRate = r.next();
    this.#log(
      `chaos: drop=${this.dropRate.toFixed(2)} dup=${
        this.dupRate.toFixed(2)
      } maxDelay=${this.maxDelay}ms`,
    );
  }

  #heal(): void {
    this.chaos = false;
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelay = 3;
    this.longDelayRate = 0;
    this.targeted.clear();
    this.blocked.clear();
    for (const node of this.nodes.values()) {
      if (!node.alive && !node.removed) this.#restart(node);
      node.pausedUntil = 0;
    }
    this.healAt = this.now;
    this.probeProposedAt = -1;
    this.#log("heal: network reliable, partitions removed, all nodes up");
  }

  // ---- main loop ------------------------------------------------------------

  #stepMs(): void {
    if (this.now % TICK_MS === 0) this.#everyTick();
    for (const node of this.nodes.values()) {
      if (node.raw && node.pausedUntil <= this.now && (this.now + node.phase) % TICK_MS === 0) {
        node.raw.tick();
        this.#observe(node);
      }
    }
    const evs = this.events.get(this.now);
    if (evs) {
      this.events.delete(this.now);
      this.#shuffle(evs);
      for (const ev of evs) this.#deliver(ev);
    }
    for (const node of this.nodes.values()) {
      if (!node.raw || node.pausedUntil > this.now || !node.raw.hasReady()) continue;
      if (this.chaos && this.rng.next() > this.readyProb) continue; // persistence lags
      this.#handleReady(node);
    }
    this.now++;
  }

  #everyTick(): void {
    const r = this.rng;
    if (this.chaos) {
      if (r.next() < 0.006) this.#crashRandom();
      if (r.next() < 0.004) this.#pauseRandom();
      const victim = this.targeted.get(this.now);
      if (victim !== undefined) {
        this.targeted.delete(this.now);
        const node = this.nodes.get(victim)!;
        if (node.alive && !node.removed) {
          if (r.next() < 0.5) {
            this.#crash(node);
            this.crashedUntil.set(node.id, this.now + (5 + r.intn(100)) * TICK_MS);
          } else {
            this.#pause(node, 5 + r.intn(100));
          }
        }
      }
      for (const [id, until] of this.crashedUntil) {
        if (this.now >= until) {
          this.crashedUntil.delete(id);
          const node = this.nodes.get(id)!;
          if (!node.removed && !node.alive) this.#restart(node);
        }
      }
      if (this.blocked.size === 0 && r.next() < 0.004) this.#partition();
      if (this.blocked.size > 0 && this.now >= this.partitionUntil) {
        this.blocked.clear();
        this.#log("partition healed");
      }
      if (r.next() < 0.004) this.#confChange();
      if (r.next() < 0.002) this.#transferLeader();
      this.#backgroundLoad();
    } else if (!this.probeApplied) {
      this.#probe();
    }
    this.#clients();
  }

  #shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.rng.intn(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
  }

  // ---- faults ----------------------------------------------------------------

  #liveMembers(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive && !n.removed);
  }

  #crashRandom(): void {
    const live = this.#liveMembers();
    if (live.length === 0) return;
    const node = live[this.rng.intn(live.length)];
    this.#crash(node);
    this.crashedUntil.set(node.id, this.now + (20 + this.rng.intn(200)) * TICK_MS);
  }

  #pauseRandom(): void {
    const live = this.#liveMembers();
    if (live.length === 0) return;
    this.#pause(live[this.rng.intn(live.length)], 5 + this.rng.intn(150));
  }

  #pause(node: SimNode, ticks: number): void {
    node.pausedUntil = Math.max(node.pausedUntil, this.now + ticks * TICK_MS);
    this.#log(`pause n${node.id} for ${ticks} ticks`);
  }

  #crash(node: SimNode): void {
    this.stats.crashes++;
    this.#log(`crash n${node.id} (unpersisted state lost)`);
    node.raw = undefined;
    node.ready = undefined;
    node.pausedUntil = 0;
    for (const c of this.clients) {
      if (c.pending && c.pending.node === node.id) this.#failPending(c, "crash");
    }
    node.reads = new Map();
  }

  #restart(node: SimNode): void {
    this.#log(`restart n${node.id}`);
    this.#start(node);
  }

  #partition(): void {
    const ids = [...this.nodes.keys()];
    const kind = this.rng.intn(3);
    if (kind < 2) {
      // Symmetric: split into two sides.
      const side = new Set(ids.filter(() => this.rng.next() < 0.5));
      for (const a of ids) {
        for (const b of ids) {
          if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
        }
      }
      this.#log(`partition: {${[...side]}} | {${ids.filter((i) => !side.has(i))}}`);
    } else {
      // Asymmetric: some directed links fail.
      for (const a of ids) {
        for (const b of ids) {
          if (a !== b && this.rng.next() < 0.3) this.blocked.add(`${a}>${b}`);
        }
      }
      this.#log(`one-way partition: ${[...this.blocked].join(" ")}`);
    }
    this.stats.partitions++;
    this.partitionUntil = this.now + (30 + this.rng.intn(300)) * TICK_MS;
  }

  #leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      if (!n.raw || n.removed || !n.raw.isLeader()) continue;
      const t = n.raw.status().hardState.term;
      if (t > bestTerm) {
        best = n;
        bestTerm = t;
      }
    }
    return best;
  }

  #confChange(): void {
    const leader = this.#leader();
    if (!leader || !leader.raw) return;
    const cs = leader.raw.confState();
    const r = this.rng;
    const spare = [...Array(7).keys()].map((i) => i + 1).filter((id) => !this.nodes.has(id));
    const options: ConfChange[] = [];
    if (cs.voters.length < 7) {
      if (spare.length > 0) {
        options.push({ type: "addLearnerNode", nodeId: spare[0] });
        options.push({ type: "addNode", nodeId: spare[0] });
      }
      for (const l of cs.learners) options.push({ type: "addNode", nodeId: l });
    }
    if (cs.voters.length > 3) {
      for (const v of cs.voters) options.push({ type: "removeNode", nodeId: v });
    }
    for (const l of cs.learners) options.push({ type: "removeNode", nodeId: l });
    if (options.length === 0) return;
    const cc = options[r.intn(options.length)];
    if (!this.nodes.has(cc.nodeId)) {
      // A new member starts empty; it learns the log and membership from the leader.
      const node = new SimNode(cc.nodeId, r.intn(TICK_MS));
      this.nodes.set(cc.nodeId, node);
      this.#start(node);
      this.#log(`start empty n${cc.nodeId}`);
    }
    this.#log(`propose conf change ${cc.type} n${cc.nodeId} via n${leader.id}`);
    try {
      leader.raw.proposeConfChange(cc);
      this.stats.confChanges++;
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  /**
   * Every node that believes it leads gets a stream of proposals, so stale
   * leaders build divergent uncommitted tails (the material of Figure 8).
   */
  #backgroundLoad(): void {
    for (const node of this.nodes.values()) {
      if (!node.raw || node.removed || node.pausedUntil > this.now || !node.raw.isLeader()) {
        continue;
      }
      if (this.rng.next() >= this.loadRate) continue;
      try {
        node.raw.propose(encodeCommand({ kind: "probe", id: -(++this.probeId) }));
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
      }
    }
  }

  #transferLeader(): void {
    const leader = this.#leader();
    if (!leader || !leader.raw) return;
    const voters = leader.raw.confState().voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const to = voters[this.rng.intn(voters.length)];
    this.#log(`transfer leadership n${leader.id} -> n${to}`);
    this.stats.transfers++;
    leader.raw.transferLeader(to);
  }

  #probe(): void {
    const leader = this.#leader();
    if (!leader || !leader.raw) return;
    // Re-propose every few ticks: a proposal may be dropped (e.g. transfer in progress).
    if (this.probeProposedAt >= 0 && this.now - this.probeProposedAt < 20 * TICK_MS) return;
    this.probeProposedAt = this.now;
    this.probeId++;
    try {
      leader.raw.propose(encodeCommand({ kind: "probe", id: this.probeId }));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  // ---- network ---------------------------------------------------------------

  #schedule(at: number, ev: Envelope): void {
    let l = this.events.get(at);
    if (!l) this.events.set(at, l = []);
    l.push(ev);
  }

  #send(m: Message): void {
    this.stats.messages++;
    const lost = this.blocked.has(`${m.from}>${m.to}`) || this.rng.next() < this.dropRate;
    if (this.opts.trace) this.#log(`send ${fmtMsg(m)}${lost ? " (lost)" : ""}`);
    if (m.type === "MsgSnap") this.stats.snapshotsSent++;
    if (lost) {
      // A broken link is noticed by the sender's transport (etcd reports the
      // peer unreachable when its stream fails).
      if (this.blocked.has(`${m.from}>${m.to}`) && m.type === "MsgApp" && this.rng.next() < 0.3) {
        this.#schedule(this.now + 1 + this.rng.intn(this.maxDelay), { kind: "unreachable", m });
      }
      // A failed snapshot stream is reported back to the sender, as etcd's transport does.
      if (m.type === "MsgSnap") {
        this.#schedule(this.now + 1 + this.rng.intn(this.maxDelay), {
          kind: "snapStatus",
          m,
          failed: true,
        });
      }
      return;
    }
    const held = this.rng.next() < this.longDelayRate;
    const delay = held ? 100 + this.rng.intn(2000) : 1 + this.rng.intn(this.maxDelay);
    this.#schedule(this.now + delay, { kind: "msg", m });
    if (m.type !== "MsgSnap" && this.rng.next() < this.dupRate) {
      this.#schedule(this.now + 1 + this.rng.intn(this.maxDelay * 3), { kind: "msg", m });
    }
  }

  #deliver(ev: Envelope): void {
    const m = ev.m;
    if (ev.kind === "snapStatus") {
      const sender = this.nodes.get(m.from);
      sender?.raw?.reportSnapshot(m.to, ev.failed ?? false);
      return;
    }
    if (ev.kind === "unreachable") {
      this.nodes.get(m.from)?.raw?.reportUnreachable(m.to);
      return;
    }
    const to = this.nodes.get(m.to);
    if (to && to.raw && to.pausedUntil > this.now) {
      // A paused process reads its socket buffers when it resumes.
      this.#schedule(to.pausedUntil + this.rng.intn(3), ev);
      return;
    }
    const failed = !to || !to.raw || to.removed || this.blocked.has(`${m.from}>${m.to}`);
    if (m.type === "MsgSnap") {
      this.#schedule(this.now + 1, { kind: "snapStatus", m, failed });
    }
    if (failed) return;
    if (this.opts.trace) this.#log(`recv ${fmtMsg(m)}`);
    try {
      to.raw!.step(m);
      this.#observe(to);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  // ---- ready handling and checks ----------------------------------------------

  #handleReady(node: SimNode): void {
    const raw = node.raw!;
    const rd = raw.ready();
    if (rd.softState) {
      this.#log(
        `n${node.id} is ${rd.softState.raftState} (lead n${rd.softState.lead}, term ${raw.status().hardState.term})`,
      );
      if (rd.softState.raftState === "leader") {
        this.#checkNewLeader(node);
        if (this.chaos && this.rng.next() < this.leaderKillRate) {
          // Figure 8-style fault: the new leader fails mid-replication.
          const at = (Math.floor(this.now / TICK_MS) + 1 + this.rng.intn(3)) * TICK_MS;
          this.targeted.set(at, node.id);
        }
      }
    }
    // Persist, send, apply, advance: the server's code, over this node's ports.
    const ready = node.ready!;
    if (ready.handle(rd) !== undefined) {
      this.#violate("a Ready over synchronous ports completes at once");
    }
    if (ready.applied !== node.applied) {
      this.#violate(
        `n${node.id} applied ${ready.applied} but its state machine got ${node.applied}`,
      );
    }
    this.#serveReads(node);
    this.#maybeSnapshot(node);
    for (const id of this.toRetire.splice(0)) this.#retire(id);
    if (!node.raw) return; // retired itself
    if (
      this.chaos && rd.hardState && rd.committedEntries.length > 0 && raw.isLeader() &&
      this.rng.next() < this.leaderKillRate / 2
    ) {
      // Crash point: a leader fails right after advancing its commit index,
      // before its followers learn of it.
      this.#crash(node);
      this.crashedUntil.set(node.id, this.now + (5 + this.rng.intn(100)) * TICK_MS);
    }
  }

  /**
   * Checks a Ready's writes before they reach `node`'s durable storage: log
   * matching, committed entries never overwritten, and a commit index that
   * covers only entries matching what was committed elsewhere.
   */
  #checkWrite(
    node: SimNode,
    hardState: HardState | undefined,
    entries: Entry[],
    snapshot: Snapshot | undefined,
  ): void {
    const after = new LogAfterWrite(node.storage, snapshot, entries);
    if (entries.length > 0) {
      this.#checkLogMatching(node, entries, after.termBeforeEntries(entries[0].index - 1));
      if (entries[0].index <= after.lastBeforeEntries) {
        this.stats.truncations++;
        // Committed entries are never lost: nothing at or below the durable
        // commit index is ever overwritten.
        const durableCommit = node.storage.hardState().commit;
        const first = entries[0];
        if (first.index <= durableCommit && after.termBeforeEntries(first.index) !== first.term) {
          this.#violate(
            `committed entry lost: n${node.id} overwrites ${first.index} (commit ${durableCommit})`,
          );
        }
      }
    }
    if (hardState) {
      this.#checkCommitted(node, node.storage.hardState().commit, hardState.commit, after);
    }
  }

  /** Log matching: an (index, term) pair always has the same data and the same previous term. */
  #checkLogMatching(node: SimNode, ents: Entry[], prevTerm: number | undefined): void {
    for (const e of ents) {
      const key = `${e.index}:${e.term}`;
      const ident = `${dataKey(e)}|${prevTerm ?? "?"}`;
      const seen = this.entryIdentity.get(key);
      if (seen === undefined) {
        if (prevTerm !== undefined) this.entryIdentity.set(key, ident);
      } else if (prevTerm !== undefined && seen !== ident) {
        this.#violate(
          `log matching: n${node.id} has entry ${key} with (data|prevTerm) ${ident}, another log has ${seen}`,
        );
      }
      prevTerm = e.term;
    }
  }

  /** A node's newly committed entries match what other nodes applied there. */
  #checkCommitted(node: SimNode, from: number, to: number, log: LogAfterWrite): void {
    if (to > log.lastIndex()) {
      this.#violate(`n${node.id} persists commit ${to} beyond its last index ${log.lastIndex()}`);
    }
    for (let i = Math.max(from + 1, log.firstIndex()); i <= to; i++) {
      const ct = this.committedTerm[i];
      if (ct !== undefined && log.term(i) !== ct) {
        this.#violate(
          `committed entry lost: n${node.id} commits ${i}:${
            log.term(i)
          } but ${i}:${ct} was committed`,
        );
      }
    }
  }

  /** Checks election safety and leader completeness as soon as a node leads (after every step). */
  #observe(node: SimNode): void {
    if (node.raw && node.raw.raft.state === "leader") this.#checkNewLeader(node);
  }

  #checkNewLeader(node: SimNode): void {
    const raw = node.raw!;
    const term = raw.raft.term;
    const other = this.leaderOfTerm.get(term);
    if (other === node.id) return; // already checked for this term
    this.stats.elections++;
    if (other !== undefined && other !== node.id) {
      this.#violate(`election safety: n${node.id} and n${other} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, node.id);
    // Leader completeness (§5.4): a leader of term T holds every entry
    // committed in a term before T. A late-elected leader of an older term
    // need not, so each entry is checked against an upper bound of the term
    // it was committed in (the term of the first node seen applying it).
    const log = raw.logView();
    for (let i = Math.max(log.firstIndex(), 1); i <= this.maxCommitted; i++) {
      const ct = this.committedTerm[i];
      if (ct === undefined || this.commitTermBound[i] >= term) continue;
      if (log.term(i) !== ct) {
        this.#violate(
          `leader completeness: leader n${node.id} of term ${term} has term ${
            log.term(i)
          } at committed index ${i} (committed term ${ct})`,
        );
      }
    }
  }

  /** The state machine port: checks each entry, applies the batch, then answers clients. */
  #apply(node: SimNode, entries: Entry[]): void {
    for (const e of entries) this.#checkApply(node, e);
    node.sm.apply(entries);
    for (const e of entries) this.#answer(node, e);
  }

  /** State machine safety: every node applies the same entry at an index, in order. */
  #checkApply(node: SimNode, e: Entry): void {
    const dk = dataKey(e);
    const seenTerm = this.committedTerm[e.index];
    if (seenTerm === undefined) {
      this.committedTerm[e.index] = e.term;
      this.committedData[e.index] = dk;
      this.commitTermBound[e.index] = node.raw!.raft.term;
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      this.stats.committed++;
    } else if (seenTerm !== e.term || this.committedData[e.index] !== dk) {
      this.#violate(
        `state machine safety: n${node.id} applies ${e.index}:${e.term} but ${e.index}:${seenTerm} was applied before`,
      );
    }
    if (e.index !== node.applied + 1) {
      this.#violate(`n${node.id} applies index ${e.index} after ${node.applied}`);
    }
    node.applied = e.index;
  }

  /** An applied probe proves liveness; an applied write answers the client waiting on this node. */
  #answer(node: SimNode, e: Entry): void {
    if (e.type !== "normal") return;
    const cmd = decodeCommand(e.data);
    if (!cmd) return;
    if (cmd.kind === "probe") {
      if (!this.chaos && this.nodes.get(node.id)?.raw?.isLeader()) this.probeApplied = true;
      return;
    }
    const c = this.clients[cmd.client - 1];
    const p = c?.pending;
    if (p && p.node === node.id && p.req === cmd.req) {
      p.op.ret = this.now;
      this.history.push(p.op);
      c.pending = undefined;
      c.nextAt = this.now + this.rng.intn(5 * TICK_MS);
    }
  }

  #retire(id: number): void {
    const node = this.nodes.get(id);
    if (!node || node.removed) return;
    // A removed member shuts itself down (etcd: the member stops once removed,
    // and peers refuse its messages); its ID is never reused.
    this.#log(`retire n${id}`);
    if (node.alive) this.#crash(node);
    node.removed = true;
    this.crashedUntil.delete(id);
  }

  #maybeSnapshot(node: SimNode): void {
    const snapIndex = node.storage.snapshot().metadata.index;
    if (node.applied - snapIndex < this.snapshotEvery) return;
    node.storage.createSnapshot(node.applied, node.ready!.confState, node.sm.snapshot());
    const compactTo = node.applied - this.compactKeep;
    if (compactTo > node.storage.firstIndex() - 1) node.storage.compact(compactTo);
  }

  // ---- clients ---------------------------------------------------------------

  #clients(): void {
    for (const c of this.clients) {
      if (c.pending) {
        if (this.now - c.pending.op.call > CLIENT_TIMEOUT_MS) this.#failPending(c, "timeout");
        continue;
      }
      if (this.now < c.nextAt) continue;
      const live = this.#liveMembers();
      if (live.length === 0) continue;
      const node = live[this.rng.intn(live.length)];
      this.#invoke(c, node);
    }
  }

  #invoke(c: Client, node: SimNode): void {
    const key = KEYS[this.rng.intn(KEYS.length)];
    const roll = this.rng.next();
    c.req++;
    this.stats.clientOps++;
    if (roll < 0.45 && this.opts.localReads) {
      this.history.push({
        client: c.id,
        key,
        kind: "get",
        output: node.sm.get(key) ?? null,
        call: this.now,
        ret: this.now,
      });
      c.nextAt = this.now + this.rng.intn(5 * TICK_MS);
      return;
    }
    if (roll < 0.45) {
      const ctx = `r${c.id}-${c.req}`;
      const op: Operation = { client: c.id, key, kind: "get", call: this.now, ret: Infinity };
      c.pending = { op, node: node.id, req: c.req, ctx };
      node.reads.set(ctx, c.pending);
      node.raw!.readIndex(new TextEncoder().encode(ctx));
      return;
    }
    const cmd: Command = roll < 0.9
      ? { kind: "put", client: c.id, req: c.req, key, value: `c${c.id}-${c.req}` }
      : { kind: "delete", client: c.id, req: c.req, key };
    const op: Operation = {
      client: c.id,
      key,
      kind: cmd.kind === "put" ? "put" : "delete",
      value: cmd.kind === "put" ? cmd.value : undefined,
      call: this.now,
      ret: Infinity,
    };
    c.pending = { op, node: node.id, req: c.req };
    try {
      node.raw!.propose(encodeCommand(cmd));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      // Dropped before reaching any log: the write certainly did not happen.
      c.pending = undefined;
      c.nextAt = this.now + TICK_MS;
    }
  }

  #serveReads(node: SimNode): void {
    for (const [ctx, p] of node.reads) {
      if (p.readIndex === undefined || node.applied < p.readIndex) continue;
      node.reads.delete(ctx);
      const c = this.clients[p.op.client - 1];
      if (c.pending !== p) continue;
      p.op.output = node.sm.get(p.op.key) ?? null;
      p.op.ret = this.now;
      this.history.push(p.op);
      c.pending = undefined;
      c.nextAt = this.now + this.rng.intn(5 * TICK_MS);
    }
  }

  #failPending(c: Client, why: string): void {
    const p = c.pending!;
    c.pending = undefined;
    c.nextAt = this.now + TICK_MS;
    this.nodes.get(p.node)?.reads.delete(p.ctx ?? "");
    // A failed read has no effect; a write may or may not have happened.
    if (p.op.kind !== "get") this.history.push(p.op); // ret stays Infinity
    this.#log(`client ${c.id} op ${p.op.kind} ${p.op.key} ${why}`);
  }

  #finishClients(): void {
    for (const c of this.clients) {
      if (c.pending) this.#failPending(c, "end of run");
    }
  }
}

/**
 * The log a node's storage holds once a Ready's snapshot and entries are
 * written, seen before the write (the persistence port checks it then).
 */
class LogAfterWrite {
  readonly #storage: MemoryStorage;
  readonly #snapshot: Snapshot | undefined;
  readonly #entries: Entry[];
  /** Last index once the snapshot is written, before the entries are. */
  readonly lastBeforeEntries: number;

  constructor(storage: MemoryStorage, snapshot: Snapshot | undefined, entries: Entry[]) {
    this.#storage = storage;
    this.#snapshot = snapshot;
    this.#entries = entries;
    this.lastBeforeEntries = snapshot?.metadata.index ?? storage.lastIndex();
  }

  firstIndex(): number {
    return this.#snapshot ? this.#snapshot.metadata.index + 1 : this.#storage.firstIndex();
  }

  lastIndex(): number {
    const last = this.#entries.at(-1)?.index;
    return last === undefined || last < this.firstIndex() ? this.lastBeforeEntries : last;
  }

  /** Term of index `i` once the snapshot is written, before the entries are; undefined outside the log. */
  termBeforeEntries(i: number): number | undefined {
    if (this.#snapshot) {
      return i === this.#snapshot.metadata.index ? this.#snapshot.metadata.term : undefined;
    }
    try {
      return this.#storage.term(i);
    } catch {
      return undefined;
    }
  }

  /** Term of index `i` once everything is written; undefined outside the log. */
  term(i: number): number | undefined {
    const ents = this.#entries;
    if (ents.length > 0 && i >= ents[0].index && this.lastIndex() === ents.at(-1)!.index) {
      return ents[i - ents[0].index]?.term;
    }
    return this.termBeforeEntries(i);
  }
}

function dataKey(e: Entry): string {
  let s = e.type === "confChange" ? "C" : "N";
  for (const b of e.data) s += String.fromCharCode(b);
  return s;
}

function fmtMsg(m: Message): string {
  let s = `${m.type} n${m.from}->n${m.to} term=${m.term}`;
  if (m.type === "MsgApp") {
    s += ` prev=${m.index}:${m.logTerm} n=${m.entries.length} commit=${m.commit}`;
  } else if (m.type === "MsgAppResp") {
    s += ` index=${m.index}${m.reject ? ` reject hint=${m.rejectHint}:${m.logTerm}` : ""}`;
  } else if (m.type === "MsgVote" || m.type === "MsgPreVote") s += ` last=${m.index}:${m.logTerm}`;
  else if (m.type === "MsgVoteResp" || m.type === "MsgPreVoteResp") {
    s += m.reject ? " reject" : " grant";
  } else if (m.type === "MsgHeartbeat") s += ` commit=${m.commit}`;
  else if (m.type === "MsgSnap") {
    s += ` snap=${m.snapshot?.metadata.index}:${m.snapshot?.metadata.term}`;
  } else if (m.type === "MsgProp") s += ` n=${m.entries.length}`;
  return s;
}
