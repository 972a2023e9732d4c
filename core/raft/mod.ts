/**
 * cairn's Raft core: a pure state machine in etcd-raft's shape. Start with
 * `RawNode` and `MemoryStorage`; see core/raft/README.md for the
 * persist/send/apply order and the membership-change design.
 *
 * @module
 */

export * from "./types.ts";
export * from "./storage.ts";
export { RaftLog, Unstable } from "./log.ts";
export {
  Inflights,
  Progress,
  type ProgressState,
  ProgressTracker,
  type VoteResult,
} from "./tracker.ts";
export { type ReadIndexStatus, ReadOnly } from "./read_only.ts";
export { Raft, type RaftConfig } from "./raft.ts";
export { type LogView, type ProgressStatus, RawNode, type Status } from "./raw_node.ts";
export { Mulberry32, type Prng } from "./prng.ts";
export { type Mutant, MUTANTS } from "./mutant.ts";
