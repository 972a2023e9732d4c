/**
 * What a member logs about its cluster, in etcd 3.4's words and field names
 * (its zap logger's messages, member IDs in hex):
 *
 * - Raft (etcd-raft's own messages): `a8535b46228a4dd2 became follower at
 *   term 0`, `… is starting a new election at term 1`, `… became candidate
 *   at term 2`, `… became leader at term 2`; the node's leader changes:
 *   `raft.node: <id> elected leader <id> at term 2`, `raft.node: <id> lost
 *   leader <id> at term 3`, `raft.node: <id> changed leader from <id> to
 *   <id> at term 4`.
 * - Membership (etcd's membership/cluster.go): `added member`
 *   (`added-peer-id`, `added-peer-peer-urls`), `removed member`
 *   (`removed-remote-peer-id`, `removed-remote-peer-urls`), `updated member`
 *   (`updated-remote-peer-id`, `updated-remote-peer-urls`), `promote
 *   member`, each with `cluster-id` and `local-member-id`.
 * - Alarms (etcd's apply.go): `alarm raised` and `alarm disarmed`, warn
 *   level, with `alarm` (NOSPACE, CORRUPT) and `from` (the member in hex).
 *
 * @module
 */
import type { RaftEvent } from "../core/raft/types.ts";
import type { Member, Membership } from "./cluster/membership.ts";
import { hexId, log } from "./log.ts";

/** etcd-raft's words for a role. */
const ROLE: Record<string, string> = {
  follower: "follower",
  candidate: "candidate",
  preCandidate: "pre-candidate",
  leader: "leader",
};

/**
 * Log a core/raft event as etcd-raft does, for the member `self` (its
 * member ID).
 */
export function logRaftEvent(self: bigint, event: RaftEvent): void {
  const me = hexId(self);
  if (event.type === "became") {
    log.info(`${me} became ${ROLE[event.state]} at term ${event.term}`);
  } else {
    log.info(`${me} is starting a new election at term ${event.term}`);
  }
}

/**
 * A leader-change logger for the member `self`: given the new leader's
 * member ID (undefined: none) and the term, it logs etcd's `raft.node:`
 * message for the change from the previous one.
 */
export function leaderChangeLogger(
  self: bigint,
): (leader: bigint | undefined, term: number) => void {
  let previous: bigint | undefined;
  const me = hexId(self);
  return (leader, term) => {
    if (leader === previous) return;
    if (leader === undefined) {
      log.info(`raft.node: ${me} lost leader ${hexId(previous!)} at term ${term}`);
    } else if (previous === undefined) {
      log.info(`raft.node: ${me} elected leader ${hexId(leader)} at term ${term}`);
    } else {
      log.info(
        `raft.node: ${me} changed leader from ${hexId(previous)} to ${
          hexId(leader)
        } at term ${term}`,
      );
    }
    previous = leader;
  };
}

function sameUrls(a: Member, b: Member): boolean {
  return a.peerURLs.length === b.peerURLs.length && a.peerURLs.every((u, i) => u === b.peerURLs[i]);
}

/**
 * A membership logger for the member `self` of cluster `clusterId`: each call with the membership
 * after a change logs, against the one before (`initial` at first), every
 * member added, removed, given new peer URLs or promoted from learner.
 */
export function membershipLogger(
  self: bigint,
  clusterId: bigint,
  initial: Membership,
): (membership: Membership) => void {
  let before = new Map(initial.members.map((m) => [m.id, m]));
  const common = { "cluster-id": hexId(clusterId), "local-member-id": hexId(self) };
  return (membership) => {
    const after = new Map(membership.members.map((m) => [m.id, m]));
    for (const [id, m] of after) {
      const old = before.get(id);
      if (old === undefined) {
        log.info("added member", {
          ...common,
          "added-peer-id": hexId(id),
          "added-peer-peer-urls": m.peerURLs,
          "added-peer-is-learner": m.isLearner,
        });
        continue;
      }
      if (!sameUrls(old, m)) {
        log.info("updated member", {
          ...common,
          "updated-remote-peer-id": hexId(id),
          "updated-remote-peer-urls": m.peerURLs,
        });
      }
      if (old.isLearner && !m.isLearner) {
        log.info("promote member", { ...common, "promoted-member-id": hexId(id) });
      }
    }
    for (const [id, m] of before) {
      if (after.has(id)) continue;
      log.info("removed member", {
        ...common,
        "removed-remote-peer-id": hexId(id),
        "removed-remote-peer-urls": m.peerURLs,
      });
    }
    before = after;
  };
}
