/**
 * etcd's Maintenance service; so far Status.
 *
 * @module
 */
import type { StatusResponse } from "../../core/api/types.ts";
import { Meta } from "../../core/mvcc/view.ts";
import { ETCD_API_VERSION } from "../../version.ts";
import type { ServiceContext } from "./context.ts";
import type { RaftStatus } from "../cluster/manager.ts";

/** The Maintenance service of one member. */
export class MaintenanceServer {
  #ctx: ServiceContext;

  /** The Maintenance service over a member's shared service context. */
  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /**
   * etcd Maintenance.Status of this member, once every acknowledged write is
   * visible: the current revision (in the header), the etcd API version, the
   * store's size and size in use in bytes, the leader's member ID (0 when
   * none is known), the Raft commit index, term and applied index.
   * The revision and the applied index come from one read snapshot, so they
   * describe the same state. `errors` is empty (no alarms yet).
   */
  async status(): Promise<StatusResponse> {
    const ctx = this.#ctx;
    await ctx.linearize();
    const raft = await ctx.proposer.cluster({ method: "raft_status" }) as RaftStatus;
    const view = ctx.view();
    const applied = Number(ctx.backend.getMeta(Meta.appliedIndex) ?? 0);
    const { dbSize, dbSizeInUse } = ctx.backend.size();
    return {
      header: { ...ctx.header(view.rev()), raft_term: raft.raftTerm },
      version: ETCD_API_VERSION,
      dbSize,
      leader: BigInt(raft.leader),
      raftIndex: Math.max(applied, raft.raftIndex),
      raftTerm: raft.raftTerm,
      raftAppliedIndex: applied,
      errors: [],
      dbSizeInUse,
      isLearner: raft.isLearner,
    };
  }
}
