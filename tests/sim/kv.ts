/**
 * The simulator's replicated state machine: a string KV map with client
 * sessions that drop duplicate requests (thesis §6.3), and the encoding of
 * its commands as Raft entry data.
 *
 * @module
 */

import { invariant } from "../../core/invariant.ts";
import { applyRange } from "../../core/mvcc/apply.ts";
import { ReadView } from "../../core/mvcc/view.ts";
import type { Entry } from "../../core/raft/types.ts";
import { Applier } from "../../server/raftnode/applier.ts";
import { encodeRequest, entryData, type InternalRequest } from "../../server/raftnode/request.ts";
import { MemoryBackend } from "./memory_backend.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A command in a log entry. `probe` entries test liveness and change nothing. */
export type Command =
  | { kind: "put"; client: number; req: number; key: string; value: string }
  | { kind: "delete"; client: number; req: number; key: string }
  | { kind: "probe"; id: number };

/** Encodes a command as entry data. */
export function encodeCommand(c: Command): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

/** Decodes entry data; empty data (a leader's no-op) gives undefined. */
export function decodeCommand(data: Uint8Array): Command | undefined {
  if (data.length === 0) return undefined;
  return JSON.parse(dec.decode(data)) as Command;
}

/** The toy KV state machine of one simulated node (a Map). */
export class KvStateMachine implements StateMachine {
  kv: Map<string, string> = new Map();
  /** Highest request number applied per client (session dedup). */
  sessions: Map<number, number> = new Map();

  /** Applies the commands of `entries`; conf changes, no-ops and duplicates change nothing. */
  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      const c = e.type === "normal" ? decodeCommand(e.data) : undefined;
      if (c !== undefined) this.#applyCommand(c);
    }
  }

  #applyCommand(c: Command): void {
    if (c.kind === "probe") return;
    const last = this.sessions.get(c.client) ?? 0;
    if (c.req <= last) return;
    this.sessions.set(c.client, c.req);
    if (c.kind === "put") this.kv.set(c.key, c.value);
    else this.kv.delete(c.key);
  }

  /** The current value of `key`, if it exists. */
  get(key: string): string | undefined {
    return this.kv.get(key);
  }

  /** Serializes the state for a snapshot. */
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ kv: [...this.kv], sessions: [...this.sessions] }));
  }

  /** Replaces the state with a snapshot's. */
  restore(data: Uint8Array, _index: number): void {
    if (data.length === 0) {
      this.kv = new Map();
      this.sessions = new Map();
      return;
    }
    const o = JSON.parse(dec.decode(data));
    this.kv = new Map(o.kv);
    this.sessions = new Map(o.sessions);
  }
}

/** What the simulator needs of a node's state machine. */
export interface StateMachine {
  /**
   * Applies committed entries as one batch: consecutive, starting right
   * after the last one applied, no-ops and conf changes included (they
   * change nothing). A command a client session already applied is a
   * duplicate and changes nothing.
   */
  apply(entries: readonly Entry[]): void;
  /** The current value of `key`, if it exists. */
  get(key: string): string | undefined;
  /** Serializes the state for a snapshot. */
  snapshot(): Uint8Array;
  /** Replaces the state with that of a snapshot taken at log index `index`. */
  restore(data: Uint8Array, index: number): void;
}

/**
 * The state machine cairn serves: each batch of committed entries becomes
 * the server's tagged requests and log entries (server/raftnode/request.ts)
 * and goes through its `Applier` into core/mvcc (revisions, history, the
 * `current`/`history`/`revlog` tables) in one transaction over an in-memory
 * backend, as a server applies a Ready's entries. Behind the same
 * client-session dedup as {@linkcode KvStateMachine}: a duplicate, like a
 * conf change or a no-op, is applied as an empty entry.
 */
export class MvccStateMachine implements StateMachine {
  #backend = new MemoryBackend();
  #applier = new Applier(this.#backend);
  /** Highest request number applied per client (session dedup). */
  #sessions: Map<number, number> = new Map();

  apply(entries: readonly Entry[]): void {
    const batch = entries.map((e): Entry => {
      const c = e.type === "normal" ? decodeCommand(e.data) : undefined;
      const request = c === undefined ? undefined : this.#request(c);
      if (request === undefined) return { ...e, type: "normal", data: new Uint8Array(0) };
      return { ...e, data: entryData(e.index, encodeRequest(request)) };
    });
    for (const result of this.#applier.apply(batch).results.values()) {
      if ("error" in result) throw result.error;
    }
  }

  /** The request `c` makes, or undefined for a probe or a duplicate. */
  #request(c: Command): InternalRequest | undefined {
    if (c.kind === "probe") return undefined;
    if (c.req <= (this.#sessions.get(c.client) ?? 0)) return undefined;
    this.#sessions.set(c.client, c.req);
    return c.kind === "put"
      ? { type: "put", put: { key: enc.encode(c.key), value: enc.encode(c.value) } }
      : { type: "delete_range", delete_range: { key: enc.encode(c.key) } };
  }

  get(key: string): string | undefined {
    const r = applyRange(new ReadView(this.#backend), { key: enc.encode(key) });
    return r.kvs.length > 0 ? dec.decode(r.kvs[0].value) : undefined;
  }

  snapshot(): Uint8Array {
    return enc.encode(
      JSON.stringify({ backend: this.#backend.dump(), sessions: [...this.#sessions] }),
    );
  }

  restore(data: Uint8Array, index: number): void {
    if (data.length === 0) {
      this.#backend = new MemoryBackend();
      this.#sessions = new Map();
    } else {
      const o = JSON.parse(dec.decode(data));
      this.#backend = MemoryBackend.load(o.backend);
      this.#sessions = new Map(o.sessions);
    }
    this.#applier = new Applier(this.#backend);
    invariant(
      this.#applier.appliedIndex === index,
      `a snapshot at ${index} holds the state applied up to it (${this.#applier.appliedIndex})`,
    );
  }
}
