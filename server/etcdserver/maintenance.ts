/**
 * etcd's Maintenance service: Status, Alarm, Hash, HashKV, Defragment and
 * Snapshot (MoveLeader is the Cluster service's, server/etcdserver/cluster.ts).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import type {
  AlarmRequest,
  AlarmResponse,
  DefragmentResponse,
  HashKVRequest,
  HashKVResponse,
  HashResponse,
  SnapshotResponse,
  StatusResponse,
} from "../../core/api/types.ts";
import { Meta } from "../../core/mvcc/view.ts";
import type { Table } from "../../core/backend.ts";
import { alarmText } from "../../core/alarm.ts";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import { HASH_READ_CHUNK, SNAPSHOT_CHUNK_BYTES } from "../../core/limits.ts";
import { encodeMessage } from "../../core/api/proto.ts";
import { ETCD_API_VERSION } from "../../version.ts";
import type { Credentials, ServiceContext } from "./context.ts";
import type { RaftStatus } from "../cluster/manager.ts";

/** The Maintenance RPCs beyond Status, as transports call them. */
export interface MaintenanceService {
  /** Maintenance.Alarm; see {@linkcode MaintenanceServer.alarm}. */
  alarm(req: AlarmRequest): Promise<AlarmResponse>;
  /** Maintenance.Snapshot; see {@linkcode MaintenanceServer.snapshot}. */
  snapshot(signal?: AbortSignal, creds?: Credentials): AsyncIterable<SnapshotResponse>;
  /** Maintenance.HashKV; see {@linkcode MaintenanceServer.hashKV}. */
  hashKV(req: HashKVRequest, creds?: Credentials): Promise<HashKVResponse>;
  /** Maintenance.Hash; see {@linkcode MaintenanceServer.hash}. */
  hash(creds?: Credentials): Promise<HashResponse>;
  /** Maintenance.Defragment; see {@linkcode MaintenanceServer.defragment}. */
  defragment(creds?: Credentials): Promise<DefragmentResponse>;
}

/** The tables Maintenance.Hash digests, in this order. */
const HASHED_TABLES: Table[] = ["current", "history", "revlog", "lease"];

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
   * describe the same state. `errors` lists the raised alarms as etcd does
   * (`memberID:<decimal> alarm:<TYPE> `), after `etcdserver: no leader` when
   * no leader is known.
   */
  async status(_creds?: Credentials): Promise<StatusResponse> {
    const ctx = this.#ctx;
    await ctx.linearize();
    const raft = await this.raftStatus();
    const view = ctx.view();
    const applied = Number(ctx.backend.getMeta(Meta.appliedIndex) ?? 0);
    const { dbSize, dbSizeInUse } = ctx.backend.size();
    const errors: string[] = raft.leader === 0n ? [Errors.NoLeader().message] : [];
    for (const alarm of ctx.alarms().get()) errors.push(alarmText(alarm));
    return {
      header: { ...ctx.header(view.rev()), raft_term: raft.raftTerm },
      version: ETCD_API_VERSION,
      dbSize,
      leader: BigInt(raft.leader),
      raftIndex: Math.max(applied, raft.raftIndex),
      raftTerm: raft.raftTerm,
      raftAppliedIndex: applied,
      errors,
      dbSizeInUse,
      isLearner: raft.isLearner,
    };
  }

  /**
   * This member's current revision and compacted revision as applied so
   * far (0 before the first compaction), without waiting for anything.
   */
  revisions(): { revision: number; compactRevision: number } {
    const view = this.#ctx.view();
    return { revision: view.rev(), compactRevision: view.compactRev };
  }

  /** This member's Raft state: leader, commit index, term, learner. */
  raftStatus(): Promise<RaftStatus> {
    return this.#ctx.proposer.cluster({ method: "raft_status" }) as Promise<RaftStatus>;
  }

  /**
   * etcd Maintenance.Alarm. GET lists the raised alarms of kind `alarm`
   * (NONE: every kind) once every acknowledged write is visible (a
   * linearizable read). ACTIVATE raises `alarm` for `memberID` and answers
   * it (also when it was raised already); DEACTIVATE clears it and answers
   * it, or nothing when it was not raised. Both are replicated requests:
   * every member applies them in log order, and they survive restarts.
   * While NOSPACE is raised, writes that add data fail; while CORRUPT is,
   * every write fails (core/alarm.ts). Responses carry no header, as etcd
   * 3.4's. ACTIVATE or DEACTIVATE of NONE changes nothing and answers no
   * alarm (etcd 3.4 stops on it).
   *
   * @throws {EtcdError} NoLeader, Timeout when the request cannot be replicated.
   */
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    const ctx = this.#ctx;
    const action = req.action ?? "GET";
    const kind = req.alarm ?? "NONE";
    if (action === "GET") {
      await ctx.linearizeRead(false);
      return { alarms: ctx.alarms().get(kind) };
    }
    if (kind === "NONE") return { alarms: [] };
    const result = await ctx.proposer.propose({
      type: "alarm",
      alarm: { action, memberID: req.memberID ?? 0n, alarm: kind },
    });
    if ("error" in result) throw result.error;
    return { alarms: (result.ok as AlarmResponse).alarms };
  }

  /**
   * etcd Maintenance.Hash: a CRC-32 of every record of the member's MVCC
   * store (its current, history, revlog and lease tables: each table's
   * name, then each key and value in key order), read in one consistent
   * snapshot. Like etcd's, it covers the physical store, so members are
   * comparable only once compaction has removed the same history on each;
   * HashKV is the comparison to use between members. cairn's digest, not
   * equal to etcd's (which hashes its bbolt buckets). The header's revision
   * is the one the hash was taken at.
   */
  async hash(creds?: Credentials): Promise<HashResponse> {
    const ctx = this.#ctx;
    await ctx.admin(creds);
    await ctx.linearize();
    const view = ctx.view();
    const encoder = new TextEncoder();
    let hash = 0;
    for (const table of HASHED_TABLES) {
      hash = crc32(encoder.encode(table), hash);
      for (const { key, value } of ctx.backend.scan(table, {})) {
        hash = crc32(key, hash);
        hash = crc32(value, hash);
      }
    }
    return { header: ctx.header(view.rev()), hash: hash >>> 0 };
  }

  /**
   * etcd Maintenance.Defragment: give the space that compaction and
   * deletes freed inside the store back to the file system, by swapping in
   * a compacted copy of the store (RaftNode.defragment). Reads and
   * writes go on while the copy is made; both pause only while it catches
   * up and is swapped in. Answers once the member serves from the new
   * file; a request while one runs waits for that one. The response has no
   * header, as etcd 3.4's.
   *
   * @throws {EtcdError} Stopped when the member closes meanwhile.
   */
  async defragment(creds?: Credentials): Promise<DefragmentResponse> {
    await this.#ctx.admin(creds);
    await this.#ctx.proposer.cluster({ method: "defragment" });
    return {};
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
   * current one; `compact_revision` the last compaction's (-1 before the
   * first, as etcd).
   *
   * @throws {EtcdError} FutureRev past the current revision; Compacted at
   *   or below the compacted revision (etcd refuses the compacted revision
   *   itself here, unlike Range).
   */
  async hashKV(req: HashKVRequest, creds?: Credentials): Promise<HashKVResponse> {
    const ctx = this.#ctx;
    await ctx.admin(creds);
    await ctx.linearize();
    const view = ctx.view();
    const current = view.rev();
    const compacted = view.compactRev;
    let rev = req.revision ?? 0;
    if (rev > 0 && rev <= compacted) throw Errors.Compacted();
    if (rev > current) throw Errors.FutureRev();
    if (rev <= 0) rev = current;
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
    // etcd reports -1 before the first compaction.
    return {
      header: ctx.header(current),
      hash: hash >>> 0,
      compact_revision: compacted > 0 ? compacted : -1,
    };
  }

  /**
   * etcd Maintenance.Snapshot: a consistent copy of the member's store (one
   * LMDB read transaction, taken once every write this member has answered
   * is committed, so it holds them all; writes go on meanwhile), in messages of
   * SNAPSHOT_CHUNK_BYTES of data with the bytes still to come in
   * `remaining_bytes`, then one message holding the copy's SHA-256 digest
   * (32 bytes, `remaining_bytes` 0), as etcd sends it. The copy is written
   * to a temporary directory first (ServiceOptions.snapshotDir) and removed
   * when the iteration ends or `signal` aborts.
   *
   * @throws {EtcdError} Canceled when `signal` aborts.
   */
  async *snapshot(signal?: AbortSignal, creds?: Credentials): AsyncGenerator<SnapshotResponse> {
    const ctx = this.#ctx;
    await ctx.admin(creds);
    // Every write this member has answered is committed to the store before
    // it is copied: a backup never lacks an acknowledged write.
    await ctx.linearize();
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
