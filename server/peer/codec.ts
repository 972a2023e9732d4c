/**
 * The peer wire format of Raft messages: msgpack, one array per message in
 * a fixed field order (no field names on the wire), bytes as msgpack `bin`.
 *
 * ```
 * message  = [type, to, from, term, logTerm, index, entries, commit,
 *             reject, rejectHint, context | nil, transfer, snapshot | nil]
 * entry    = [term, index, entryType, data]          entryType: 0 normal, 1 confChange
 * snapshot = [index, term, voters, learners, data]
 * ```
 *
 * `type` is the position in {@linkcode WIRE_MESSAGE_TYPES}. A message batch
 * (POST /raft/messages) is a msgpack array of messages. A snapshot request
 * (POST /raft/snapshot) starts with a 4-byte big-endian length and that many
 * bytes of one encoded message, followed by the database file.
 *
 * Decoding checks every field: the bytes come from the network.
 *
 * @module
 */
import { Packr } from "msgpackr";
import type { Entry, Message, MessageType, Snapshot } from "../../core/raft/types.ts";
import { isLocalMsg } from "../../core/raft/types.ts";

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * Message types in their wire order (a type is sent as its index here).
 * Local types are listed so the numbering matches raftpb's, but never
 * decode: they must not come from the network.
 */
export const WIRE_MESSAGE_TYPES: readonly MessageType[] = [
  "MsgHup",
  "MsgBeat",
  "MsgProp",
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgSnap",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgUnreachable",
  "MsgSnapStatus",
  "MsgCheckQuorum",
  "MsgTransferLeader",
  "MsgTimeoutNow",
  "MsgReadIndex",
  "MsgReadIndexResp",
  "MsgPreVote",
  "MsgPreVoteResp",
];
const typeCodes = new Map(WIRE_MESSAGE_TYPES.map((t, i) => [t, i]));

/** Bytes that are not a valid encoding of Raft messages. */
export class PeerCodecError extends Error {
  /**
   * Builds the error.
   * @param message what is wrong with the bytes.
   */
  constructor(message: string) {
    super(`Cannot decode peer message: ${message}`);
    this.name = "PeerCodecError";
  }
}

/**
 * Upper bound of the encoded size of `m` in bytes (fixed fields, entries,
 * context and snapshot): what the peer queue and request bounds count.
 */
export function messageSize(m: Message): number {
  let size = 128 + (m.context?.byteLength ?? 0);
  for (const e of m.entries) size += 32 + e.data.byteLength;
  if (m.snapshot) {
    const cs = m.snapshot.metadata.confState;
    size += 32 + m.snapshot.data.byteLength + 9 * (cs.voters.length + cs.learners.length);
  }
  return size;
}

function entryTuple(e: Entry): unknown[] {
  return [e.term, e.index, e.type === "normal" ? 0 : 1, e.data];
}

function snapshotTuple(s: Snapshot): unknown[] {
  const m = s.metadata;
  return [m.index, m.term, m.confState.voters, m.confState.learners, s.data];
}

function messageTuple(m: Message): unknown[] {
  return [
    typeCodes.get(m.type),
    m.to,
    m.from,
    m.term,
    m.logTerm,
    m.index,
    m.entries.map(entryTuple),
    m.commit,
    m.reject,
    m.rejectHint,
    m.context ?? null,
    m.transfer ?? false,
    m.snapshot ? snapshotTuple(m.snapshot) : null,
  ];
}

/** Encodes a batch of messages (the body of POST /raft/messages). */
export function encodeMessages(messages: readonly Message[]): Uint8Array<ArrayBuffer> {
  // msgpackr packs into an ArrayBuffer of its own (never shared memory).
  return packr.pack(messages.map(messageTuple)) as Uint8Array<ArrayBuffer>;
}

/**
 * Decodes {@linkcode encodeMessages} output. Byte fields are views into
 * `bytes` (not copies).
 * @throws {PeerCodecError} when `bytes` is not a valid batch, or holds a local message type.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  const value = unpack(bytes);
  if (!Array.isArray(value)) throw new PeerCodecError("a batch is not an array");
  return value.map(toMessage);
}

/**
 * Encodes the head of a snapshot request: 4-byte big-endian length, then
 * the message.
 */
export function encodeSnapshotHead(m: Message): Uint8Array<ArrayBuffer> {
  const body = packr.pack(messageTuple(m));
  const head = new Uint8Array(4 + body.byteLength);
  new DataView(head.buffer).setUint32(0, body.byteLength);
  head.set(body, 4);
  return head;
}

/**
 * Decodes one message encoded inside {@linkcode encodeSnapshotHead} (the
 * bytes after the length).
 * @throws {PeerCodecError} when `bytes` is not a valid message, or holds a local message type.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  return toMessage(unpack(bytes));
}

function unpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new PeerCodecError(`not msgpack (${(err as Error).message})`);
  }
}

function int(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new PeerCodecError(`${what} is not a non-negative integer`);
  }
  return v as number;
}

function bytesOf(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new PeerCodecError(`${what} is not bytes`);
  // msgpackr hands out Buffers on Node's API; cairn's types want plain views.
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw new PeerCodecError(`${what} is not a boolean`);
  return v;
}

function tuple(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length !== length) {
    throw new PeerCodecError(`${what} is not an array of ${length}`);
  }
  return v;
}

function ids(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new PeerCodecError(`${what} is not an array`);
  return v.map((id) => int(id, what));
}

function toEntry(v: unknown): Entry {
  const t = tuple(v, 4, "an entry");
  if (t[2] !== 0 && t[2] !== 1) throw new PeerCodecError("entry type is not 0 or 1");
  return {
    term: int(t[0], "entry term"),
    index: int(t[1], "entry index"),
    type: t[2] === 0 ? "normal" : "confChange",
    data: bytesOf(t[3], "entry data"),
  };
}

function toSnapshot(v: unknown): Snapshot {
  const t = tuple(v, 5, "a snapshot");
  return {
    metadata: {
      index: int(t[0], "snapshot index"),
      term: int(t[1], "snapshot term"),
      confState: { voters: ids(t[2], "snapshot voters"), learners: ids(t[3], "snapshot learners") },
    },
    data: bytesOf(t[4], "snapshot data"),
  };
}

function toMessage(v: unknown): Message {
  const t = tuple(v, 13, "a message");
  const type = WIRE_MESSAGE_TYPES[int(t[0], "message type")];
  if (type === undefined) throw new PeerCodecError(`unknown message type ${t[0]}`);
  if (isLocalMsg(type)) throw new PeerCodecError(`local message type ${type}`);
  if (!Array.isArray(t[6])) throw new PeerCodecError("entries is not an array");
  const m: Message = {
    type,
    to: int(t[1], "to"),
    from: int(t[2], "from"),
    term: int(t[3], "term"),
    logTerm: int(t[4], "logTerm"),
    index: int(t[5], "index"),
    entries: t[6].map(toEntry),
    commit: int(t[7], "commit"),
    reject: bool(t[8], "reject"),
    rejectHint: int(t[9], "rejectHint"),
  };
  if (t[10] !== null) m.context = bytesOf(t[10], "context");
  if (bool(t[11], "transfer")) m.transfer = true;
  if (t[12] !== null) m.snapshot = toSnapshot(t[12]);
  return m;
}
