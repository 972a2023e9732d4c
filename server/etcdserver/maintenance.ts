/**
 * etcd's Maintenance service: Status, Alarm and Snapshot (MoveLeader is the
 * Cluster service's, server/etcdserver/cluster.ts).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import type {
  AlarmRequest,
  AlarmResponse,
  HashKVRequest,
  HashKVResponse,
  SnapshotResponse,
  StatusResponse,
} from "../../core/api/types.ts";
import { Meta } from "../../core/mvcc/view.ts";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import { HASH_READ_CHUNK, SNAPSHOT_CHUNK_BYTES } from "../../core/limits.ts";
import { encodeMessage } from "../../core/api/proto.ts";
import { ETCD_API_VERSION } from "../../version.ts";
import type { ServiceContext } from "./context.ts";
import type { RaftStatus } from "../cluster/manager.ts";

/** The Maintenance RPCs beyond Status, as transports call them. */
export interface MaintenanceService {
  /** Maintenance.Alarm; see {@linkcode MaintenanceServer.alarm}. */
  alarm(req: AlarmRequest): Promise<AlarmResponse>;
  /** Maintenance.Snapshot; see {@linkcode MaintenanceServer.snapshot}. */
  snapshot(signal?: AbortSignal): AsyncIterable<SnapshotResponse>;
  /** Maintenance.HashKV; see {@linkcode MaintenanceServer.hashKV}. */
  hashKV(req: HashKVRequest): Promise<HashKVResponse>;
}

/** Tags of a change in the HashKV digest. */
const PUT_TAG = new Uint8Array([0]);
const DELETE_TAG = new Uint8Array([1]);

/** The Maintenance service of one member. */
export class MaintenanceServer implements MaintenanceService {
  #ctx: ServiceContext;

  /** The Maintenance service over a member's shared service context. */
  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  /**
   * etcd Maintenance.Status of this member, once every acknowledged write is
   * visible: the current revision (in the header), the etcd API version, the
   * store's size and size in use in bytes, the leader's member ID (0 when
   * none is known), the Raft commit index, term and applied index.
   * The revision and the applied index come from one read snapshot, so they
   * describe the same state. `errors` is empty (no alarms are raised).
   */
  async status(): Promise<StatusResponse> {
    const ctx = this.#ctx;
    await ctx.linearize();
    const raft = await this.raftStatus();
    const view = ctx.view();
    const applied = Number(ctx.backend.getMeta(Meta.appliedIndex) ?? 0);
    const { dbSize, dbSizeInUse } = ctx.backend.size();
    return {
      header: { ...ctx.header(view.rev()), raft_term: raft.raftTerm },
      version: ETCD_API_VERSION,
      dbSize,
      leader: BigInt(raft.leader),
      raftIndex: Math.max(applied, raft.raftIndex),
      raftTerm: raft.raftTerm,
      raftAppliedIndex: applied,
      errors: [],
      dbSizeInUse,
      isLearner: raft.isLearner,
    };
  }

  /** This member's Raft state: leader, commit index, term, learner. */
  raftStatus(): Promise<RaftStatus> {
    return this.#ctx.proposer.cluster({ method: "raft_status" }) as Promise<RaftStatus>;
  }

  /**
   * etcd Maintenance.Alarm. cairn raises no alarms (no space quota or
   * corruption check), so GET lists none and DEACTIVATE has nothing to
   * clear; both answer an empty list, as etcd 3.4 does without alarms (its
   * alarm responses carry no header). ACTIVATE fails with Unimplemented.
   */
  alarm(req: AlarmRequest): Promise<AlarmResponse> {
    if (req.action === "ACTIVATE") {
      return Promise.reject(
        new EtcdError("etcdserver: raising alarms is not supported", GrpcCode.Unimplemented),
      );
    }
    return Promise.resolve({ alarms: [] });
  }

  /**
   * etcd Maintenance.HashKV: a CRC-32 of the key space's history up to
   * `revision` (0: the current one) from the last compaction on: every
   * key's version at the compacted revision, in key order, then every
   * change after it in revision order (a PUT or DELETE tag and the
   * mvccpb.KeyValue encoding). Members that applied the same log give the
   * same hash whatever their storage did meanwhile (etcd's use: spotting a
   * member whose data diverged). The digest is cairn's own, not equal to
   * etcd's (which hashes its bbolt records). The header's revision is the
   * current one; `compact_revision` the last compaction's.
   *
   * @throws {EtcdError} FutureRev past the current revision; Compacted
   *   below the compacted revision.
   */
  async hashKV(req: HashKVRequest): Promise<HashKVResponse> {
    const ctx = this.#ctx;
    await ctx.linearize();
    const view = ctx.view();
    const current = view.rev();
    let rev = req.revision ?? 0;
    if (rev > current) throw Errors.FutureRev();
    if (rev <= 0) rev = current;
    const compacted = view.compactRev;
    if (rev < compacted) throw Errors.Compacted();
    let hash = 0;
    if (compacted > 0) {
      // Every key ≥ "\0" (the empty key is never stored).
      let from = new Uint8Array([0]);
      for (;;) {
        const { kvs } = view.rangeKeys(from, new Uint8Array(0), {
          rev: compacted,
          limit: HASH_READ_CHUNK,
        });
        for (const kv of kvs) hash = crc32(encodeMessage("KeyValue", kv), hash);
        if (kvs.length < HASH_READ_CHUNK) break;
        const last = kvs[kvs.length - 1].key;
        from = new Uint8Array(last.length + 1);
        from.set(last);
      }
    }
    for (let from = compacted + 1; from <= rev;) {
      const { events, next } = view.changes(from, rev, HASH_READ_CHUNK);
      for (const ev of events) {
        hash = crc32(ev.type === "DELETE" ? DELETE_TAG : PUT_TAG, hash);
        hash = crc32(encodeMessage("KeyValue", ev.kv), hash);
      }
      from = next;
    }
    return { header: ctx.header(current), hash: hash >>> 0, compact_revision: compacted };
  }

  /**
   * etcd Maintenance.Snapshot: a consistent copy of the member's store (one
   * LMDB read transaction; writes go on meanwhile), in messages of
   * SNAPSHOT_CHUNK_BYTES of data with the bytes still to come in
   * `remaining_bytes`, then one message holding the copy's SHA-256 digest
   * (32 bytes, `remaining_bytes` 0), as etcd sends it. The copy is written
   * to a temporary directory first (ServiceOptions.snapshotDir) and removed
   * when the iteration ends or `signal` aborts.
   *
   * @throws {EtcdError} Canceled when `signal` aborts.
   */
  async *snapshot(signal?: AbortSignal): AsyncGenerator<SnapshotResponse> {
    const ctx = this.#ctx;
    if (ctx.snapshotDir !== undefined) await Deno.mkdir(ctx.snapshotDir, { recursive: true });
    const dir = await Deno.makeTempDir({ dir: ctx.snapshotDir, prefix: "cairn-snapshot-" });
    try {
      const path = await ctx.backend.copyTo(dir);
      using file = await Deno.open(path, { read: true });
      const total = (await file.stat()).size;
      const hash = createHash("sha256");
      let sent = 0;
      while (sent < total) {
        if (signal?.aborted) throw Errors.Canceled();
        const blob = new Uint8Array(Math.min(SNAPSHOT_CHUNK_BYTES, total - sent));
        let n = 0;
        while (n < blob.length) {
          const r = await file.read(blob.subarray(n));
          if (r === null) break;
          n += r;
        }
        if (n < blob.length) {
          throw new EtcdError("snapshot copy ended early", GrpcCode.Internal);
        }
        sent += n;
        hash.update(blob);
        yield { remaining_bytes: total - sent, blob };
      }
      yield { remaining_bytes: 0, blob: new Uint8Array(hash.digest()) };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}
