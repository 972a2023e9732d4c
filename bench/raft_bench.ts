/**
 * Pure CPU cost of cairn's Raft core: proposals per second through a
 * 3-node cluster on an in-memory synchronous network with no faults
 * (MemoryStorage, no fsync, no serialization). Each iteration commits and
 * applies 1,000 proposals of 64 bytes on all three nodes.
 *
 *   deno bench bench/raft_bench.ts          # Deno.bench figures
 *   deno run bench/raft_bench.ts            # prints proposals/s directly
 *
 * Results live in bench/README.md, section "Raft core (simulated)".
 */

import {
  decodeConfChange,
  MemoryStorage,
  type Message,
  Mulberry32,
  RawNode,
} from "../core/raft/mod.ts";

interface Member {
  id: number;
  storage: MemoryStorage;
  node: RawNode;
  applied: number;
}

/** A 3-node cluster with a synchronous, lossless network. */
class Cluster {
  members: Member[] = [];
  byId: Map<number, Member> = new Map();

  constructor(size: number) {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.applySnapshot({
        metadata: { index: 1, term: 1, confState: { voters, learners: [] } },
        data: new Uint8Array(),
      });
      storage.setHardState({ term: 1, vote: 0, commit: 1 });
      const node = new RawNode({
        id,
        electionTick: 10,
        heartbeatTick: 1,
        storage,
        prng: new Mulberry32(id),
        maxSizePerMsg: 1024 * 1024,
        maxInflightMsgs: 256,
      });
      const m = { id, storage, node, applied: 1 };
      this.members.push(m);
      this.byId.set(id, m);
    }
    this.members[0].node.campaign();
    this.settle();
  }

  /** Runs Ready rounds until the network is quiet. Returns entries applied. */
  settle(): number {
    let applied = 0;
    for (;;) {
      const msgs: Message[] = [];
      for (const m of this.members) {
        if (!m.node.hasReady()) continue;
        const rd = m.node.ready();
        if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
        m.storage.append(rd.entries);
        if (rd.hardState) m.storage.setHardState(rd.hardState);
        for (const msg of rd.messages) msgs.push(msg);
        for (const e of rd.committedEntries) {
          if (e.type === "confChange") m.node.applyConfChange(decodeConfChange(e.data));
          m.applied = e.index;
          applied++;
        }
        m.node.advance();
        // Keep memory bounded: compact everything applied.
        if (m.applied - m.storage.firstIndex() > 10_000) m.storage.compact(m.applied - 1_000);
      }
      if (msgs.length === 0) return applied;
      for (const msg of msgs) this.byId.get(msg.to)!.node.step(msg);
    }
  }
}

const PAYLOAD = new Uint8Array(64).fill(7);
const PER_ITERATION = 1_000;

/** Proposes one at a time, settling the cluster after each (latency-bound). */
function oneByOne(c: Cluster): void {
  const leader = c.members[0].node;
  for (let i = 0; i < PER_ITERATION; i++) {
    leader.propose(PAYLOAD);
    c.settle();
  }
}

/** Proposes in batches of 100 per Ready round (how load batches under group commit). */
function batched(c: Cluster): void {
  const leader = c.members[0].node;
  for (let i = 0; i < PER_ITERATION; i += 100) {
    for (let j = 0; j < 100; j++) leader.propose(PAYLOAD);
    c.settle();
  }
}

if (import.meta.main) {
  for (
    const [name, fn] of [["one proposal per round", oneByOne], [
      "100 proposals per round",
      batched,
    ]] as const
  ) {
    const c = new Cluster(3);
    fn(c); // warm up
    const rounds = 20;
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) fn(c);
    const secs = (performance.now() - t0) / 1000;
    console.log(`${name}: ${Math.round((rounds * PER_ITERATION) / secs)} proposals/s`);
  }
} else {
  const c1 = new Cluster(3);
  Deno.bench({
    name: "raft: 1,000 proposals, one per Ready round, 3 nodes",
    group: "raft",
    baseline: true,
    fn: () => oneByOne(c1),
  });
  const c2 = new Cluster(3);
  Deno.bench({
    name: "raft: 1,000 proposals, 100 per Ready round, 3 nodes",
    group: "raft",
    fn: () => batched(c2),
  });
}
