/**
 * Opening a member's store: the data-dir lock, the LMDB environment under
 * --data-dir, its IDs, the raft node and the service layer
 * (server/etcdserver/) over them.
 *
 * @module
 */
import type { Backend } from "../core/backend.ts";
import { Meta, RECORD_FORMAT } from "../core/mvcc/view.ts";
import { openBackend, openEnvironmentFile } from "../native/lmdb.ts";
import type { Membership } from "./cluster/membership.ts";
import { EtcdServer } from "./etcdserver/mod.ts";
import { RaftNode, type RaftNodeOptions } from "./raftnode/node.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { metrics } from "./metrics.ts";
import { goDuration, log } from "./log.ts";

/** The member directory under --data-dir that holds the LMDB environment. */
export function memberDir(dataDir: string): string {
  return `${dataDir}/member`;
}

/** The directory under --data-dir of snapshot files received from the leader. */
export function snapDir(dataDir: string): string {
  return `${dataDir}/member/snap`;
}

/**
 * Who a new member is: etcd's member and cluster IDs, and, in a cluster of
 * more than one, its raft ID and the membership its log starts from (the
 * bootstrap members of a new cluster; none for a member joining an existing
 * one, which learns it from the leader's snapshot). A store keeps what it
 * was created with.
 */
export interface MemberIdentity {
  memberId: bigint;
  clusterId: bigint;
  /** core/raft node ID. Default 1 (a one-member cluster). */
  raftId?: number;
  /** The membership a new member's log starts from. Default: this member alone. */
  membership?: Membership;
}

/** The directory under --data-dir of a defragmentation's compacted copy (removed after). */
export function defragDir(dataDir: string): string {
  return `${dataDir}/member/defrag`;
}

/** The WAL directory under --data-dir. */
export function walDir(dataDir: string): string {
  return `${dataDir}/member/wal`;
}

/** etcd's request limits a member enforces (its service layer does). */
export interface MemberLimits {
  /** etcd's `--max-txn-ops`: compares or ops per txn level, at most. */
  maxTxnOps: number;
  /** etcd's `--max-request-bytes`: the largest proposal, in protobuf bytes. */
  maxRequestBytes: number;
  /** Milliseconds between progress notifications to idle watchers that ask for them. */
  progressNotifyIntervalMs?: number;
  /**
   * etcd's `--quota-backend-bytes`: 0 = the 2 GiB default, negative = no
   * quota. Default 0.
   */
  quotaBackendBytes?: number;
  /** ms a read-only range or txn may take before it is logged as slow. */
  warningApplyDurationMs?: number;
  /** etcd's `--bcrypt-cost`. Default 10. */
  bcryptCost?: number;
  /** etcd's `--auth-token-ttl`, in seconds. Default 300. */
  authTokenTtlSeconds?: number;
}

/** An open member store. */
export interface Member {
  /** The LMDB environment in `<data-dir>/member`. */
  backend: Backend;
  /** The raft node: WAL, log and apply loop. */
  node: RaftNode;
  /** The service layer over them. */
  service: EtcdServer;
  /** Finish in-flight writes, close the store and release the data-dir lock. */
  close(): Promise<void>;
}

/**
 * Open (or create) the member's store, the raft node over it and its
 * services, holding the data dir's exclusive lock (server/data_dir_lock.ts)
 * until {@linkcode Member.close}. The IDs are recorded at creation and kept
 * afterwards.
 *
 * @throws {DataDirLockedError} when another process (or another open store
 *   of this one) holds `dataDir`.
 * @throws {Error} when the store cannot be opened or is inconsistent.
 */
export async function openMember(
  dataDir: string,
  ids: MemberIdentity,
  limits: MemberLimits,
  raft:
    & Omit<
      RaftNodeOptions,
      "walDir" | "onFailure" | "onRecovered" | "onCompactionFailure" | "raftId" | "snapDir"
    >
    & { walDir?: string } = {},
): Promise<Member> {
  const { walDir: wal, ...raftOptions } = raft;
  const lock = lockDataDir(dataDir);
  let backend: Backend | undefined;
  try {
    backend = openBackend(memberDir(dataDir), {
      onCommit: (seconds) => metrics.backendCommit.observe(seconds),
    });
    const b = backend;
    // IDs are fixed when the member is first created, as etcd keeps them in its WAL.
    if (b.getMeta(Meta.memberId) === undefined) {
      await b.write(() => {
        b.putMeta(Meta.memberId, ids.memberId.toString());
        b.putMeta(Meta.clusterId, ids.clusterId.toString());
        // A store filled before its first open (an imported etcd snapshot) keeps its revision.
        if (b.getMeta(Meta.revision) === undefined) b.putMeta(Meta.revision, 1);
        b.putMeta(Meta.recordFormat, RECORD_FORMAT);
        b.putMeta(Meta.raftId, ids.raftId ?? 1);
        if (ids.membership !== undefined) b.putMeta(Meta.membership, ids.membership.encode());
      });
    }
    const format = b.getMeta(Meta.recordFormat) ?? 1;
    if (format !== RECORD_FORMAT) {
      throw new Error(
        `data dir ${dataDir} holds records in format ${format}; this cairn reads format ` +
          `${RECORD_FORMAT} only (native/README.md)`,
      );
    }
    // A new member's Raft log starts after index 1 (its bootstrap base).
    if (Number(b.getMeta(Meta.appliedIndex) ?? 0) === 0) {
      await b.write(() => b.putMeta(Meta.appliedIndex, 1));
    }
    const node = await RaftNode.open(b, {
      walDir: wal ?? walDir(dataDir),
      snapDir: snapDir(dataDir),
      raftId: Number(b.getMeta(Meta.raftId) ?? 1),
      openStoreFile: openEnvironmentFile,
      openStore: (dir) => openBackend(dir),
      defragDir: defragDir(dataDir),
      reserveFile: `${memberDir(dataDir)}/reserve`,
      authTokenTtlSeconds: limits.authTokenTtlSeconds,
      ...raftOptions,
      onFailure: (err) => log.error("storage failure; refusing writes", { error: err }),
      onRecovered: () => log.info("storage recovered; taking writes again"),
      // etcd's mvcc/kvstore_compaction.go.
      onCompacted: (revision, tookMs) =>
        log.info("finished scheduled compaction", {
          "compact-revision": revision,
          took: goDuration(tookMs),
        }),
      onLogCompacted: (index, applied) =>
        log.info("compacted Raft logs", {
          "compact-index": index,
          "local-member-applied-index": applied,
          "local-member-snapshot-count": raft.snapshotCount ?? 100_000,
        }),
      onSnapshotApplied: ({ index, term, revision }) =>
        log.info("applied snapshot", {
          "incoming-leader-snapshot-index": index,
          "incoming-leader-snapshot-term": term,
          "current-applied-index": index,
          "current-revision": revision,
        }),
      onCompactionFailure: (revision, err) =>
        log.error("removing compacted history failed; a restart resumes it", {
          revision,
          error: err,
        }),
    });
    const service = new EtcdServer(b, node, {
      memberId: BigInt(b.getMeta(Meta.memberId) as string),
      clusterId: BigInt(b.getMeta(Meta.clusterId) as string),
      maxTxnOps: limits.maxTxnOps,
      maxRequestBytes: limits.maxRequestBytes,
      quotaBackendBytes: limits.quotaBackendBytes,
      bcryptCost: limits.bcryptCost,
      progressNotifyIntervalMs: limits.progressNotifyIntervalMs,
      snapshotDir: snapDir(dataDir),
      warningApplyDurationMs: limits.warningApplyDurationMs,
    });
    // The applied-change feed of this thread's watchers.
    const unsubscribeFeed = node.onApplied((events, revision) =>
      service.watch.notify(events, revision)
    );
    // A snapshot replaced the store: watchers catch up from its history.
    const unsubscribeRestore = node.onRestored((revision) => service.watch.skip(revision));
    const unsubscribe = () => {
      unsubscribeFeed();
      unsubscribeRestore();
    };
    return {
      backend: b,
      node,
      service,
      async close() {
        try {
          unsubscribe();
          service.close();
          await node.close();
          await b.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    await backend?.close().catch(() => {});
    lock.release();
    throw err;
  }
}
