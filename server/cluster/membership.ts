/**
 * The members of a cluster, and the one place where etcd's 64-bit member IDs
 * map onto core/raft's node IDs.
 *
 * etcd identifies a member by a 64-bit ID (a hash of its peer URLs and the
 * cluster token, or a random ID for a member added later); core/raft's node
 * IDs are small safe integers. Each member gets a raft ID when it joins the
 * cluster: the members of --initial-cluster get 1..n in the order of their
 * member IDs (so every member of a new cluster computes the same mapping), and
 * a member added later gets one more than the highest raft ID ever used. The
 * mapping is part of the replicated state: it travels in the conf change
 * entry that adds the member, and every member stores it, with the rest of
 * the membership, in its `meta` table in the same transaction that applies
 * the entry.
 *
 * @module
 */
import type { ConfState } from "../../core/raft/types.ts";
import { invariant } from "../../core/invariant.ts";
import { clusterId as computeClusterId, memberId as computeMemberId } from "../ids.ts";

/** One member of the cluster, as etcd's `Member` message describes it. */
export interface Member {
  /** etcd's 64-bit member ID. */
  id: bigint;
  /** The core/raft node ID this member has in the cluster. */
  raftId: number;
  /** --name; empty until the member has started and published it. */
  name: string;
  /** Peer URLs (origins, e.g. `http://10.0.0.1:2380`). */
  peerURLs: string[];
  /** Client URLs; empty until the member has started and published them. */
  clientURLs: string[];
  /** Whether the member is a learner (receives the log, does not vote). */
  isLearner: boolean;
}

/** What a conf change entry's `context` carries: the member it adds, removes or changes. */
export interface MemberContext {
  /** Decimal member ID. */
  id: string;
  /** The member's core/raft node ID. */
  raftId: number;
  /** Its --name ("" until published). */
  name: string;
  /** Its peer URLs. */
  peerURLs: string[];
  /** Its client URLs ([] until published). */
  clientURLs: string[];
  /** Whether it is a learner. */
  isLearner: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `m` as JSON-safe data: a conf change context, the stored membership, the peer port's `/members`. */
export function memberContext(m: Member): MemberContext {
  return {
    id: m.id.toString(),
    raftId: m.raftId,
    name: m.name,
    peerURLs: m.peerURLs,
    clientURLs: m.clientURLs,
    isLearner: m.isLearner,
  };
}

/**
 * The member `ctx` describes (made by {@linkcode memberContext}; fields
 * absent from older forms take their zero values).
 */
export function memberFromContext(ctx: MemberContext): Member {
  return {
    id: BigInt(ctx.id),
    raftId: ctx.raftId,
    name: ctx.name ?? "",
    peerURLs: ctx.peerURLs,
    clientURLs: ctx.clientURLs ?? [],
    isLearner: ctx.isLearner === true,
  };
}

/** Encode `m` as a conf change context. */
export function encodeMemberContext(m: Member): Uint8Array {
  return encoder.encode(JSON.stringify(memberContext(m)));
}

/**
 * Decode a conf change context made by {@linkcode encodeMemberContext}.
 *
 * @throws {InvariantError} when it is not one.
 */
export function decodeMemberContext(data: Uint8Array): Member {
  const o = JSON.parse(decoder.decode(data)) as MemberContext;
  invariant(
    typeof o.id === "string" && Number.isSafeInteger(o.raftId) && Array.isArray(o.peerURLs),
    "a conf change context describes a member",
  );
  return memberFromContext(o);
}

/** The stored form of a {@linkcode Membership} (JSON in the `meta` table). */
interface StoredMembership {
  members: MemberContext[];
  removed: string[];
  /** Raft IDs of the removed members (absent in stores written before they were kept). */
  removedRaftIds?: number[];
  maxRaftId: number;
}

/**
 * The cluster's members, as of the applied index: who is in, who was
 * removed (and may never come back, as etcd), and the highest raft ID ever
 * given out.
 */
export class Membership {
  readonly #members = new Map<bigint, Member>();
  readonly #removed = new Set<bigint>();
  readonly #removedRaftIds = new Set<number>();
  #maxRaftId = 0;

  /** The members, in raft ID order. */
  get members(): Member[] {
    return [...this.#members.values()].sort((a, b) => a.raftId - b.raftId);
  }

  /** The member with etcd ID `id`. */
  get(id: bigint): Member | undefined {
    return this.#members.get(id);
  }

  /** The member with raft ID `raftId`. */
  byRaftId(raftId: number): Member | undefined {
    for (const m of this.#members.values()) if (m.raftId === raftId) return m;
    return undefined;
  }

  /** Whether member `id` was removed from the cluster. */
  isRemoved(id: bigint): boolean {
    return this.#removed.has(id);
  }

  /** Whether the member with raft ID `raftId` was removed from the cluster. */
  isRemovedRaftId(raftId: number): boolean {
    return this.#removedRaftIds.has(raftId);
  }

  /** The raft ID the next added member gets. */
  nextRaftId(): number {
    return this.#maxRaftId + 1;
  }

  /** core/raft's membership: voters and learners by raft ID. */
  confState(): ConfState {
    const voters: number[] = [];
    const learners: number[] = [];
    for (const m of this.members) (m.isLearner ? learners : voters).push(m.raftId);
    return { voters, learners };
  }

  /** Add or replace a member. */
  set(m: Member): void {
    invariant(!this.#removed.has(m.id), "a removed member never comes back");
    this.#members.set(m.id, { ...m });
    this.#maxRaftId = Math.max(this.#maxRaftId, m.raftId);
  }

  /** Remove member `id` for good. */
  remove(id: bigint): void {
    const m = this.#members.get(id);
    if (m !== undefined) this.#removedRaftIds.add(m.raftId);
    this.#members.delete(id);
    this.#removed.add(id);
  }

  /** A copy of this membership. */
  clone(): Membership {
    return Membership.decode(this.encode());
  }

  /** The stored form (JSON). */
  encode(): string {
    const stored: StoredMembership = {
      members: this.members.map(memberContext),
      removed: [...this.#removed].map(String),
      removedRaftIds: [...this.#removedRaftIds],
      maxRaftId: this.#maxRaftId,
    };
    return JSON.stringify(stored);
  }

  /** Read a membership stored by {@linkcode Membership.encode}. */
  static decode(json: string): Membership {
    const o = JSON.parse(json) as StoredMembership;
    const m = new Membership();
    for (const r of o.removed) m.#removed.add(BigInt(r));
    for (const r of o.removedRaftIds ?? []) m.#removedRaftIds.add(r);
    for (const c of o.members) m.#members.set(BigInt(c.id), memberFromContext(c));
    m.#maxRaftId = o.maxRaftId;
    return m;
  }

  /**
   * The membership of a new cluster from --initial-cluster (name → peer
   * URLs): each member's ID computed as etcd does from its peer URLs and the
   * cluster token, raft IDs 1..n in member ID order.
   */
  static bootstrap(initialCluster: Map<string, string[]>, token: string): Membership {
    const members = [...initialCluster].map(([name, urls]) => ({
      name,
      peerURLs: [...urls].sort(),
      id: computeMemberId(urls, token),
    }));
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const m = new Membership();
    members.forEach((x, i) =>
      m.set({
        id: x.id,
        raftId: i + 1,
        name: x.name,
        peerURLs: x.peerURLs,
        clientURLs: [],
        isLearner: false,
      })
    );
    return m;
  }

  /** The cluster ID of a new cluster with these members (etcd's genID over member IDs). */
  clusterId(): bigint {
    return computeClusterId([...this.#members.keys()]);
  }
}
