/**
 * HTTP worker threads of a member (see server/http_worker.ts): each listens
 * on the client URL with SO_REUSEPORT and serves the gateway; the main
 * thread answers their forwarded proposals from the member's {@linkcode RaftNode}.
 * So HTTP parsing, JSON and reads use every core while one thread keeps the
 * log and apply loop.
 *
 * Only this member may join the port. Before its workers start on a URL, the
 * main thread binds the address without SO_REUSEPORT and releases it
 * ({@linkcode probeAddress}: this fails while any socket is bound there, so
 * a second cairn exits with etcd's `bind: address already in use` instead of
 * splitting clients with the first), and in the same synchronous turn binds
 * a SO_REUSEPORT guard listener that holds the port until the workers
 * listen. From then on the guard or the workers hold the port, and any later
 * probe fails; the only window is the microseconds between the probe's close
 * and the guard's bind, within one turn of this thread. The guard never
 * accepts and is closed (synchronously) as soon as the URL's first worker
 * listens: a connection the kernel queued on it until then is reset (Linux
 * does not move it to another listener), and none can reach it afterwards,
 * so a client that got an answer from the member (its first worker) is
 * never reset by the guard while the other workers start. (A guard that served requests through Deno.serve stayed in the
 * port's group for a while after its shutdown resolved, and reset clients
 * of the running member.)
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { RaftNode, StoreReaders } from "./raftnode/node.ts";
import { invariant } from "../core/invariant.ts";
import type { Event } from "../core/api/types.ts";
import {
  DEFRAG_SUSPEND_TIMEOUT_MS,
  MAX_FEED_BACKLOG_BYTES,
  MAX_PENDING_SCRAPES,
  METRICS_SCRAPE_TIMEOUT_MS,
} from "../core/limits.ts";
import { mergeMetrics, metrics, type MetricsSnapshot } from "./metrics.ts";
import { log } from "./log.ts";
import type { ClientTls } from "./tls.ts";
import { AddressInUseError, listenError, probeAddress, socketHostname } from "./listen.ts";
import {
  errorToWire,
  type FromWorker,
  type InitMessage,
  pack,
  resultToWire,
  type ToWorker,
  unknownMessage,
  unpack,
  type WireResult,
  type WorkerCall,
  type WorkerReply,
} from "./wire.ts";

/** Post a typed message to a worker. */
function send(worker: Worker, msg: ToWorker, transfer: Transferable[] = []): void {
  worker.postMessage(msg, transfer);
}

/** What the workers need to know about the member. */
export interface WorkerSetup {
  /** The member's log and apply loop, which answers the workers' proposals. */
  node: RaftNode;
  /** The state machine's LMDB directory, which the workers read. */
  kvPath: string;
  /** The cluster's ID, for response headers. */
  clusterId: bigint;
  /** This member's ID, for response headers. */
  memberId: bigint;
  /** Ops or compares per txn level, at most (--max-txn-ops). */
  maxTxnOps: number;
  /** Largest request accepted, in bytes (--max-request-bytes). */
  maxRequestBytes: number;
  /** --quota-backend-bytes (0: the default quota; negative: none). */
  quotaBackendBytes: number;
  /** --bcrypt-cost. Default 10. */
  bcryptCost?: number;
  /** cairn's version, reported by `GET /version`. */
  cairnVersion: string;
  /** Milliseconds between progress notifications to idle watchers that ask for them. */
  progressNotifyIntervalMs?: number;
  /** Where Maintenance.Snapshot writes its temporary copy. */
  snapshotDir: string;
  /** ms a read may take before it is logged as slow (--experimental-warning-apply-duration). */
  warningApplyDurationMs?: number;
}

/** A client URL and what it serves (see server/client_port.ts). */
export interface ClientListener {
  /** The URL to listen on. */
  url: URL;
  /** Serve gRPC there. */
  grpc: boolean;
  /** Serve the JSON gateway there. */
  http: boolean;
  /** Serve TLS with these settings (an https URL); none: plain TCP. */
  tls?: ClientTls;
}

/**
 * The applied-change feed to the workers: every event-loop turn in which
 * batches became visible, ONE `applied` message per worker, carrying the
 * changes of those batches packed once (each worker gets its own copy of
 * the bytes) to the workers that have watchers; the others get only the
 * revision (a worker's first watcher catches up from history until the
 * worker's `watching` message arrives). A worker that has not taken
 * {@linkcode MAX_FEED_BACKLOG_BYTES} of it yet gets only the revision too,
 * and its watchers catch up from history.
 */
class Feed {
  readonly #targets = new Map<Worker, { backlog: number; watching: boolean }>();
  #events: Event[] = [];
  #revision = 0;
  /** The store was replaced up to this revision: every worker's watchers skip to it. */
  #skipTo: number | undefined;
  #scheduled = false;
  readonly #unsubscribe: (() => void)[];

  constructor(node: RaftNode) {
    this.#unsubscribe = [
      node.onVisible(() => this.#schedule()),
      node.onApplied((events, revision) => {
        for (const ev of events) this.#events.push(ev);
        this.#revision = revision;
        this.#schedule();
      }),
      node.onRestored((revision) => {
        this.#events = [];
        this.#revision = revision;
        this.#skipTo = revision;
        this.#schedule();
      }),
    ];
  }

  add(worker: Worker): void {
    this.#targets.set(worker, { backlog: 0, watching: false });
  }

  /** The worker took `bytes` of its feed. */
  fed(worker: Worker, bytes: number): void {
    const target = this.#targets.get(worker);
    if (target !== undefined) target.backlog = Math.max(0, target.backlog - bytes);
  }

  /** The worker got its first watcher, or lost its last. */
  watching(worker: Worker, watching: boolean): void {
    const target = this.#targets.get(worker);
    if (target !== undefined) target.watching = watching;
  }

  remove(worker: Worker): void {
    this.#targets.delete(worker);
  }

  stop(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#targets.clear();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#skipTo !== undefined) {
      const revision = this.#skipTo;
      this.#skipTo = undefined;
      for (const worker of this.#targets.keys()) send(worker, { type: "applied", revision });
    }
    const events = this.#events;
    this.#events = [];
    const revision = this.#revision;
    let watched = false;
    for (const target of this.#targets.values()) watched ||= target.watching;
    const feed = events.length > 0 && watched ? pack({ events, revision }) : undefined;
    for (const [worker, target] of this.#targets) {
      if (events.length === 0) {
        send(worker, { type: "applied" });
      } else if (
        feed === undefined || !target.watching ||
        target.backlog + feed.length > MAX_FEED_BACKLOG_BYTES
      ) {
        send(worker, { type: "applied", revision });
      } else {
        target.backlog += feed.length;
        const copy = feed.slice();
        send(worker, { type: "applied", feed: copy }, [copy.buffer as ArrayBuffer]);
      }
    }
  }
}

/**
 * A scrape's view of the threads: asks workers for their metric values and
 * waits for each at most METRICS_SCRAPE_TIMEOUT_MS (a worker that does not
 * answer in time is left out of that scrape); at most MAX_PENDING_SCRAPES
 * questions wait at once.
 */
class MetricsGather {
  readonly workers: Worker[] = [];
  #next = 1;
  readonly #pending = new Map<number, (snapshot: MetricsSnapshot | undefined) => void>();

  /**
   * The main thread's values and those of every worker but `except` (the
   * one whose client asked: it adds its own).
   *
   * @throws {Error} when MAX_PENDING_SCRAPES questions already wait.
   */
  async gather(except?: Worker): Promise<MetricsSnapshot[]> {
    const asked = this.workers.filter((w) => w !== except);
    if (this.#pending.size + asked.length > MAX_PENDING_SCRAPES) {
      throw new Error("too many metrics scrapes in progress");
    }
    const answers = await Promise.all([metrics.snapshot(), ...asked.map((w) => this.#ask(w))]);
    return answers.filter((a): a is MetricsSnapshot => a !== undefined);
  }

  #ask(worker: Worker): Promise<MetricsSnapshot | undefined> {
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<MetricsSnapshot | undefined>();
    const timer = setTimeout(() => {
      this.#pending.delete(id);
      log.warn("an HTTP worker did not send its metrics in time", {
        timeoutMs: METRICS_SCRAPE_TIMEOUT_MS,
      });
      resolve(undefined);
    }, METRICS_SCRAPE_TIMEOUT_MS);
    this.#pending.set(id, (snapshot) => {
      clearTimeout(timer);
      this.#pending.delete(id);
      resolve(snapshot);
    });
    send(worker, { type: "metrics", id });
    return promise;
  }

  /** A worker's answer. */
  answer(id: number, snapshot: MetricsSnapshot): void {
    this.#pending.get(id)?.(snapshot);
  }
}

/** Running HTTP workers. */
export interface HttpWorkers {
  /** The URLs listened on. */
  clientUrls: string[];
  /** The metrics of the main thread and every worker, merged, in Prometheus' text format. */
  scrape(): Promise<string>;
  /** Stop every listener (open requests finish), then end the threads. */
  stop(): Promise<void>;
}

/**
 * Start `count` workers on each URL, after proving each address free (see
 * the module comment). A URL with port 0 gets one port, chosen by the kernel,
 * shared by its workers.
 *
 * @throws {AddressInUseError} when an address is taken.
 * @throws {Error} when a worker cannot start or listen.
 */
export async function startHttpWorkers(
  setup: WorkerSetup,
  listeners: ClientListener[],
  count: number,
): Promise<HttpWorkers> {
  const gather = new MetricsGather();
  const workers = gather.workers;
  const clientUrls: string[] = [];
  const feed = new Feed(setup.node);
  // Every worker is started (or the start failed) when this settles.
  const started = Promise.withResolvers<void>();
  started.promise.catch(() => {});
  const unregisterReaders = setup.node.addStoreReaders(workerReaders(workers, started.promise));
  const stop = async () => {
    unregisterReaders();
    await Promise.all(workers.map((w) =>
      new Promise<void>((resolve) => {
        w.addEventListener("message", (e) => {
          if ((e as MessageEvent<FromWorker>).data?.type === "stopped") resolve();
        });
        send(w, { type: "stop" });
      })
    ));
    feed.stop();
    for (const w of workers) w.terminate();
  };
  const guards: Deno.Listener[] = [];
  const closeGuards = () => {
    for (const g of guards.splice(0)) g.close();
  };
  try {
    for (const listener of listeners) {
      const url = listener.url;
      const hostname = socketHostname(url);
      const port = probeAddress(url);
      let guard: Deno.Listener;
      try {
        guard = Deno.listen({ hostname, port, reusePort: true });
        guards.push(guard);
      } catch (err) {
        throw listenError(err, url.hostname, port);
      }
      for (let i = 0; i < count; i++) {
        workers.push(await startWorker(setup, feed, gather, listener, port));
        // The port is held by a worker now. The guard never accepts, yet the
        // kernel hands it a share of the connections (SO_REUSEPORT): those
        // would be reset when it closes, so it closes at once.
        if (i === 0) {
          guard.close();
          guards.splice(guards.indexOf(guard), 1);
        }
      }
      clientUrls.push(`${url.protocol}//${url.hostname}:${port}`);
    }
  } catch (err) {
    started.reject(err);
    closeGuards();
    await stop();
    throw err;
  }
  started.resolve();
  closeGuards();
  return { clientUrls, stop, scrape: async () => mergeMetrics(await gather.gather()) };
}

/**
 * The workers as the store's readers: to suspend them, each gets a
 * `suspend` message with a shared gate, closes the store and answers, then
 * blocks (Atomics.wait: no request, timer or message of that thread runs)
 * until the gate opens; resuming opens it. Workers that do not answer
 * within DEFRAG_SUSPEND_TIMEOUT_MS fail the suspension (the gate opens).
 * They are ready, and suspended, only once all of them have started
 * (`started`): the first listens, and serves, before the others open the
 * store.
 */
function workerReaders(workers: Worker[], started: Promise<void>): StoreReaders {
  let gate: Int32Array | undefined;
  const open = () => {
    if (gate === undefined) return;
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    gate = undefined;
  };
  return {
    ready: () => started,
    async suspend() {
      await started;
      invariant(gate === undefined, "the workers are suspended once at a time");
      const shared = new SharedArrayBuffer(4);
      gate = new Int32Array(shared);
      const answers = workers.map((w) =>
        new Promise<void>((resolve, reject) => {
          const onMessage = (e: MessageEvent<FromWorker>) => {
            const msg = e.data;
            if (msg?.type !== "suspended") return;
            w.removeEventListener("message", onMessage);
            if (msg.error === undefined) resolve();
            else reject(new Error(`an HTTP worker could not close the store: ${msg.error}`));
          };
          w.addEventListener("message", onMessage);
          send(w, { type: "suspend", gate: shared });
        })
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the HTTP workers did not close the store in time")),
          DEFRAG_SUSPEND_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([Promise.all(answers), late]);
      } catch (err) {
        open();
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
    resume: open,
  };
}

async function startWorker(
  setup: WorkerSetup,
  feed: Feed,
  gather: MetricsGather,
  listener: ClientListener,
  port: number,
): Promise<Worker> {
  const host = listener.url.hostname;
  const hostname = socketHostname(listener.url);
  const worker = new Worker(new URL("./http_worker.ts", import.meta.url), { type: "module" });
  const node = setup.node;
  // Replies gathered in this event-loop turn go back as one msgpack buffer.
  let outbox: WorkerReply[] = [];
  const flush = () => {
    const bytes = pack(outbox);
    outbox = [];
    send(worker, { type: "replies", bytes }, [bytes.buffer as ArrayBuffer]);
  };
  const reply = (id: number, result: WireResult) => {
    if (outbox.length === 0) setImmediate(flush);
    outbox.push({ id, result });
  };
  // From now on the worker gets every batch made visible (its watchers'
  // feed, and the wake-up of its waiting reads); it reads the store only
  // after this, so it misses none.
  feed.add(worker);
  const { promise: listening, resolve, reject } = Promise.withResolvers<void>();
  const handle = (call: WorkerCall) => {
    switch (call.type) {
      case "propose":
        node.proposeEncoded(call.payload).then(
          (result) => reply(call.id, resultToWire(result)),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "compacted":
        node.compacted().then(() => reply(call.id, { ok: null }));
        return;
      case "lease_renew":
        node.renewLease(BigInt(call.lease)).then(
          (ttl) => reply(call.id, { ok: ttl ?? null }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "lease_ttl":
        node.leaseTimeToLive(BigInt(call.lease), call.keys).then(
          (ttl) => reply(call.id, { ok: ttl ?? null }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "lease_ids":
        reply(call.id, { ok: node.leases.ids() });
        return;
      case "read_index":
        node.readIndex().then(
          (index) => reply(call.id, { ok: index }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "cluster":
        node.cluster(call.call).then(
          (result) => reply(call.id, { ok: result }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "token_assign":
        node.assignToken(call.info).then(
          (token) => reply(call.id, { ok: token }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "token_info":
        node.tokenInfo(call.token).then(
          (info) => reply(call.id, { ok: info ?? null }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      case "metrics":
        gather.gather(worker).then(
          (snapshots) => reply(call.id, { ok: snapshots }),
          (err) => reply(call.id, { error: errorToWire(err) }),
        );
        return;
      default:
        unknownMessage(call);
    }
  };
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    const msg = e.data;
    switch (msg.type) {
      case "calls":
        for (const call of unpack<WorkerCall[]>(msg.bytes)) handle(call);
        return;
      case "read-waiting":
        node.readWaiting();
        return;
      case "fed":
        feed.fed(worker, msg.bytes);
        return;
      case "watching":
        feed.watching(worker, msg.watching);
        return;
      case "listening":
        resolve();
        return;
      case "metrics":
        gather.answer(msg.id, msg.snapshot);
        return;
      case "failed":
        reject(
          msg.addrInUse
            ? new AddressInUseError(host, port)
            : new Error(`Cannot listen on ${host}:${port}: ${msg.message}`),
        );
        return;
      case "stopped":
      case "suspended":
        return;
      default:
        unknownMessage(msg);
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    // Before it listens this fails the start; afterwards only the log shows it.
    log.error("HTTP worker failed", { error: e.message, address: `${host}:${port}` });
    reject(new Error(`HTTP worker failed: ${e.message}`));
  };
  const init: InitMessage = {
    type: "init",
    kvPath: setup.kvPath,
    hostname,
    port,
    grpc: listener.grpc,
    http: listener.http,
    tls: listener.tls,
    snapshotDir: setup.snapshotDir,
    clusterId: setup.clusterId,
    memberId: setup.memberId,
    term: node.term,
    maxTxnOps: setup.maxTxnOps,
    maxRequestBytes: setup.maxRequestBytes,
    quotaBackendBytes: setup.quotaBackendBytes,
    bcryptCost: setup.bcryptCost,
    cairnVersion: setup.cairnVersion,
    logLevel: log.level,
    logOutputs: log.outputs === undefined ? undefined : [...log.outputs.outputs],
    warningApplyDurationMs: setup.warningApplyDurationMs,
    progressNotifyIntervalMs: setup.progressNotifyIntervalMs,
  };
  const bytes = pack(init);
  // The fence's shared memory travels beside the msgpack payload.
  send(worker, {
    type: "init",
    payload: bytes,
    fence: node.fenceBuffer,
    logLock: log.outputs?.lock,
  }, [
    bytes.buffer as ArrayBuffer,
  ]);
  try {
    await listening;
  } catch (err) {
    feed.remove(worker);
    worker.terminate();
    throw err;
  }
  worker.addEventListener("message", (e) => {
    if ((e as MessageEvent<FromWorker>).data?.type === "stopped") feed.remove(worker);
  });
  return worker;
}
