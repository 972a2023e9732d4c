/**
 * Member and cluster IDs computed as etcd computes them, so a cluster built
 * from the same flags gets the same IDs: a member ID is the first 8 bytes
 * (big-endian) of SHA-1(sorted peer URLs joined ‖ cluster token); the cluster
 * ID is the first 8 bytes of SHA-1 of the sorted member IDs (8 bytes each).
 *
 * @module
 */
import { createHash } from "node:crypto";

function first8(digest: Uint8Array): bigint {
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0);
}

/** etcd's `NewMember` ID for a member of a new cluster (no timestamp). */
export function memberId(peerURLs: string[], clusterToken: string): bigint {
  const sorted = [...peerURLs].sort();
  const h = createHash("sha1");
  h.update(sorted.join(""));
  h.update(clusterToken);
  return first8(h.digest());
}

/** etcd's `genID` for a cluster with these member IDs. */
export function clusterId(memberIds: bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = new Uint8Array(8 * sorted.length);
  const view = new DataView(bytes.buffer);
  sorted.forEach((id, i) => view.setBigUint64(8 * i, id));
  return first8(createHash("sha1").update(bytes).digest());
}
