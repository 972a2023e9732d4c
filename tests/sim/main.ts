/**
 * `deno task sim`: runs the deterministic Raft cluster simulator.
 *
 * ```
 * deno task sim --seeds 200            # seeds 1..200 (add --random for a random start)
 * deno task sim --seed 17              # replay one seed; prints the trace of a failure
 * deno task sim --mutant no-term-check # run with a deliberate protocol bug (default 200 seeds)
 * deno task sim --mvcc                 # nodes run core/mvcc (cairn's state machine), not a Map
 * deno task sim --local-reads          # serve gets without ReadIndex: the checker must object
 * ```
 * The last line is always `N seeds, V violations`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Mutant, MUTANTS } from "../../core/raft/mod.ts";
import { runSimulation } from "./cluster.ts";

function main(): number {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seeds: { type: "string" },
      seed: { type: "string" },
      from: { type: "string" },
      random: { type: "boolean", default: false },
      mutant: { type: "string" },
      "local-reads": { type: "boolean", default: false },
      mvcc: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
    },
  });
  let mutant: Mutant | undefined;
  if (values.mutant !== undefined) {
    if (!(MUTANTS as readonly string[]).includes(values.mutant)) {
      console.error(`Unknown mutant: ${values.mutant} (one of ${MUTANTS.join(", ")})`);
      return 2;
    }
    mutant = values.mutant as Mutant;
  }
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    const r = runSimulation({
      seed,
      mutant,
      trace: true,
      localReads: values["local-reads"],
      stateMachine: values.mvcc ? "mvcc" : "toy",
    });
    if (r.violations.length > 0 || values.verbose) {
      for (const line of r.trace) console.log(line);
    }
    for (const v of r.violations) console.log(`seed ${seed}: VIOLATION ${v}`);
    console.log(`seed ${seed}: ${JSON.stringify(r.stats)} linearizability=${r.linearizability}`);
    console.log(`1 seeds, ${r.violations.length} violations`);
    return r.violations.length > 0 ? 1 : 0;
  }
  const n = Number(values.seeds ?? 200);
  const from = values.from !== undefined
    ? Number(values.from)
    : values.random
    ? Math.floor(Math.random() * 2 ** 31)
    : 1;
  if (values.random) console.log(`seeds ${from}..${from + n - 1}`);
  let violations = 0;
  let failedSeeds = 0;
  const start = performance.now();
  for (let s = from; s < from + n; s++) {
    const r = runSimulation({
      seed: s,
      mutant,
      localReads: values["local-reads"],
      stateMachine: values.mvcc ? "mvcc" : "toy",
    });
    if (r.violations.length > 0) {
      failedSeeds++;
      violations += r.violations.length;
      console.log(`seed ${s}: VIOLATION ${r.violations[0]}`);
      if (failedSeeds === 1) {
        console.log(`  replay: deno task sim --seed ${s}${mutant ? ` --mutant ${mutant}` : ""}`);
      }
    } else if (values.verbose) {
      console.log(`seed ${s}: ok ${JSON.stringify(r.stats)} linearizability=${r.linearizability}`);
    }
  }
  const secs = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`(${secs} s${mutant ? `, mutant ${mutant}` : ""})`);
  console.log(`${n} seeds, ${violations} violations`);
  return mutant ? 0 : violations > 0 ? 1 : 0;
}

Deno.exit(main());
