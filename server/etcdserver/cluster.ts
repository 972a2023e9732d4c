/**
 * etcd's Cluster service (MemberAdd, MemberRemove, MemberUpdate, MemberList,
 * MemberPromote) and Maintenance.MoveLeader: requests checked and
 * translated here, carried out by the member's cluster manager
 * (server/cluster/manager.ts) on the thread running the raft node.
 *
 * @module
 */
import type {
  Member,
  MemberAddRequest,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  ResponseHeader,
} from "../../core/api/types.ts";
import { Errors } from "../../core/errors.ts";
import type { MemberInfo } from "../cluster/manager.ts";
import type { Credentials, ServiceContext } from "./context.ts";
import { adminPermission } from "../../core/auth/permission.ts";

/** The Cluster service of one member. */
export class ClusterServer {
  #ctx: ServiceContext;

  /** The Cluster service over a member's shared service context. */
  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /** A header without a revision, as etcd's cluster responses have. */
  #header(): ResponseHeader {
    return this.#ctx.header(0);
  }

  /** etcd MemberList: every member, in the order they joined. */
  async memberList(): Promise<MemberListResponse> {
    const r = await this.#ctx.proposer.cluster({ method: "member_list" }) as {
      members: MemberInfo[];
    };
    return { header: this.#header(), members: r.members.map(member) };
  }

  /**
   * etcd MemberAdd: a member (a learner when `isLearner`) with these peer
   * URLs, once the change is applied.
   *
   * @throws {EtcdError} BadMemberURLs, PeerURLExists, NoLeader, Timeout;
   *   InvalidAuthToken, UserEmpty, UserNotFound, PermissionDenied (auth:
   *   root only, as every membership change).
   */
  async memberAdd(req: MemberAddRequest, creds?: Credentials): Promise<MemberAddResponse> {
    await this.#admin(creds);
    const r = await this.#ctx.proposer.cluster({
      method: "member_add",
      peerURLs: req.peerURLs ?? [],
      isLearner: req.isLearner === true,
    }) as { member: MemberInfo; members: MemberInfo[] };
    return { header: this.#header(), member: member(r.member), members: r.members.map(member) };
  }

  /**
   * etcd MemberRemove.
   *
   * @throws {EtcdError} MemberNotFound, NoLeader, Timeout.
   */
  async memberRemove(req: MemberRemoveRequest, creds?: Credentials): Promise<MemberRemoveResponse> {
    await this.#admin(creds);
    return await this.#members({ method: "member_remove", ID: req.ID ?? 0n });
  }

  /**
   * etcd MemberUpdate: new peer URLs for a member.
   *
   * @throws {EtcdError} BadMemberURLs, MemberNotFound, NoLeader, Timeout.
   */
  async memberUpdate(req: MemberUpdateRequest, creds?: Credentials): Promise<MemberUpdateResponse> {
    await this.#admin(creds);
    return await this.#members({
      method: "member_update",
      ID: req.ID ?? 0n,
      peerURLs: req.peerURLs ?? [],
    });
  }

  /**
   * etcd MemberPromote: a learner becomes a voter.
   *
   * @throws {EtcdError} MemberNotFound, MemberNotLearner, LearnerNotReady.
   */
  async memberPromote(
    req: MemberPromoteRequest,
    creds?: Credentials,
  ): Promise<MemberPromoteResponse> {
    await this.#admin(creds);
    return await this.#members({ method: "member_promote", ID: req.ID ?? 0n });
  }

  /**
   * etcd Maintenance.MoveLeader: the leader hands leadership to `targetID`.
   *
   * @throws {EtcdError} NotLeader on a follower; BadLeaderTransferee;
   *   Timeout when the transfer did not happen in time.
   */
  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    if ((req.targetID ?? 0n) === 0n) throw Errors.BadLeaderTransferee();
    await this.#ctx.proposer.cluster({ method: "move_leader", targetID: req.targetID });
    // etcd 3.4 answers `{}`: no header.
    return {};
  }

  /** etcd's checkMembershipOperationPermission: while auth is on, root only. */
  async #admin(creds: Credentials | undefined): Promise<void> {
    const info = await this.#ctx.caller(creds);
    this.#ctx.authorize(info, adminPermission);
  }

  async #members(
    call: Parameters<ServiceContext["proposer"]["cluster"]>[0],
  ): Promise<MemberListResponse> {
    const r = await this.#ctx.proposer.cluster(call) as { members: MemberInfo[] };
    return { header: this.#header(), members: r.members.map(member) };
  }
}

function member(m: MemberInfo): Member {
  return {
    ID: BigInt(m.ID),
    name: m.name,
    peerURLs: m.peerURLs,
    clientURLs: m.clientURLs,
    isLearner: m.isLearner,
  };
}
