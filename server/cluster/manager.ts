/**
 * etcd's Cluster service and the Raft side of Maintenance (status, leader
 * transfer) over a member's raft node. Runs on the main thread, beside the
 * node; HTTP worker threads reach it through their proposer's `cluster`
 * call.
 *
 * @module
 */
import { Errors } from "../../core/errors.ts";
import { invariant } from "../../core/invariant.ts";
import type { RaftNode } from "../raftnode/node.ts";
import { type Member, type Membership } from "./membership.ts";
import { encodeMemberContext } from "./membership.ts";
import { log } from "../log.ts";

/** A request to the cluster manager (the same from every thread). */
export type ClusterCall =
  | { method: "member_list" }
  | { method: "member_add"; peerURLs: string[]; isLearner: boolean }
  | { method: "member_remove"; ID: bigint }
  | { method: "member_update"; ID: bigint; peerURLs: string[] }
  | { method: "member_promote"; ID: bigint }
  | { method: "raft_status" }
  | { method: "move_leader"; targetID: bigint }
  | { method: "defragment" };

/** A member as the Cluster API returns it (etcdserverpb.Member). */
export interface MemberInfo {
  /** The member's 64-bit ID. */
  ID: bigint;
  /** Its --name; empty until it has started and published it. */
  name: string;
  /** Its peer URLs. */
  peerURLs: string[];
  /** Its client URLs; empty until it has started and published them. */
  clientURLs: string[];
  /** Whether it is a learner. */
  isLearner: boolean;
}

/** The Raft state Maintenance.Status reports. */
export interface RaftStatus {
  /** The leader's member ID; 0n when none is known. */
  leader: bigint;
  /** The commit index. */
  raftIndex: number;
  /** The current term. */
  raftTerm: number;
  /** The applied index. */
  raftAppliedIndex: number;
  /** Whether this member is a learner. */
  isLearner: boolean;
}

/** What each call answers. */
export type ClusterResult =
  | { members: MemberInfo[] }
  | { member: MemberInfo; members: MemberInfo[] }
  | RaftStatus
  | Record<string, never>;

/** Members of the membership as the API lists them: by member ID, as etcd. */
export function memberInfos(membership: Membership): MemberInfo[] {
  return membership.members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(info);
}

function info(m: Member): MemberInfo {
  return {
    ID: m.id,
    name: m.name,
    peerURLs: m.peerURLs,
    clientURLs: m.clientURLs,
    isLearner: m.isLearner,
  };
}

/** etcd's Cluster service and Raft status over one raft node. */
export class ClusterManager {
  readonly #node: RaftNode;

  /** The manager of the member whose raft node is `node`. */
  constructor(node: RaftNode) {
    this.#node = node;
  }

  /**
   * Run `call`.
   *
   * @throws {EtcdError} etcd's errors: BadMemberURLs, MemberNotFound,
   *   MemberNotLearner, PeerURLExists, BadLeaderTransferee, NoLeader,
   *   LeaderChanged, Timeout.
   */
  async call(call: ClusterCall): Promise<ClusterResult> {
    const node = this.#node;
    // Changes are made by the leader: its applied membership is the newest
    // (a follower's could give a new member a raft ID already taken).
    const changes = call.method === "member_add" || call.method === "member_remove" ||
      call.method === "member_promote" || call.method === "member_update";
    if (changes && !node.isLeader && !node.alone) return await node.clusterOnLeader(call);
    switch (call.method) {
      case "member_list":
        return { members: memberInfos(node.membership) };
      case "raft_status":
        return this.status();
      case "defragment": {
        const r = await node.defragment();
        log.info("finished defragmenting", {
          "current-db-size-bytes": r.sizeAfter,
          "previous-db-size-bytes": r.sizeBefore,
          took: `${Math.round(r.tookMs)}ms`,
          "pause": `${Math.round(r.pauseMs)}ms`,
        });
        return {};
      }
      case "member_add": {
        const urls = normalizeUrls(call.peerURLs);
        const membership = node.membership;
        for (const m of membership.members) {
          if (m.peerURLs.some((u) => urls.includes(u))) throw Errors.PeerURLExists();
        }
        const member: Member = {
          id: randomMemberId(membership),
          raftId: membership.nextRaftId(),
          name: "",
          peerURLs: urls,
          clientURLs: [],
          isLearner: call.isLearner,
        };
        await node.changeMembership({
          type: call.isLearner ? "addLearnerNode" : "addNode",
          nodeId: member.raftId,
          context: encodeMemberContext(member),
        }, member.id);
        return { member: info(member), members: memberInfos(node.membership) };
      }
      case "member_remove": {
        const m = node.membership.get(call.ID);
        if (m === undefined) throw Errors.MemberNotFound();
        await node.changeMembership(
          { type: "removeNode", nodeId: m.raftId, context: encodeMemberContext(m) },
          m.id,
        );
        return { members: memberInfos(node.membership) };
      }
      case "member_promote": {
        const m = node.membership.get(call.ID);
        if (m === undefined) throw Errors.MemberNotFound();
        if (!m.isLearner) throw Errors.MemberNotLearner();
        this.#checkLearnerReady(m);
        await node.changeMembership(
          { type: "addNode", nodeId: m.raftId, context: encodeMemberContext(m) },
          m.id,
        );
        return { members: memberInfos(node.membership) };
      }
      case "member_update": {
        const urls = normalizeUrls(call.peerURLs);
        const m = node.membership.get(call.ID);
        if (m === undefined) throw Errors.MemberNotFound();
        const result = await node.propose({
          type: "member_update",
          member_update: { ID: call.ID, peerURLs: urls },
        });
        if ("error" in result) throw result.error;
        return { members: memberInfos(node.membership) };
      }
      case "move_leader": {
        if (!node.isLeader) throw Errors.NotLeader();
        const target = node.membership.get(call.targetID);
        if (target === undefined || target.isLearner) throw Errors.BadLeaderTransferee();
        if (target.raftId === node.raftId) return {};
        node.transferLeader(target.raftId);
        // Wait (bounded) until the transfer took effect.
        const deadline = Date.now() + 2 * node.electionMs;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
          if (node.leader === target.raftId) return {};
        }
        throw Errors.Timeout();
      }
    }
  }

  /** The Raft state for Maintenance.Status. */
  status(): RaftStatus {
    const node = this.#node;
    const st = node.status();
    const leader = node.membership.byRaftId(node.leader)?.id ?? 0n;
    return {
      leader,
      raftIndex: st.hardState.commit,
      raftTerm: st.hardState.term,
      raftAppliedIndex: node.appliedIndex,
      isLearner: node.membership.byRaftId(node.raftId)?.isLearner ?? false,
    };
  }

  /** etcd promotes a learner only once its log is close to the leader's (90 %). */
  #checkLearnerReady(m: Member): void {
    const node = this.#node;
    // Only the leader knows the learner's progress; elsewhere the check is skipped.
    if (!node.isLeader) return;
    const st = node.status();
    const progress = st.progress.get(m.raftId);
    invariant(progress !== undefined, "the leader tracks every member");
    const match = progress?.match ?? 0;
    if (match < st.hardState.commit * 0.9) throw Errors.LearnerNotReady();
  }
}

/** Peer URLs as stored: parsed, origins only, sorted. */
function normalizeUrls(urls: string[]): string[] {
  if (urls.length === 0) throw Errors.BadMemberURLs();
  const out: string[] = [];
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw Errors.BadMemberURLs();
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.port === "") {
      throw Errors.BadMemberURLs();
    }
    out.push(url.origin);
  }
  return out.sort();
}

/** A random member ID not used in this cluster before (etcd: a hash with the time). */
function randomMemberId(membership: Membership): bigint {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const id = new DataView(bytes.buffer).getBigUint64(0);
    if (id !== 0n && membership.get(id) === undefined && !membership.isRemoved(id)) return id;
  }
}
