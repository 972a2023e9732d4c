/**
 * The simulator's replicated state machine: a string KV map with client
 * sessions that drop duplicate requests (thesis §6.3), and the encoding of
 * its commands as Raft entry data.
 *
 * @module
 */

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

  /** Applies a command; returns false if it was a duplicate and skipped. */
  apply(c: Command, _index?: number): boolean {
    if (c.kind === "probe") return true;
    const last = this.sessions.get(c.client) ?? 0;
    if (c.req <= last) return false;
    this.sessions.set(c.client, c.req);
    if (c.kind === "put") this.kv.set(c.key, c.value);
    else this.kv.delete(c.key);
    return true;
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
  restore(data: Uint8Array): void {
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
   * Applies the command of log entry `index` (entries the simulator does not
   * hand over, like conf changes and no-ops, leave gaps); returns false if
   * it was a duplicate and skipped.
   */
  apply(c: Command, index: number): boolean;
  /** The current value of `key`, if it exists. */
  get(key: string): string | undefined;
  /** Serializes the state for a snapshot. */
  snapshot(): Uint8Array;
  /** Replaces the state with a snapshot's. */
  restore(data: Uint8Array): void;
}

/**
 * The state machine cairn serves: commands become the server's tagged
 * requests and log entries (server/raftnode/request.ts) and go through its
 * `Applier` into core/mvcc (revisions, history, the `current`/`history`/
 * `revlog` tables) over an in-memory backend, behind the same client-session
 * dedup as {@linkcode KvStateMachine} (a duplicate is applied as an empty
 * entry).
 */
export class MvccStateMachine implements StateMachine {
  #backend = new MemoryBackend();
  #applier = new Applier(this.#backend);
  /** Highest request number applied per client (session dedup). */
  #sessions: Map<number, number> = new Map();

  apply(c: Command, index: number): boolean {
    let request: InternalRequest | undefined;
    let fresh = true;
    if (c.kind !== "probe") {
      const last = this.#sessions.get(c.client) ?? 0;
      fresh = c.req > last;
      if (fresh) {
        this.#sessions.set(c.client, c.req);
        request = c.kind === "put"
          ? { type: "put", put: { key: enc.encode(c.key), value: enc.encode(c.value) } }
          : { type: "delete_range", delete_range: { key: enc.encode(c.key) } };
      }
    }
    // Entries the simulator does not hand over (conf changes, no-ops) reach
    // the applier as empty entries, so its applied index is the log's.
    const entries: Entry[] = [];
    for (let i = this.#applier.appliedIndex + 1; i < index; i++) entries.push(empty(i));
    entries.push(
      request === undefined ? empty(index) : {
        index,
        term: 0,
        type: "normal",
        data: entryData(index, encodeRequest(request)),
      },
    );
    const batch = this.#applier.apply(entries);
    const result = batch.results.get(index);
    if (result !== undefined && "error" in result) throw result.error;
    return fresh;
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

  restore(data: Uint8Array): void {
    if (data.length === 0) {
      this.#backend = new MemoryBackend();
      this.#applier = new Applier(this.#backend);
      this.#sessions = new Map();
      return;
    }
    const o = JSON.parse(dec.decode(data));
    this.#backend = MemoryBackend.load(o.backend);
    this.#applier = new Applier(this.#backend);
    this.#sessions = new Map(o.sessions);
  }
}

function empty(index: number): Entry {
  return { index, term: 0, type: "normal", data: new Uint8Array(0) };
}
