/**
 * Watch, without I/O: etcd's watchable store (`mvcc/watchable_store.go`) and
 * watch streams (`mvcc/watcher.go`, the stream half of `v3rpc/watch.go`).
 *
 * A {@linkcode WatchHub} serves the watchers of one thread. It is fed every
 * applied batch of changes, in revision order ({@linkcode WatchHub.notify});
 * watchers that are caught up ("synced") get their events from the feed,
 * one response per batch. A watcher that starts in the past, or whose
 * stream could not take a response (its consumer is slow), is "unsynced":
 * it catches up from the stored history ({@linkcode WatchSource}) in steps of
 * at most {@linkcode MAX_WATCH_SYNC_EVENTS} events, then rejoins the feed.
 * So a slow consumer never blocks the feed, writes or other watchers, and
 * its buffer stays bounded; if its next revision is compacted meanwhile it
 * is canceled with `compact_revision`, as etcd cancels it.
 *
 * A {@linkcode WatchStream} is one client stream: the watch IDs it
 * allocates, the responses waiting for its transport (bounded by
 * {@linkcode MAX_WATCH_STREAM_RESPONSES} and
 * {@linkcode MAX_WATCH_STREAM_EVENTS}), fragmentation and progress.
 *
 * Guarantees (etcd's): events reach a watcher in revision order, each once;
 * no revision inside the retained history is skipped; all events of one
 * revision are in one response (unless the watcher asked for fragments);
 * a progress response at revision R means every event up to R was sent.
 *
 * @module
 */
import type { Event, KeyValue, ResponseHeader, WatchResponse } from "../api/types.ts";
import { protoSize } from "../api/codec.ts";
import { compareBytes, keyId } from "../mvcc/encoding.ts";
import { invariant } from "../invariant.ts";
import {
  MAX_WATCH_STREAM_EVENTS,
  MAX_WATCH_STREAM_RESPONSES,
  MAX_WATCH_SYNC_EVENTS,
} from "../limits.ts";

export { MAX_WATCH_STREAM_EVENTS, MAX_WATCH_STREAM_RESPONSES, MAX_WATCH_SYNC_EVENTS };

/** etcd's cancel reason for a watch on an empty range (key ≥ range_end). */
export const ERR_EMPTY_WATCHER_RANGE = "mvcc: watcher range is empty";
/** etcd's cancel reason for a client-chosen watch ID already in use on the stream. */
export const ERR_DUPLICATE_WATCH_ID = "mvcc: duplicate watch ID provided on the WatchStream";

/** The stored history a hub reads for watchers that are behind the feed. */
export interface WatchSource {
  /** The newest revision readable. */
  revision(): number;
  /** The compacted revision: changes below it are gone. */
  compactRevision(): number;
  /**
   * The changes of revisions `from`..`to` in revision order (no prev_kv),
   * stopping after the revision that brings the count to `maxEvents`;
   * `next` is the first revision not read.
   */
  changes(from: number, to: number, maxEvents: number): { events: Event[]; next: number };
  /** `key`'s version just before revision `rev` (for prev_kv), if readable. */
  previous(key: Uint8Array, rev: number): KeyValue | undefined;
}

/** What a watch asks for, its key range normalized as etcd's watch server does. */
export interface WatchSpec {
  /** First key of the range (never empty: an empty key means `\0`). */
  key: Uint8Array;
  /** undefined: the single key; empty: every key ≥ key; else the exclusive end. */
  end: Uint8Array | undefined;
  /** First revision to deliver; 0: the one after the current revision. */
  startRevision: number;
  /** The watch ID asked for; 0 lets the stream pick. */
  watchId: number;
  /** Leave PUT events out. */
  noPut: boolean;
  /** Leave DELETE events out. */
  noDelete: boolean;
  /** Attach each event's previous key-value. */
  prevKv: boolean;
  /** Send a progress response after each idle progress interval. */
  progressNotify: boolean;
  /** Split responses of `maxRequestBytes` or more. */
  fragment: boolean;
}

/** One watcher: a key range on a stream, and how far it has been served. */
export class Watcher {
  /** Its watch ID on its stream. */
  readonly id: number;
  /** The stream it answers on. */
  readonly stream: WatchStream;
  /** What it watches. */
  readonly spec: WatchSpec;
  /**
   * The next revision this watcher needs. While synced, every revision up to
   * the hub's feed revision has been offered to it, so it needs
   * max(next, feed revision + 1).
   */
  next: number;
  /** It gets its events from the feed (else it catches up from history). */
  synced = false;
  /** No events were sent since the last progress interval (etcd's `progress[id]`). */
  idle = true;
  /** It left its hub. */
  removed = false;

  /** A watcher `id` on `stream`, starting at revision `next`; the stream makes it. */
  constructor(id: number, stream: WatchStream, spec: WatchSpec, next: number) {
    this.id = id;
    this.stream = stream;
    this.spec = spec;
    this.next = next;
  }

  /** Whether `key` is in its range. */
  contains(key: Uint8Array): boolean {
    const { key: start, end } = this.spec;
    if (end === undefined) return compareBytes(key, start) === 0;
    if (compareBytes(key, start) < 0) return false;
    return end.length === 0 || compareBytes(key, end) < 0;
  }
}

/** Options of {@linkcode WatchHub}. */
export interface WatchHubOptions {
  /** Run `fn` soon, outside the current call (the hub's catch-up steps). */
  schedule: (fn: () => void) => void;
  /** Events read from history per catch-up step, at most (whole revisions). Default {@linkcode MAX_WATCH_SYNC_EVENTS}. */
  syncEvents?: number;
  /**
   * Called when the hub gets its first watcher (true) or loses its last
   * (false): a feed may carry only revisions while nobody watches.
   */
  onWatching?: (watching: boolean) => void;
}

/** The watchers of one thread, fed with every applied change. */
export class WatchHub {
  readonly #source: WatchSource;
  readonly #schedule: (fn: () => void) => void;
  readonly #syncEvents: number;
  readonly #onWatching: ((watching: boolean) => void) | undefined;
  /** Every revision up to this one has been offered to the synced watchers. */
  #feedRevision: number;
  /** Single-key watchers by key. */
  readonly #byKey = new Map<string, Set<Watcher>>();
  /** Range watchers, grouped by identical range. */
  readonly #byRange = new Map<
    string,
    { key: Uint8Array; end: Uint8Array; watchers: Set<Watcher> }
  >();
  readonly #unsynced = new Set<Watcher>();
  readonly #streams = new Set<WatchStream>();
  #syncScheduled = false;
  #closed = false;
  #count = 0;

  /** A hub over `source`, fed from its current revision on. */
  constructor(source: WatchSource, options: WatchHubOptions) {
    this.#source = source;
    this.#schedule = options.schedule;
    this.#syncEvents = options.syncEvents ?? MAX_WATCH_SYNC_EVENTS;
    this.#onWatching = options.onWatching;
    invariant(this.#syncEvents > 0, "a catch-up step reads at least one event");
    this.#feedRevision = source.revision();
  }

  /** Every revision up to this one has been offered to synced watchers. */
  get feedRevision(): number {
    return this.#feedRevision;
  }

  /** Watchers registered. */
  get size(): number {
    return this.#count;
  }

  /** Streams open. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Watchers catching up from history. */
  get unsyncedCount(): number {
    return this.#unsynced.size;
  }

  /**
   * The current revision: the newest of what the feed brought and what the
   * store shows (the store may be ahead of the feed; events above the feed
   * revision still arrive through it).
   */
  currentRevision(): number {
    return Math.max(this.#feedRevision, this.#source.revision());
  }

  /** A new stream on this hub. `header` builds a full response header at a revision. */
  openStream(options: WatchStreamOptions): WatchStream {
    invariant(!this.#closed, "a closed hub opens no streams");
    const stream = new WatchStream(this, options);
    this.#streams.add(stream);
    return stream;
  }

  /**
   * The applied-change feed: `events` (in revision order) of the revisions
   * after the feed revision up to `revision`, each with its prev_kv.
   * Revisions at or below the feed revision are ignored (already offered).
   */
  notify(events: readonly Event[], revision: number): void {
    if (revision <= this.#feedRevision) return;
    const first = this.#feedRevision + 1;
    this.#feedRevision = revision;
    if (this.#count === 0 || events.length === 0) return;
    const matched = new Map<Watcher, Event[]>();
    const add = (w: Watcher, ev: Event) => {
      if (!w.synced || ev.kv.mod_revision < w.next) return;
      if (ev.type === "PUT" ? w.spec.noPut : w.spec.noDelete) return;
      let list = matched.get(w);
      if (list === undefined) matched.set(w, list = []);
      list.push(ev);
    };
    for (const ev of events) {
      if (ev.kv.mod_revision < first) continue;
      const single = this.#byKey.get(keyId(ev.kv.key));
      if (single !== undefined) { for (const w of single) add(w, ev); }
      for (const group of this.#byRange.values()) {
        const k = ev.kv.key;
        if (compareBytes(k, group.key) < 0) continue;
        if (group.end.length > 0 && compareBytes(k, group.end) >= 0) continue;
        for (const w of group.watchers) add(w, ev);
      }
    }
    for (const [w, evs] of matched) {
      if (w.stream.deliver(w, evs, revision)) {
        w.next = revision + 1;
      } else {
        // The stream is full: catch up from history once it drains.
        w.next = Math.max(w.next, first);
        this.#unsync(w);
      }
    }
  }

  /**
   * The feed skipped revisions up to `revision` (its carrier fell behind):
   * every synced watcher that still needs them catches up from history.
   */
  skip(revision: number): void {
    if (revision <= this.#feedRevision) return;
    const first = this.#feedRevision + 1;
    this.#feedRevision = revision;
    for (const stream of this.#streams) {
      for (const w of stream.watchers()) {
        if (!w.synced || w.next > revision) continue;
        w.next = Math.max(w.next, first);
        this.#unsync(w);
      }
    }
  }

  /** Register a watcher: synced if it starts after the feed revision, else unsynced. */
  add(w: Watcher): void {
    invariant(!w.removed, "a removed watcher is not added again");
    if (this.#count++ === 0) this.#onWatching?.(true);
    const { key, end } = w.spec;
    if (end === undefined) {
      const id = keyId(key);
      let set = this.#byKey.get(id);
      if (set === undefined) this.#byKey.set(id, set = new Set());
      set.add(w);
    } else {
      const id = keyId(key) + "\u0100" + keyId(end);
      let group = this.#byRange.get(id);
      if (group === undefined) this.#byRange.set(id, group = { key, end, watchers: new Set() });
      group.watchers.add(w);
    }
    if (w.next > this.#feedRevision) w.synced = true;
    else this.#unsync(w);
  }

  /** Unregister a watcher. */
  remove(w: Watcher): void {
    if (w.removed) return;
    w.removed = true;
    if (--this.#count === 0) this.#onWatching?.(false);
    this.#unsynced.delete(w);
    w.synced = false;
    const { key, end } = w.spec;
    if (end === undefined) {
      const id = keyId(key);
      const set = this.#byKey.get(id);
      set?.delete(w);
      if (set?.size === 0) this.#byKey.delete(id);
    } else {
      const id = keyId(key) + "\u0100" + keyId(end);
      const group = this.#byRange.get(id);
      group?.watchers.delete(w);
      if (group?.watchers.size === 0) this.#byRange.delete(id);
    }
  }

  #unsync(w: Watcher): void {
    w.synced = false;
    this.#unsynced.add(w);
    this.requestSync();
  }

  /** Schedule a catch-up step (a stream drained, or watchers fell behind). */
  requestSync(): void {
    if (this.#syncScheduled || this.#closed || this.#unsynced.size === 0) return;
    this.#syncScheduled = true;
    this.#schedule(() => {
      this.#syncScheduled = false;
      if (!this.#closed) this.syncStep();
    });
  }

  /**
   * One catch-up step (etcd's `syncWatchers`): watchers whose next revision
   * is compacted are canceled with `compact_revision`; the others whose
   * stream has room get the stored changes from their next revision, up to
   * {@linkcode MAX_WATCH_SYNC_EVENTS} events, and rejoin the feed once they
   * reach it. Schedules the next step while any can go on.
   */
  syncStep(): void {
    const ready: Watcher[] = [];
    const compactRev = this.#source.compactRevision();
    for (const w of this.#unsynced) {
      if (!w.stream.hasRoom()) continue;
      if (w.next < compactRev) {
        this.remove(w);
        w.stream.compacted(w, compactRev);
        w.stream.settled();
        continue;
      }
      ready.push(w);
    }
    if (ready.length === 0) return;
    // Everything the store holds is final: read up to its revision, which
    // may be ahead of the feed (the feed's copy of those revisions is then
    // skipped by the watcher's next revision) or, on another thread, behind
    // it for a moment (the rest is read in the next step).
    const to = this.#source.revision();
    let from = Infinity;
    for (const w of ready) from = Math.min(from, w.next);
    const { events, next } = from <= to
      ? this.#source.changes(from, to, this.#syncEvents)
      : { events: [], next: from };
    let again = false;
    for (const w of ready) {
      if (w.next < next) {
        const evs = events.filter((ev) =>
          ev.kv.mod_revision >= w.next && w.contains(ev.kv.key) &&
          !(ev.type === "PUT" ? w.spec.noPut : w.spec.noDelete)
        );
        // No room: the stream's next take() asks for another step.
        if (evs.length > 0 && !w.stream.deliver(w, evs, next - 1)) continue;
        w.next = next;
      }
      if (w.next > this.#feedRevision) {
        this.#unsynced.delete(w);
        w.synced = true;
        w.stream.settled();
      } else if (w.next <= to && w.stream.hasRoom()) {
        again = true;
      }
    }
    if (again) this.requestSync();
  }

  /**
   * A progress interval passed (etcd's progress ticker): each synced watcher
   * with progress_notify that was sent no events since the last interval
   * gets an empty response at the feed revision.
   */
  progressTick(): void {
    for (const stream of this.#streams) {
      for (const w of stream.watchers()) {
        if (!w.spec.progressNotify) continue;
        if (w.idle && w.synced && w.stream.hasRoom()) {
          w.stream.push({ header: w.stream.header(this.#feedRevision), watch_id: w.id });
        }
        w.idle = true;
      }
    }
  }

  /** A stream ended: forget it. */
  detach(stream: WatchStream): void {
    this.#streams.delete(stream);
  }

  /** End every stream (their transports finish) and take no more. */
  close(): void {
    this.#closed = true;
    for (const stream of [...this.#streams]) stream.close();
  }

  /** The prev_kv of an event read from history. */
  previous(ev: Event): KeyValue | undefined {
    return this.#source.previous(ev.kv.key, ev.kv.mod_revision);
  }
}

/** Options of a {@linkcode WatchStream}. */
export interface WatchStreamOptions {
  /** A full response header at `revision` (cluster and member IDs, term). */
  header: (revision: number) => ResponseHeader;
  /** etcd's --max-request-bytes: fragmenting watchers split responses of this size or more. */
  maxRequestBytes: number;
}

/** The events of an event list without their prev_kv, made once per event. */
const bare = new WeakMap<Event, Event>();

function withoutPrev(ev: Event): Event {
  if (ev.prev_kv === undefined) return ev;
  let b = bare.get(ev);
  if (b === undefined) bare.set(ev, b = { type: ev.type, kv: ev.kv });
  return b;
}

/**
 * One client watch stream: its watchers, their IDs, and the responses
 * waiting for the transport. The transport calls {@linkcode create},
 * {@linkcode cancel} and {@linkcode progress} for the client's requests, in
 * order, and takes responses with {@linkcode next} until it returns
 * undefined.
 */
export class WatchStream {
  readonly #hub: WatchHub;
  readonly #options: WatchStreamOptions;
  readonly #watchers = new Map<number, Watcher>();
  #nextId = 0;
  #queue: WatchResponse[] = [];
  #queuedEvents = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #progressPending = false;

  /** Use {@linkcode WatchHub.openStream}. */
  constructor(hub: WatchHub, options: WatchStreamOptions) {
    this.#hub = hub;
    this.#options = options;
  }

  /** A full response header at `revision`. */
  header(revision: number): ResponseHeader {
    return this.#options.header(revision);
  }

  /** The stream's watchers. */
  watchers(): Iterable<Watcher> {
    return this.#watchers.values();
  }

  /** Responses waiting for the transport. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether another events response fits: the queue is under
   * {@linkcode MAX_WATCH_STREAM_RESPONSES} responses and
   * {@linkcode MAX_WATCH_STREAM_EVENTS} events (an empty queue always takes
   * one, however large).
   */
  hasRoom(): boolean {
    return !this.#closed &&
      (this.#queue.length === 0 ||
        (this.#queue.length < MAX_WATCH_STREAM_RESPONSES &&
          this.#queuedEvents < MAX_WATCH_STREAM_EVENTS));
  }

  /**
   * Start a watch (etcd's `watchStream.Watch` and the create branch of its
   * watch server): answers `created` with the current revision in the
   * header, or `created` + `canceled` with etcd's reason and watch_id -1 for
   * an empty range or a watch ID in use. A watch from a past revision
   * catches up from history; one from a future revision waits for it.
   */
  create(spec: WatchSpec): void {
    if (this.#closed) return;
    const rev = this.#hub.currentRevision();
    const refuse = (reason: string) =>
      this.push({
        header: this.header(rev),
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: reason,
      });
    if (spec.end !== undefined && spec.end.length > 0 && compareBytes(spec.key, spec.end) >= 0) {
      return refuse(ERR_EMPTY_WATCHER_RANGE);
    }
    let id = spec.watchId;
    if (id === 0) {
      while (this.#watchers.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    } else if (this.#watchers.has(id)) {
      return refuse(ERR_DUPLICATE_WATCH_ID);
    }
    const start = spec.startRevision === 0 ? rev + 1 : spec.startRevision;
    // A watch from the current revision or later waits for the feed.
    const next = start > rev ? Math.max(start, this.#hub.feedRevision + 1) : start;
    const w = new Watcher(id, this, spec, next);
    this.#watchers.set(id, w);
    this.push({ header: this.header(rev), watch_id: id, created: true });
    this.#hub.add(w);
  }

  /**
   * Refuse a create request the caller may not make (etcd's watch server
   * when isWatchPermitted fails): `created` + `canceled` with `reason` and
   * watch_id -1, as etcd 3.4 answers; the stream goes on.
   */
  deny(reason: string): void {
    if (this.#closed) return;
    this.push({
      header: this.header(this.#hub.currentRevision()),
      watch_id: -1,
      created: true,
      canceled: true,
      cancel_reason: reason,
    });
  }

  /** Cancel a watch: answers `canceled`; an unknown ID gets no answer, as in etcd. */
  cancel(watchId: number): void {
    const w = this.#watchers.get(watchId);
    if (w === undefined || this.#closed) return;
    this.#watchers.delete(watchId);
    this.#hub.remove(w);
    this.push({
      header: this.header(this.#hub.currentRevision()),
      watch_id: watchId,
      canceled: true,
    });
    this.settled();
  }

  /**
   * A progress request: one response with watch_id -1 at the feed revision,
   * once every watcher of the stream is caught up (so every event up to
   * that revision was sent to each; etcd 3.5 defers it the same way).
   */
  progress(): void {
    if (this.#closed) return;
    this.#progressPending = true;
    this.settled();
  }

  /** A watcher of this stream caught up or went: answer a deferred progress request. */
  settled(): void {
    if (!this.#progressPending) return;
    for (const w of this.#watchers.values()) if (!w.synced) return;
    this.#progressPending = false;
    this.push({ header: this.header(this.#hub.feedRevision), watch_id: -1 });
  }

  /**
   * Queue a response for `w`'s events (one response, or fragments when the
   * watcher asked for them and it is `maxRequestBytes` or larger).
   *
   * @returns false, queuing nothing, when the stream has no room.
   */
  deliver(w: Watcher, events: Event[], revision: number): boolean {
    if (!this.hasRoom()) return false;
    const evs = w.spec.prevKv
      ? events.map((ev) =>
        ev.prev_kv !== undefined || ev.type === "PUT" && ev.kv.version === 1
          ? ev
          : withPrev(ev, this.#hub.previous(ev))
      )
      : events.map(withoutPrev);
    const response: WatchResponse = { header: this.header(revision), watch_id: w.id, events: evs };
    w.idle = false;
    if (w.spec.fragment && evs.length > 1) {
      for (const part of fragments(response, this.#options.maxRequestBytes)) this.push(part);
    } else {
      this.push(response);
    }
    return true;
  }

  /** `w` was removed because its next revision is compacted: tell the client. */
  compacted(w: Watcher, compactRevision: number): void {
    this.#watchers.delete(w.id);
    this.push({
      header: this.header(0),
      watch_id: w.id,
      canceled: true,
      compact_revision: compactRevision,
    });
  }

  /** Queue a response for the transport. */
  push(response: WatchResponse): void {
    if (this.#closed) return;
    this.#queue.push(response);
    this.#queuedEvents += response.events?.length ?? 0;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Whether the transport should wait before handing over more requests:
   * the client is not reading its responses.
   */
  backlogged(): boolean {
    return this.#queue.length >= MAX_WATCH_STREAM_RESPONSES;
  }

  /** Resolves once the stream is no longer {@linkcode backlogged} (or is closed). */
  room(): Promise<void> {
    if (!this.backlogged() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  #wakeRoom(): void {
    if (this.#roomWaiters.length === 0) return;
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
  }

  /**
   * The next response, waiting for one; undefined once the stream is
   * closed. One caller at a time.
   */
  async next(): Promise<WatchResponse | undefined> {
    while (this.#queue.length === 0) {
      if (this.#closed) return undefined;
      invariant(this.#wake === undefined, "one reader at a time takes a stream's responses");
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.take();
  }

  /** The next response if one is queued (undefined otherwise). */
  take(): WatchResponse | undefined {
    const response = this.#queue.shift();
    if (response === undefined) return undefined;
    this.#queuedEvents -= response.events?.length ?? 0;
    // Room again: watchers of this stream that fell behind can catch up.
    if (this.#queue.length === 0 || this.hasRoom()) this.#hub.requestSync();
    if (!this.backlogged()) this.#wakeRoom();
    return response;
  }

  /** End the stream: its watchers go, `next` answers undefined once drained. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers.values()) this.#hub.remove(w);
    this.#watchers.clear();
    this.#hub.detach(this);
    this.#queue = [];
    this.#queuedEvents = 0;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    this.#wakeRoom();
  }
}

function withPrev(ev: Event, prev: KeyValue | undefined): Event {
  return prev === undefined ? ev : { type: ev.type, kv: ev.kv, prev_kv: prev };
}

/**
 * etcd's `sendFragments`: a response under `maxRequestBytes`, or with one
 * event, goes whole; a larger one is cut into pieces of events each under
 * the limit (a piece holds at least one event), all marked `fragment`
 * except the last.
 */
export function fragments(response: WatchResponse, maxRequestBytes: number): WatchResponse[] {
  const events = response.events ?? [];
  if (events.length < 2 || protoSize("WatchResponse", response) < maxRequestBytes) {
    return [response];
  }
  const parts: WatchResponse[] = [];
  let i = 0;
  while (i < events.length) {
    const part: WatchResponse = { ...response, events: [], fragment: true };
    const empty = protoSize("WatchResponse", part);
    let size = empty;
    for (; i < events.length; i++) {
      const evSize = protoSize("WatchResponse", { ...part, events: [events[i]] }) - empty;
      if (part.events!.length > 0 && size + evSize >= maxRequestBytes) break;
      part.events!.push(events[i]);
      size += evSize;
    }
    if (i === events.length) part.fragment = false;
    parts.push(part);
  }
  return parts;
}
