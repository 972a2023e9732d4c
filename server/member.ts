/**
 * Opening a member's store: the data-dir lock, the LMDB environment under
 * --data-dir, its IDs, the raft node and the KV service over them.
 *
 * @module
 */
import type { Backend } from "../core/backend.ts";
import { Meta, RECORD_FORMAT } from "../core/mvcc/view.ts";
import { openBackend } from "../native/lmdb.ts";
import { EtcdServer } from "./etcd_server.ts";
import { RaftNode } from "./raftnode/node.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { log } from "./log.ts";

/** The member directory under --data-dir that holds the LMDB environment. */
export function memberDir(dataDir: string): string {
  return `${dataDir}/member`;
}

/** The WAL directory under --data-dir. */
export function walDir(dataDir: string): string {
  return `${dataDir}/member/wal`;
}

/** An open member store. */
export interface Member {
  /** The LMDB environment in `<data-dir>/member`. */
  backend: Backend;
  /** The raft node: WAL, log and apply loop. */
  node: RaftNode;
  /** The KV service over them. */
  service: EtcdServer;
  /** Finish in-flight writes, close the store and release the data-dir lock. */
  close(): Promise<void>;
}

/**
 * Open (or create) the member's store and the raft node over it, holding
 * the data dir's exclusive lock (server/data_dir_lock.ts) until
 * {@linkcode Member.close}. The IDs are recorded at creation and kept
 * afterwards.
 *
 * @throws {DataDirLockedError} when another process (or another open store
 *   of this one) holds `dataDir`.
 * @throws {Error} when the store cannot be opened or is inconsistent.
 */
export async function openMember(
  dataDir: string,
  ids: { memberId: bigint; clusterId: bigint },
  maxTxnOps: number,
  raft: { heartbeatMs?: number; electionMs?: number } = {},
): Promise<Member> {
  const lock = lockDataDir(dataDir);
  let backend: Backend | undefined;
  try {
    backend = openBackend(memberDir(dataDir));
    const b = backend;
    // IDs are fixed when the member is first created, as etcd keeps them in its WAL.
    if (b.getMeta(Meta.memberId) === undefined) {
      await b.write(() => {
        b.putMeta(Meta.memberId, ids.memberId.toString());
        b.putMeta(Meta.clusterId, ids.clusterId.toString());
        b.putMeta(Meta.revision, 1);
        b.putMeta(Meta.recordFormat, RECORD_FORMAT);
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
      walDir: walDir(dataDir),
      ...raft,
      onFailure: (err) => log.error("storage failure; refusing further writes", { error: err }),
    });
    const service = new EtcdServer(b, node, {
      memberId: BigInt(b.getMeta(Meta.memberId) as string),
      clusterId: BigInt(b.getMeta(Meta.clusterId) as string),
      maxTxnOps,
    });
    return {
      backend: b,
      node,
      service,
      async close() {
        try {
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
