/**
 * etcd's periodic corruption check (--experimental-corrupt-check-time): the
 * leader computes the HashKV of its key space at its current revision, asks
 * every other member for theirs at the same revision (POST
 * {@linkcode HASHKV_PATH} on the peer port), and raises the CORRUPT alarm
 * for a member whose hash differs while its compacted revision is the same,
 * or whose compacted revision or revision is ahead of the leader's (etcd's
 * checkHashKV). A CORRUPT alarm stops every write in the cluster until it is
 * cleared. Members that cannot answer (down, behind the revision, compacted
 * past it) are skipped: they are not known to differ.
 *
 * @module
 */
import type { HashKVResponse } from "../core/api/types.ts";
import type { MaintenanceServer } from "./etcdserver/maintenance.ts";
import type { RaftNode } from "./raftnode/node.ts";
import type { Member } from "./cluster/membership.ts";
import { log } from "./log.ts";

/** Peer-port path of a member's HashKV at a revision (body `{revision}`). */
export const HASHKV_PATH = "/members/hashkv";

/** Where the check gets its facts and raises its alarm. */
export interface CorruptionCheckDeps {
  /** The member's raft node: leadership and membership. */
  node: RaftNode;
  /** The member's Maintenance service: its HashKV, and the alarm it raises. */
  maintenance: MaintenanceServer;
  /** POST `body` to `path` on the peer port of the member with raft ID `raftId`. */
  request(raftId: number, path: string, body: unknown): Promise<unknown>;
}

/** A peer's HashKV as it travels between members (int64 fields as decimal strings). */
interface WireHashKV {
  revision: string;
  hash: number;
  compactRevision: string;
}

/** What one check found, for the caller and tests. */
export interface CheckOutcome {
  /** Members (IDs) whose key space differs from the leader's; CORRUPT was raised for each. */
  corrupt: bigint[];
  /** Members that were asked and answered. */
  compared: bigint[];
}

/** The periodic corruption check of one member (it acts only while leader). */
export class CorruptionChecker {
  readonly #deps: CorruptionCheckDeps;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<unknown> | undefined;

  /** A checker over the member's node and Maintenance service. */
  constructor(deps: CorruptionCheckDeps) {
    this.#deps = deps;
  }

  /** The peer-port handler of {@linkcode HASHKV_PATH}: this member's HashKV at `revision`. */
  async peerHashKV(body: unknown): Promise<WireHashKV> {
    const revision = Number((body as { revision?: string }).revision ?? 0);
    const r: HashKVResponse = await this.#deps.maintenance.hashKV({ revision });
    return {
      revision: String(r.header.revision),
      hash: r.hash,
      compactRevision: String(r.compact_revision),
    };
  }

  /** Check every `intervalMs` (a check still running when the next is due is not doubled). */
  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return;
      this.#running = this.check()
        .catch((err) => log.warn("corruption check failed", { error: err }))
        .finally(() => this.#running = undefined);
    }, intervalMs);
  }

  /** Stop checking (a check in progress finishes). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One check, as etcd's leader makes it; nothing when this member is not
   * the leader.
   */
  async check(): Promise<CheckOutcome> {
    const { node, maintenance, request } = this.#deps;
    const outcome: CheckOutcome = { corrupt: [], compared: [] };
    if (!node.isLeader) return outcome;
    const mine = await maintenance.hashKV({ revision: 0 });
    const rev = mine.header.revision;
    const crev = mine.compact_revision;
    const self = node.raftId;
    const answers: { member: Member; theirs: WireHashKV }[] = [];
    for (const member of node.membership.members) {
      if (member.raftId === self) continue;
      try {
        const theirs = await request(member.raftId, HASHKV_PATH, {
          revision: String(rev),
        }) as WireHashKV;
        answers.push({ member, theirs });
      } catch (err) {
        log.warn("cannot fetch hash from remote peer", {
          "remote-peer-id": member.id.toString(16),
          error: err,
        });
      }
    }
    // A follower's current revision moves on while the members are asked:
    // it is compared with the leader's revision after the round (etcd's rev2).
    const after = maintenance.revisions();
    for (const { member, theirs } of answers) {
      outcome.compared.push(member.id);
      const peerRev = Number(theirs.revision);
      const peerCrev = Number(theirs.compactRevision);
      let differs: string | undefined;
      if (peerRev > after.revision) {
        differs = "revision from follower must be less than or equal to leader's";
      } else if (peerCrev > Math.max(crev, after.compactRevision)) {
        differs = "compact revision from follower must be less than or equal to leader's";
      } else if (peerCrev === crev && theirs.hash !== mine.hash) {
        differs = "same compact revision then hashes must match";
      }
      if (differs === undefined) continue;
      log.error(differs, {
        "leader-revision": rev,
        "leader-compact-revision": crev,
        "leader-hash": mine.hash,
        "follower-revision": peerRev,
        "follower-compact-revision": peerCrev,
        "follower-hash": theirs.hash,
        "follower-peer-id": member.id.toString(16),
      });
      await maintenance.alarm({ action: "ACTIVATE", memberID: member.id, alarm: "CORRUPT" });
      outcome.corrupt.push(member.id);
    }
    return outcome;
  }

  /**
   * etcd's initial check (--experimental-initial-corrupt-check), made by a
   * starting member before it serves clients: its HashKV at its current
   * revision against every other member's at the same revision. A member
   * that cannot answer (down, behind, compacted past it) is skipped with a
   * warning, as is one with another compacted revision.
   *
   * @returns the members compared (IDs).
   * @throws {Error} etcd's `<member ID> found data inconsistency with peers`
   *   when a member with the same compacted revision has another hash.
   */
  async initialCheck(): Promise<bigint[]> {
    const { node, maintenance, request } = this.#deps;
    const self = node.raftId;
    const selfId = (node.membership.byRaftId(self)?.id ?? BigInt(self)).toString(16);
    log.info("starting initial corruption check", { "local-member-id": selfId });
    const mine = await maintenance.hashKV({ revision: 0 });
    const compared: bigint[] = [];
    let mismatch = 0;
    for (const member of node.membership.members) {
      if (member.raftId === self) continue;
      let theirs: WireHashKV;
      try {
        theirs = await request(member.raftId, HASHKV_PATH, {
          revision: String(mine.header.revision),
        }) as WireHashKV;
      } catch (err) {
        log.warn("cannot fetch hash from remote peer", {
          "local-member-id": selfId,
          "remote-peer-id": member.id.toString(16),
          error: err,
        });
        continue;
      }
      compared.push(member.id);
      if (theirs.hash === mine.hash) continue;
      const fields = {
        "local-member-id": selfId,
        "local-member-revision": mine.header.revision,
        "local-member-compact-revision": mine.compact_revision,
        "local-member-hash": mine.hash,
        "remote-peer-id": member.id.toString(16),
        "remote-peer-revision": Number(theirs.revision),
        "remote-peer-compact-revision": Number(theirs.compactRevision),
        "remote-peer-hash": theirs.hash,
      };
      if (Number(theirs.compactRevision) === mine.compact_revision) {
        log.warn("found different hash values from remote peer", fields);
        mismatch++;
      } else log.warn("found different compact revision values from remote peer", fields);
    }
    if (mismatch > 0) throw new Error(`${selfId} found data inconsistency with peers`);
    log.info("initial corruption checking passed; no corruption", { "local-member-id": selfId });
    return compared;
  }
}
