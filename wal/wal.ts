/**
 * The write-ahead log: core/raft's entries, hard state and log base
 * (snapshot metadata) in append-only segment files, written once per Ready
 * with ONE fdatasync. See wal/README.md for the format, the measurements
 * behind it and the recovery procedure.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { invariant } from "../core/invariant.ts";
import { WAL_SEGMENT_BYTES, WAL_ZERO_CHUNK_BYTES } from "../core/limits.ts";
import type { ConfState, Entry, HardState, SnapshotMetadata } from "../core/raft/types.ts";

/** Record kinds. */
const ENTRY = 1;
const HARD_STATE = 2;
const BASE = 3;
const SNAPSHOT = 4;

/** Bytes before a record's body: length (u32 LE) ‖ CRC-32 of the body (u32 LE). */
const FRAME = 8;

/** Thrown when the log on disk is damaged anywhere but in its torn tail. */
export class WalCorruptError extends Error {
  /**
   * Builds the error.
   * @param message what is wrong, and where.
   */
  constructor(message: string) {
    super(message);
    this.name = "WalCorruptError";
  }
}

/** What a log holds, as read back by {@linkcode Wal.open}. */
export interface WalState {
  /** Index, term and membership the log starts after (its oldest base record). */
  base: SnapshotMetadata;
  /** The last hard state written (term 0 when none was). */
  hardState: HardState;
  /** Entries after `base.index`, contiguous, later writes winning. */
  entries: Entry[];
}

/** Options of {@linkcode Wal.open}. */
export interface WalOptions {
  /** Size in bytes each segment is preallocated to. Default `WAL_SEGMENT_BYTES`. */
  segmentBytes?: number;
}

/** A segment file: its sequence number and the index of its first entry. */
interface Segment {
  seq: number;
  firstIndex: number;
  path: string;
}

function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, "0")}-${firstIndex.toString(16).padStart(16, "0")}.wal`;
}

function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(name);
  if (m === null) return undefined;
  return { seq: parseInt(m[1], 16), firstIndex: parseInt(m[2], 16) };
}

/** Encodes records into one buffer (grown as needed). */
class Encoder {
  buf = new Uint8Array(64 * 1024);
  view = new DataView(this.buf.buffer);
  len = 0;

  #reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  #u64(at: number, v: number): void {
    this.view.setUint32(at, Math.floor(v / 0x1_0000_0000));
    this.view.setUint32(at + 4, v >>> 0);
  }

  /** Frame a record whose body (kind byte first) is `bodyLen` bytes; returns the body offset. */
  #begin(bodyLen: number): number {
    this.#reserve(FRAME + bodyLen);
    const at = this.len + FRAME;
    this.len += FRAME + bodyLen;
    return at;
  }

  #end(at: number, bodyLen: number): void {
    this.view.setUint32(at - FRAME, bodyLen, true);
    this.view.setUint32(at - 4, crc32(this.buf.subarray(at, at + bodyLen)), true);
  }

  entry(e: Entry): void {
    const n = 1 + 8 + 8 + 1 + e.data.length;
    const at = this.#begin(n);
    this.buf[at] = ENTRY;
    this.#u64(at + 1, e.index);
    this.#u64(at + 9, e.term);
    this.buf[at + 17] = e.type === "confChange" ? 1 : 0;
    this.buf.set(e.data, at + 18);
    this.#end(at, n);
  }

  hardState(hs: HardState): void {
    const n = 1 + 24;
    const at = this.#begin(n);
    this.buf[at] = HARD_STATE;
    this.#u64(at + 1, hs.term);
    this.#u64(at + 9, hs.vote);
    this.#u64(at + 17, hs.commit);
    this.#end(at, n);
  }

  base(m: SnapshotMetadata, kind = BASE): void {
    const ids = [...m.confState.voters, ...m.confState.learners];
    const n = 1 + 16 + 8 + 8 * ids.length;
    const at = this.#begin(n);
    this.buf[at] = kind;
    this.#u64(at + 1, m.index);
    this.#u64(at + 9, m.term);
    this.view.setUint32(at + 17, m.confState.voters.length);
    this.view.setUint32(at + 21, m.confState.learners.length);
    ids.forEach((id, i) => this.#u64(at + 25 + 8 * i, id));
    this.#end(at, n);
  }

  take(): Uint8Array {
    const out = this.buf.subarray(0, this.len);
    this.len = 0;
    return out;
  }
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4);
}

/** Replays the records of one segment into `state`; returns the end of the valid data. */
function replay(
  bytes: Uint8Array,
  state: { base?: SnapshotMetadata; hardState: HardState; entries: Entry[] },
  where: string,
): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (off + FRAME <= bytes.length) {
    const len = view.getUint32(off, true);
    if (len === 0 || off + FRAME + len > bytes.length) break;
    const body = bytes.subarray(off + FRAME, off + FRAME + len);
    if (crc32(body) !== view.getUint32(off + 4, true)) break;
    const at = off + FRAME;
    switch (body[0]) {
      case ENTRY: {
        const index = u64(view, at + 1);
        const e: Entry = {
          index,
          term: u64(view, at + 9),
          type: body[17] === 1 ? "confChange" : "normal",
          data: body.slice(18),
        };
        const ents = state.entries;
        const first = ents.length > 0 ? ents[0].index : (state.base?.index ?? 0) + 1;
        if (index < first) {
          throw new WalCorruptError(`${where}: entry ${index} precedes the log start ${first}`);
        }
        if (index > first + ents.length) {
          throw new WalCorruptError(
            `${where}: entry ${index} leaves a gap after ${first + ents.length - 1}`,
          );
        }
        ents.length = index - first; // a rewritten index drops everything after it
        ents.push(e);
        break;
      }
      case HARD_STATE:
        state.hardState = {
          term: u64(view, at + 1),
          vote: u64(view, at + 9),
          commit: u64(view, at + 17),
        };
        break;
      case BASE:
      case SNAPSHOT: {
        const nv = view.getUint32(at + 17);
        const nl = view.getUint32(at + 21);
        const ids: number[] = [];
        for (let i = 0; i < nv + nl; i++) ids.push(u64(view, at + 25 + 8 * i));
        const base: SnapshotMetadata = {
          index: u64(view, at + 1),
          term: u64(view, at + 9),
          confState: { voters: ids.slice(0, nv), learners: ids.slice(nv) },
        };
        if (body[0] === SNAPSHOT || state.base === undefined) {
          // The log starts after the base; an installed snapshot replaces it.
          state.base = base;
          state.entries = [];
        } else {
          // A later segment's header: it must continue the log.
          const last = state.entries.at(-1)?.index ?? state.base.index;
          if (base.index !== last) {
            throw new WalCorruptError(
              `${where}: segment starts after entry ${base.index}, the log ends at ${last}`,
            );
          }
        }
        break;
      }
      default:
        throw new WalCorruptError(`${where}: unknown record kind ${body[0]} at offset ${off}`);
    }
    off += FRAME + len;
  }
  return off;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

/**
 * An open write-ahead log. One writer: {@linkcode Wal.save} calls must not
 * overlap (the Ready loop awaits each).
 */
export class Wal {
  readonly #dir: string;
  readonly #segmentBytes: number;
  /**
   * Told of every write to the log: its size in bytes, and the seconds its
   * fdatasync took (undefined when not synced). For etcd's
   * etcd_disk_wal_fsync_duration_seconds and etcd_disk_wal_write_bytes_total.
   */
  onWrite: ((bytes: number, syncSeconds: number | undefined) => void) | undefined;
  #segments: Segment[];
  #file: Deno.FsFile;
  /** Write offset in the current (last) segment. */
  #offset: number;
  #enc = new Encoder();
  #saving = false;
  /** A zero-filled, synced file ready to become the next segment. */
  #next: Promise<string> | undefined;
  #tmpCounter = 0;
  /** Last entry written (index, term) and the membership to record at a cut. */
  #last: { index: number; term: number };
  #confState: ConfState;
  #hardState: HardState;

  private constructor(
    dir: string,
    segmentBytes: number,
    segments: Segment[],
    file: Deno.FsFile,
    offset: number,
    state: WalState,
  ) {
    this.#dir = dir;
    this.#segmentBytes = segmentBytes;
    this.#segments = segments;
    this.#file = file;
    this.#offset = offset;
    const last = state.entries.at(-1);
    this.#last = last ? { index: last.index, term: last.term } : { ...state.base };
    this.#confState = state.base.confState;
    this.#hardState = state.hardState;
  }

  /**
   * Open the log in `dir`, or create it starting after `initial` when the
   * directory holds no segment. Reads every segment, verifies each record's
   * CRC and zero-fills the torn tail of the last segment (a write that a
   * crash cut short, never acknowledged), so later records cannot be
   * confused with stale bytes.
   *
   * @throws {WalCorruptError} when a record before the tail is damaged, or
   *   entries leave a gap.
   */
  static async open(
    dir: string,
    initial: SnapshotMetadata,
    options: WalOptions = {},
  ): Promise<{ wal: Wal; state: WalState }> {
    const segmentBytes = options.segmentBytes ?? WAL_SEGMENT_BYTES;
    Deno.mkdirSync(dir, { recursive: true });
    const segments: Segment[] = [];
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.endsWith(".tmp")) {
        Deno.removeSync(`${dir}/${e.name}`);
        continue;
      }
      const parsed = parseSegmentName(e.name);
      if (parsed) segments.push({ ...parsed, path: `${dir}/${e.name}` });
    }
    segments.sort((a, b) => a.seq - b.seq);
    if (segments.length === 0) {
      const wal = await Wal.#create(dir, segmentBytes, initial);
      return {
        wal,
        state: { base: initial, hardState: { term: 0, vote: 0, commit: 0 }, entries: [] },
      };
    }
    const acc: { base?: SnapshotMetadata; hardState: HardState; entries: Entry[] } = {
      hardState: { term: 0, vote: 0, commit: 0 },
      entries: [],
    };
    let end = 0;
    for (let i = 0; i < segments.length; i++) {
      const bytes = Deno.readFileSync(segments[i].path);
      end = replay(bytes, acc, segments[i].path);
      if (i === 0 && acc.base === undefined) {
        throw new WalCorruptError(`${segments[i].path}: the first segment has no base record`);
      }
      if (i < segments.length - 1 && !isZero(bytes.subarray(end))) {
        throw new WalCorruptError(`${segments[i].path}: damaged record at offset ${end}`);
      }
    }
    const state: WalState = { base: acc.base!, hardState: acc.hardState, entries: acc.entries };
    const last = segments[segments.length - 1];
    const file = await Deno.open(last.path, { read: true, write: true });
    const size = (await file.stat()).size;
    // Zero the torn tail (if any) so that it can never be read as records.
    if (end < size) {
      await file.seek(end, Deno.SeekMode.Start);
      const tail = Math.min(size - end, segmentBytes);
      await writeAll(file, new Uint8Array(tail));
      await file.syncData();
    }
    await file.seek(end, Deno.SeekMode.Start);
    return { wal: new Wal(dir, segmentBytes, segments, file, end, state), state };
  }

  static async #create(dir: string, segmentBytes: number, base: SnapshotMetadata): Promise<Wal> {
    const tmp = `${dir}/0.tmp`;
    await zeroFill(tmp, segmentBytes);
    const seg: Segment = { seq: 0, firstIndex: base.index + 1, path: "" };
    seg.path = `${dir}/${segmentName(seg.seq, seg.firstIndex)}`;
    Deno.renameSync(tmp, seg.path);
    syncDir(dir);
    const file = await Deno.open(seg.path, { read: true, write: true });
    const state: WalState = { base, hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
    const wal = new Wal(dir, segmentBytes, [seg], file, 0, state);
    wal.#enc.base(base);
    await wal.#write(wal.#enc.take(), true);
    return wal;
  }

  /** Index of the last entry written. */
  get lastIndex(): number {
    return this.#last.index;
  }

  /** Number of segment files, for tests and status. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * Append `entries` (overwriting any at ≥ `entries[0].index`, as Raft
   * truncates a conflicting tail) and `hardState`, in one write; with
   * `sync`, one fdatasync before resolving. Cuts to a new segment (which
   * starts with a base record and the hard state) when the current one is
   * full.
   */
  async save(hardState: HardState | undefined, entries: Entry[], sync: boolean): Promise<void> {
    invariant(!this.#saving, "WAL saves do not overlap");
    if (hardState === undefined && entries.length === 0) return;
    this.#saving = true;
    try {
      if (entries.length > 0) {
        invariant(
          entries[0].index <= this.#last.index + 1,
          `WAL entries follow the log (first ${entries[0].index}, last ${this.#last.index})`,
        );
        // Cut only where the batch continues the log, so a segment's
        // header base is the last entry before it.
        const full = this.#offset + this.#estimate(entries) > this.#segmentBytes;
        if (full && this.#offset > 0 && entries[0].index === this.#last.index + 1) {
          await this.#cut(entries[0].index);
        }
      }
      for (const e of entries) this.#enc.entry(e);
      if (hardState !== undefined) {
        this.#enc.hardState(hardState);
        this.#hardState = hardState;
      }
      const last = entries.at(-1);
      if (last !== undefined) this.#last = { index: last.index, term: last.term };
      await this.#write(this.#enc.take(), sync);
    } finally {
      this.#saving = false;
    }
  }

  /**
   * Record an installed snapshot covering everything up to `meta.index`
   * (e.g. received from the leader): on replay the log restarts after it,
   * as core/raft's storage does when it applies a snapshot.
   */
  async saveSnapshot(meta: SnapshotMetadata): Promise<void> {
    invariant(!this.#saving, "WAL saves do not overlap");
    this.#saving = true;
    try {
      this.#enc.base(meta, SNAPSHOT);
      this.#confState = meta.confState;
      this.#last = { index: meta.index, term: meta.term };
      await this.#write(this.#enc.take(), true);
    } finally {
      this.#saving = false;
    }
  }

  #estimate(entries: Entry[]): number {
    let n = FRAME + 25;
    for (const e of entries) n += FRAME + 18 + e.data.length;
    return n;
  }

  async #write(bytes: Uint8Array, sync: boolean): Promise<void> {
    // Into the page cache synchronously (microseconds for a Ready's records),
    // saving a thread-pool round trip; only the fdatasync runs off-thread.
    let done = 0;
    while (done < bytes.length) done += this.#file.writeSync(bytes.subarray(done));
    this.#offset += bytes.length;
    if (!sync) {
      this.onWrite?.(bytes.length, undefined);
      return;
    }
    const start = performance.now();
    await this.#file.syncData();
    this.onWrite?.(bytes.length, (performance.now() - start) / 1000);
  }

  /** Start a new segment whose first entry is `firstIndex`. */
  async #cut(firstIndex: number): Promise<void> {
    const tmp = await (this.#next ?? this.#prepare()).catch(() => this.#prepare());
    this.#next = undefined;
    const prev = this.#segments[this.#segments.length - 1];
    const seg: Segment = { seq: prev.seq + 1, firstIndex, path: "" };
    seg.path = `${this.#dir}/${segmentName(seg.seq, seg.firstIndex)}`;
    // The old segment's data is already durable (every Ready that needed it
    // synced); the new one becomes part of the log with the rename.
    Deno.renameSync(tmp, seg.path);
    syncDir(this.#dir);
    this.#file.close();
    this.#file = await Deno.open(seg.path, { read: true, write: true });
    this.#segments.push(seg);
    this.#offset = 0;
    invariant(firstIndex === this.#last.index + 1, "a segment is cut at the end of the log");
    this.#enc.base({ index: this.#last.index, term: this.#last.term, confState: this.#confState });
    this.#enc.hardState(this.#hardState);
    // Written together with the batch that follows (one sync).
    this.#next = this.#prepare();
  }

  /**
   * Zero-fill a file for the next segment, in the background. A failure
   * (a full disk) surfaces at the cut that needs the file, which tries once
   * more.
   */
  #prepare(): Promise<string> {
    const tmp = `${this.#dir}/${++this.#tmpCounter}.tmp`;
    const ready = zeroFill(tmp, this.#segmentBytes).then(() => tmp, (err) => {
      try {
        Deno.removeSync(tmp);
      } catch { /* never created */ }
      throw err;
    });
    ready.catch(() => {});
    return ready;
  }

  /**
   * Delete the segments whose every entry is at or below `index` (durable
   * in the state machine and no longer needed by Raft). The newest
   * segment is always kept.
   */
  release(index: number): number {
    let removed = 0;
    while (this.#segments.length > 1 && this.#segments[1].firstIndex - 1 <= index) {
      const seg = this.#segments.shift()!;
      Deno.removeSync(seg.path);
      removed++;
    }
    return removed;
  }

  /** Close the files (waits for a segment being prepared). */
  async close(): Promise<void> {
    if (this.#next) {
      const tmp = await this.#next.catch(() => undefined);
      if (tmp) Deno.removeSync(tmp);
      this.#next = undefined;
    }
    this.#file.close();
  }
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Create `path` filled with `size` zero bytes, synced. */
async function zeroFill(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { create: true, write: true, truncate: true });
  try {
    const zeros = new Uint8Array(Math.min(size, WAL_ZERO_CHUNK_BYTES));
    for (let done = 0; done < size; done += zeros.length) {
      await writeAll(file, zeros.subarray(0, Math.min(zeros.length, size - done)));
    }
    await file.sync();
  } finally {
    file.close();
  }
}
