/**
 * An HTTP worker thread: serves the JSON gateway on the member's client port
 * (SO_REUSEPORT, so the kernel spreads connections over the workers), runs
 * reads against the store directly (LMDB readers in any thread see every
 * commit), and forwards writes to the main thread, which owns the log and
 * apply loop. Started by server/workers.ts.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { Errors } from "../core/errors.ts";
import { MAX_WORKER_INFLIGHT } from "../core/limits.ts";
import { openBackend } from "../native/lmdb.ts";
import type { Backend } from "../core/backend.ts";
import { encodeRequest, type InternalRequest } from "./raftnode/request.ts";
import { EtcdServer, type Proposer } from "./etcdserver/mod.ts";
import { createGateway } from "./gateway/mod.ts";
import { createGrpcTransport, type GrpcTransport } from "./grpc/mod.ts";
import { type ClientPort, listenClientPort } from "./client_port.ts";
import { AddressInUseError } from "./listen.ts";
import { log, LogOutputs } from "./log.ts";
import { mergeMetrics, metrics, type MetricsSnapshot } from "./metrics.ts";
import type { ApplyResult } from "./raftnode/applier.ts";
import type { LeaseTtl } from "./raftnode/lease_keeper.ts";
import type { TokenInfo } from "../core/auth/simple_token.ts";
import { ReadFence } from "./raftnode/read_fence.ts";
import type { ClusterCall, ClusterResult } from "./cluster/manager.ts";
import {
  type FeedBatch,
  type FromWorker,
  type InitMessage,
  pack,
  resultFromWire,
  type ToWorker,
  unknownMessage,
  unpack,
  type WireResult,
  type WorkerCall,
  type WorkerReply,
} from "./wire.ts";

const port = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

class RemoteProposer implements Proposer {
  #fence: ReadFence;
  #next = 1;
  #waiting = new Map<number, (result: WireResult) => void>();

  constructor(fence: ReadFence) {
    this.#fence = fence;
  }

  get term(): number {
    return this.#fence.term;
  }

  get appliedIndex(): number {
    return this.#fence.visibleIndex;
  }

  linearize(): Promise<void> | undefined {
    return this.#fence.wait();
  }

  linearizeAuth(): Promise<void> | undefined {
    return this.#fence.waitForAuth();
  }

  get authChangeIndex(): number {
    return this.#fence.authChangeIndex;
  }

  /** A read_index call not yet sent to the main thread: reads until it goes share it. */
  #readIndex: Promise<number> | undefined;

  linearizeRead(): Promise<void> | undefined {
    if (!this.#fence.clustered) return this.#fence.wait();
    // Every read that joins it arrived before the ReadIndex request is made.
    let pending = this.#readIndex;
    if (pending === undefined) {
      const p = this.#ok(this.#call((id) => ({ type: "read_index", id }))).then(Number);
      p.catch(() => {
        if (this.#readIndex === p) this.#readIndex = undefined;
      });
      pending = this.#readIndex = p;
    }
    return pending.then((index) => this.#fence.waitFor(index));
  }

  async cluster(call: ClusterCall): Promise<ClusterResult> {
    return (await this.#ok(this.#call((id) => ({ type: "cluster", id, call })))) as ClusterResult;
  }

  /** The main thread made more entries visible. */
  applied(): void {
    this.#fence.wake();
  }

  /** Calls gathered in this event-loop turn, sent as one message. */
  #outbox: WorkerCall[] = [];

  #call(call: (id: number) => WorkerCall): Promise<WireResult> {
    if (this.#waiting.size >= MAX_WORKER_INFLIGHT) return Promise.reject(Errors.TooManyRequests());
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<WireResult>();
    this.#waiting.set(id, resolve);
    if (this.#outbox.length === 0) setImmediate(() => this.#flush());
    this.#outbox.push(call(id));
    return promise;
  }

  /**
   * Send the gathered calls as ONE msgpack buffer (one transfer: cloning an
   * object per call costs several times more on the receiving thread).
   */
  #flush(): void {
    // Reads from here on need a ReadIndex request made after them.
    this.#readIndex = undefined;
    const bytes = pack(this.#outbox);
    this.#outbox = [];
    port.postMessage({ type: "calls", bytes }, [bytes.buffer as ArrayBuffer]);
  }

  async propose(request: InternalRequest): Promise<ApplyResult> {
    // The log encoding travels as is and becomes the log entry.
    const payload = new Uint8Array(encodeRequest(request));
    return resultFromWire(await this.#call((id) => ({ type: "propose", id, payload })));
  }

  async compacted(): Promise<void> {
    await this.#call((id) => ({ type: "compacted", id }));
  }

  async renewLease(lease: bigint): Promise<number | undefined> {
    return (await this.#ok(this.#call((id) => ({ type: "lease_renew", id, lease })))) as
      | number
      | undefined;
  }

  async leaseTimeToLive(lease: bigint, keys: boolean): Promise<LeaseTtl | undefined> {
    return (await this.#ok(this.#call((id) => ({ type: "lease_ttl", id, lease, keys })))) as
      | LeaseTtl
      | undefined;
  }

  /** The metric values of the main thread and the other workers (for a scrape). */
  async metricsOfOthers(): Promise<MetricsSnapshot[]> {
    return (await this.#ok(this.#call((id) => ({ type: "metrics", id })))) as MetricsSnapshot[];
  }

  async assignToken(info: TokenInfo): Promise<string> {
    return (await this.#ok(this.#call((id) => ({ type: "token_assign", id, info })))) as string;
  }

  async tokenInfo(token: string): Promise<TokenInfo | undefined> {
    return (await this.#ok(this.#call((id) => ({ type: "token_info", id, token })))) as
      | TokenInfo
      | undefined;
  }

  async leaseIds(): Promise<bigint[]> {
    // msgpack may bring small IDs back as numbers.
    const ids = (await this.#ok(this.#call((id) => ({ type: "lease_ids", id })))) as unknown[];
    return ids.map((x) => BigInt(x as bigint));
  }

  /** The value of a call's reply (null becomes undefined), or its error thrown. */
  async #ok(reply: Promise<WireResult>): Promise<unknown> {
    const result = resultFromWire(await reply);
    if ("error" in result) throw result.error;
    return result.ok ?? undefined;
  }

  /** Replies from the main thread, one msgpack buffer for many calls. */
  answer(bytes: Uint8Array): void {
    for (const reply of unpack<WorkerReply[]>(bytes)) {
      const resolve = this.#waiting.get(reply.id);
      if (resolve === undefined) continue;
      this.#waiting.delete(reply.id);
      resolve(reply.result);
    }
  }
}

let proposer: RemoteProposer | undefined;
let service: EtcdServer | undefined;
let server: ClientPort | undefined;
let grpcTransport: GrpcTransport | undefined;

port.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case "init":
      await init(unpack<InitMessage>(msg.payload), msg.fence, msg.logLock);
      return;
    case "applied":
      proposer?.applied();
      if (msg.feed !== undefined) {
        const batch = unpack<FeedBatch>(msg.feed);
        service?.watch.notify(batch.events, batch.revision);
        port.postMessage({ type: "fed", bytes: msg.feed.length });
      } else if (msg.revision !== undefined) {
        service?.watch.skip(msg.revision);
      }
      return;
    case "replies":
      proposer?.answer(msg.bytes);
      return;
    case "suspend":
      await suspend(new Int32Array(msg.gate));
      return;
    case "metrics":
      port.postMessage({ type: "metrics", id: msg.id, snapshot: await metrics.snapshot() });
      return;
    case "stop":
      // Open watch streams end first: the server's shutdown waits for them.
      service?.close();
      grpcTransport?.close();
      await server?.close();
      port.postMessage({ type: "stopped" });
      return;
    default:
      unknownMessage(msg);
  }
};

let backend: Backend | undefined;

/**
 * The store's file is being replaced (a defragmentation): close the store,
 * say so, and hold this thread (no request, timer or message runs) until
 * the main thread opens `gate`; then open the store again.
 */
async function suspend(gate: Int32Array): Promise<void> {
  const store = backend;
  if (store === undefined) {
    port.postMessage({ type: "suspended" });
    return;
  }
  try {
    await store.suspend();
  } catch (err) {
    port.postMessage({
      type: "suspended",
      error: err instanceof Error ? err.message : String(err),
    });
    return;
  }
  port.postMessage({ type: "suspended" });
  Atomics.wait(gate, 0, 0);
  store.resume();
}

/** Open the store, build the service, its gateway and gRPC server, and listen. */
async function init(
  init: InitMessage,
  fence: SharedArrayBuffer,
  logLock: SharedArrayBuffer | undefined,
): Promise<void> {
  log.level = init.logLevel;
  if (init.logOutputs !== undefined) {
    // The main thread opened the same outputs already: this fails only if
    // one changed meanwhile (its permissions), and then the worker logs to stderr.
    try {
      log.useOutputs(LogOutputs.open(init.logOutputs, logLock));
    } catch (err) {
      log.warn("failed to open log outputs; logging to stderr", { error: err });
    }
  }
  backend = openBackend(init.kvPath);
  proposer = new RemoteProposer(
    new ReadFence(fence, () => port.postMessage({ type: "read-waiting" })),
  );
  service = new EtcdServer(backend, proposer, {
    clusterId: init.clusterId,
    memberId: init.memberId,
    maxTxnOps: init.maxTxnOps,
    maxRequestBytes: init.maxRequestBytes,
    quotaBackendBytes: init.quotaBackendBytes,
    bcryptCost: init.bcryptCost,
    refreshReads: true,
    snapshotDir: init.snapshotDir,
    progressNotifyIntervalMs: init.progressNotifyIntervalMs,
    warningApplyDurationMs: init.warningApplyDurationMs,
    onWatching: (watching) => port.postMessage({ type: "watching", watching }),
  });
  const watch = service.watch.hub;
  metrics.bindWatch({ watchers: () => watch.size, streams: () => watch.streams });
  const remote = proposer;
  const app = init.http
    ? createGateway(service, {
      maxRequestBytes: init.maxRequestBytes,
      cairnVersion: init.cairnVersion,
      metrics: async () =>
        mergeMetrics([await metrics.snapshot(), ...await remote.metricsOfOthers()]),
    })
    : undefined;
  grpcTransport = init.grpc
    ? createGrpcTransport(service, { maxRequestBytes: init.maxRequestBytes })
    : undefined;
  try {
    server = await listenClientPort({
      hostname: init.hostname,
      port: init.port,
      reusePort: true,
      grpc: grpcTransport?.injector,
      http: app?.fetch,
      tls: init.tls ?? undefined,
    });
    port.postMessage({ type: "listening", port: server.port });
  } catch (err) {
    port.postMessage({
      type: "failed",
      message: String((err as Error)?.message ?? err),
      addrInUse: err instanceof Deno.errors.AddrInUse || err instanceof AddressInUseError,
    });
  }
}
