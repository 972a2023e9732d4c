/**
 * Opening a member's store: the LMDB environment under --data-dir, its IDs,
 * the log and apply loop and the KV service over them.
 *
 * @module
 */
import type { Backend } from "../core/backend.ts";
import { Meta } from "../core/mvcc/view.ts";
import { openBackend } from "../native/lmdb.ts";
import { EtcdServer } from "./etcd_server.ts";
import { RaftNode } from "./raftnode/node.ts";

/** The member directory under --data-dir that holds the LMDB environment. */
export function memberDir(dataDir: string): string {
  return `${dataDir}/member`;
}

/** The WAL directory under --data-dir. */
export function walDir(dataDir: string): string {
  return `${dataDir}/member/wal`;
}

/**
 * Open (or create) the member's store and the raft node over it. The IDs
 * are recorded at creation and kept afterwards.
 *
 * @throws {Error} when the store cannot be opened or is inconsistent.
 */
export async function openMember(
  dataDir: string,
  ids: { memberId: bigint; clusterId: bigint },
  maxTxnOps: number,
  raft: { heartbeatMs?: number; electionMs?: number } = {},
): Promise<{ backend: Backend; node: RaftNode; service: EtcdServer }> {
  const backend = openBackend(memberDir(dataDir));
  // IDs are fixed when the member is first created, as etcd keeps them in its WAL.
  if (backend.getMeta(Meta.memberId) === undefined) {
    await backend.write(() => {
      backend.putMeta(Meta.memberId, ids.memberId.toString());
      backend.putMeta(Meta.clusterId, ids.clusterId.toString());
      backend.putMeta(Meta.revision, 1);
    });
  }
  // A new member's Raft log starts after index 1 (its bootstrap base).
  if (Number(backend.getMeta(Meta.appliedIndex) ?? 0) === 0) {
    await backend.write(() => backend.putMeta(Meta.appliedIndex, 1));
  }
  let node: RaftNode;
  try {
    node = await RaftNode.open(backend, {
      walDir: walDir(dataDir),
      ...raft,
      onFailure: (err) => console.error("cairn: storage failure; refusing further writes:", err),
    });
  } catch (err) {
    await backend.close();
    throw err;
  }
  const service = new EtcdServer(backend, node, {
    memberId: BigInt(backend.getMeta(Meta.memberId) as string),
    clusterId: BigInt(backend.getMeta(Meta.clusterId) as string),
    maxTxnOps,
  });
  return { backend, node, service };
}
