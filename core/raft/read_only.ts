/**
 * ReadIndex bookkeeping on the leader (etcd-raft `read_only.go`,
 * `ReadOnlySafe`): each request records the commit index at arrival and is
 * confirmed once a quorum acknowledges a heartbeat carrying its context
 * (Raft thesis §6.4).
 *
 * @module
 */

import type { Message, NodeId } from "./types.ts";

/** A pending ReadIndex request awaiting heartbeat acknowledgements. */
export interface ReadIndexStatus {
  /** The original MsgReadIndex (its `from` is the requester, NONE if local). */
  req: Message;
  /** Leader's commit index when the request arrived. */
  index: number;
  /** Voters (and others) that acknowledged a heartbeat carrying the context. */
  acks: Set<NodeId>;
}

/** Key for a request context (byte-exact). */
export function contextKey(ctx: Uint8Array | undefined): string {
  if (!ctx || ctx.length === 0) return "";
  let s = "";
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/**
 * FIFO of pending ReadIndex requests. Bounded by the caller (the server
 * limits concurrent reads); confirming one request confirms all earlier ones.
 */
export class ReadOnly {
  #pending: Map<string, ReadIndexStatus> = new Map();
  #queue: string[] = [];

  /** Adds a request at commit index `index`; repeats of a pending context are ignored. */
  addRequest(index: number, m: Message): void {
    const key = contextKey(m.context);
    if (this.#pending.has(key)) return;
    this.#pending.set(key, { req: m, index, acks: new Set() });
    this.#queue.push(key);
  }

  /** Records `id`'s heartbeat ack for `ctx`; returns the ack set (empty if unknown). */
  recvAck(id: NodeId, ctx: Uint8Array | undefined): Set<NodeId> {
    const rs = this.#pending.get(contextKey(ctx));
    if (!rs) return new Set();
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * Removes and returns every request up to and including the one with
   * `ctx` (earlier requests are confirmed by the same quorum).
   */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const i = this.#queue.indexOf(key);
    if (i < 0) return [];
    const done = this.#queue.splice(0, i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.#pending.get(k);
      if (rs) out.push(rs);
      this.#pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request, if any. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.#queue.length === 0) return undefined;
    return this.#pending.get(this.#queue[this.#queue.length - 1])?.req.context;
  }

  /** Number of pending requests. */
  get size(): number {
    return this.#queue.length;
  }
}
