/**
 * etcd's Maintenance service; so far Status.
 *
 * @module
 */
import type { StatusResponse } from "../../core/api/types.ts";
import { Meta } from "../../core/mvcc/view.ts";
import { ETCD_API_VERSION } from "../../version.ts";
import type { ServiceContext } from "./context.ts";

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
   * store's size and size in use in bytes, the leader (this member: clusters
   * have one voting member so far), the Raft index, term and applied index.
   * The revision and the applied index come from one read snapshot, so they
   * describe the same state. `errors` is empty (no alarms yet) and
   * `isLearner` false. Never fails.
   */
  async status(): Promise<StatusResponse> {
    const ctx = this.#ctx;
    await ctx.linearize();
    const view = ctx.view();
    const applied = Number(ctx.backend.getMeta(Meta.appliedIndex) ?? 0);
    const { dbSize, dbSizeInUse } = ctx.backend.size();
    return {
      header: ctx.header(view.rev()),
      version: ETCD_API_VERSION,
      dbSize,
      leader: ctx.memberId,
      raftIndex: Math.max(applied, ctx.proposer.appliedIndex),
      raftTerm: ctx.proposer.term,
      raftAppliedIndex: applied,
      errors: [],
      dbSizeInUse,
      isLearner: false,
    };
  }
}
