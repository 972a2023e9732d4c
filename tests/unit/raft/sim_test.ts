/**
 * The deterministic simulator in CI: 200 seeds of the real core must show no
 * violation, and each protocol mutant must be caught within 200 seeds (this
 * proves the safety checks can fail). Every node handles its Readys with the
 * server's ReadyHandler (server/raftnode/ready.ts); broken variants of it must
 * be caught too.
 */

import assert from "node:assert/strict";
import { MUTANTS, type Ready } from "../../../core/raft/mod.ts";
import { ReadyHandler } from "../../../server/raftnode/ready.ts";
import { runSimulation } from "../../sim/cluster.ts";

Deno.test("sim: 200 seeds of the real core have no violations", () => {
  const failures: string[] = [];
  let linearizable = 0;
  const totals: Record<string, number> = {};
  for (let seed = 1; seed <= 200; seed++) {
    const r = runSimulation({ seed });
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations[0]}`);
    if (r.linearizability === "ok") linearizable++;
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
  }
  assert.deepEqual(failures, []);
  // The runs must actually exercise the protocol: every fault and feature occurs.
  for (
    const k of [
      "elections",
      "crashes",
      "partitions",
      "confChanges",
      "snapshotsSent",
      "transfers",
      "truncations",
      "clientOps",
    ]
  ) {
    assert.ok(totals[k] >= 200, `${k}: ${totals[k]} over 200 seeds`);
  }
  // The linearizability checker must actually have decided most histories.
  assert.ok(linearizable >= 190, `linearizability decided for ${linearizable}/200 seeds`);
});

Deno.test("sim: 200 seeds with core/mvcc as every node's state machine have no violations", () => {
  const failures: string[] = [];
  let linearizable = 0;
  let ops = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const r = runSimulation({ seed, stateMachine: "mvcc" });
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations[0]}`);
    if (r.linearizability === "ok") linearizable++;
    ops += r.stats.clientOps;
  }
  assert.deepEqual(failures, []);
  assert.ok(ops >= 200 * 20, `client operations: ${ops} over 200 seeds`);
  assert.ok(linearizable >= 190, `linearizability decided for ${linearizable}/200 seeds`);
});

Deno.test("sim: over core/mvcc too, stale local reads are caught by the linearizability checker", () => {
  let caughtAt = 0;
  for (let seed = 1; seed <= 100 && caughtAt === 0; seed++) {
    const r = runSimulation({ seed, localReads: true, stateMachine: "mvcc" });
    if (r.violations.some((v) => v.startsWith("linearizability"))) caughtAt = seed;
  }
  assert.ok(caughtAt > 0, "stale reads went unnoticed for 100 seeds");
});

for (const mutant of MUTANTS) {
  Deno.test(`sim: mutant ${mutant} is caught within 200 seeds`, () => {
    let caughtAt = 0;
    for (let seed = 1; seed <= 200 && caughtAt === 0; seed++) {
      if (runSimulation({ seed, mutant }).violations.length > 0) caughtAt = seed;
    }
    assert.ok(caughtAt > 0, `mutant ${mutant} survived 200 seeds`);
  });
}

Deno.test("sim: a run is a pure function of its seed", () => {
  const a = runSimulation({ seed: 7, trace: true });
  const b = runSimulation({ seed: 7, trace: true });
  assert.deepEqual(a.stats, b.stats);
  assert.deepEqual(a.trace, b.trace);
  const c = runSimulation({ seed: 8 });
  assert.notDeepEqual(a.stats, c.stats);
});

Deno.test("sim: stale local reads (no ReadIndex) are caught by the linearizability checker", () => {
  let caughtAt = 0;
  for (let seed = 1; seed <= 100 && caughtAt === 0; seed++) {
    const r = runSimulation({ seed, localReads: true });
    if (r.violations.some((v) => v.startsWith("linearizability"))) caughtAt = seed;
  }
  assert.ok(caughtAt > 0, "stale reads went unnoticed for 100 seeds");
});

/**
 * Run the mvcc simulation with every Ready rewritten by `mutate` before the
 * server's ReadyHandler gets it; the seed of the first violation, or 0.
 */
function firstCaught(mutate: (rd: Ready) => Ready): number {
  const handle = ReadyHandler.prototype.handle;
  let handled = 0;
  ReadyHandler.prototype.handle = function (this: ReadyHandler, rd: Ready) {
    handled++;
    return handle.call(this, mutate(rd));
  };
  try {
    for (let seed = 1; seed <= 200; seed++) {
      if (runSimulation({ seed, stateMachine: "mvcc" }).violations.length > 0) return seed;
    }
    return 0;
  } finally {
    ReadyHandler.prototype.handle = handle;
    assert.ok(handled > 0, "the simulator's nodes handle Readys with the server's ReadyHandler");
  }
}

Deno.test("sim: a Ready handling that forgets the vote it persists is caught", () => {
  const caughtAt = firstCaught((rd) =>
    rd.hardState === undefined ? rd : { ...rd, hardState: { ...rd.hardState, vote: 0 } }
  );
  assert.ok(caughtAt > 0, "a forgotten vote went unnoticed for 200 seeds");
});

Deno.test("sim: a Ready handling that serves read states before they are applied is caught", () => {
  const caughtAt = firstCaught((rd) => ({
    ...rd,
    readStates: rd.readStates.map((s) => ({ ...s, index: 0 })),
  }));
  assert.ok(caughtAt > 0, "stale read states went unnoticed for 200 seeds");
});
