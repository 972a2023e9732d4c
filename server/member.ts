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
import { Node } from "./node.ts";

/** The member directory under --data-dir that holds the LMDB environment. */
export function memberDir(dataDir: string): string {
  return `${dataDir}/member`;
}

/**
 * Open (or create) the member's store and the apply loop over it. The IDs
 * are recorded at creation and kept afterwards.
 *
 * @throws {Error} when the store cannot be opened or is inconsistent.
 */
export async function openMember(
  dataDir: string,
  ids: { memberId: bigint; clusterId: bigint },
  maxTxnOps: number,
): Promise<{ backend: Backend; node: Node; service: EtcdServer }> {
  const backend = openBackend(memberDir(dataDir));
  // IDs are fixed when the member is first created, as etcd keeps them in its WAL.
  if (backend.getMeta("member_id") === undefined) {
    await backend.write(() => {
      backend.putMeta("member_id", ids.memberId.toString());
      backend.putMeta("cluster_id", ids.clusterId.toString());
      backend.putMeta(Meta.revision, 1);
    });
  }
  const node = new Node(backend);
  await node.start();
  const service = new EtcdServer(backend, node, {
    memberId: BigInt(backend.getMeta("member_id") as string),
    clusterId: BigInt(backend.getMeta("cluster_id") as string),
    maxTxnOps,
  });
  return { backend, node, service };
}
