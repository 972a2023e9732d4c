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
import { encodeRequest, type InternalRequest } from "./raftnode/request.ts";
import { EtcdServer, type Proposer } from "./etcdserver/mod.ts";
import { createGateway } from "./gateway/mod.ts";
import { log } from "./log.ts";
import type { ApplyResult } from "./raftnode/applier.ts";
import { ReadFence } from "./raftnode/read_fence.ts";
import { type InitMessage, pack, resultFromWire, unpack, type WireResult } from "./wire.ts";

const port = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

class RemoteProposer implements Proposer {
  term: number;
  #fence: ReadFence;
  #next = 1;
  #waiting = new Map<number, (reply: { result: WireResult }) => void>();

  constructor(term: number, fence: ReadFence) {
    this.term = term;
    this.#fence = fence;
  }

  get appliedIndex(): number {
    return this.#fence.visibleIndex;
  }

  linearize(): Promise<void> | undefined {
    return this.#fence.wait();
  }

  /** The main thread made more entries visible. */
  applied(): void {
    this.#fence.wake();
  }

  /** Calls gathered in this event-loop turn, sent as one message. */
  #outbox: { type: string; id: number; payload: Uint8Array }[] = [];

  #call(type: string, bytes: Uint8Array): Promise<{ result: WireResult }> {
    if (this.#waiting.size >= MAX_WORKER_INFLIGHT) return Promise.reject(Errors.TooManyRequests());
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<
      { result: WireResult }
    >();
    this.#waiting.set(id, resolve);
    if (this.#outbox.length === 0) setImmediate(() => this.#flush());
    this.#outbox.push({ type, id, payload: bytes });
    return promise;
  }

  /**
   * Send the gathered calls as ONE msgpack buffer (one transfer: cloning an
   * object per call costs several times more on the receiving thread).
   */
  #flush(): void {
    const bytes = pack(this.#outbox);
    this.#outbox = [];
    port.postMessage({ type: "batch", bytes }, [bytes.buffer as ArrayBuffer]);
  }

  async propose(request: InternalRequest): Promise<ApplyResult> {
    // The log encoding travels as is and becomes the log entry.
    const reply = await this.#call("propose", new Uint8Array(encodeRequest(request)));
    return resultFromWire(reply.result);
  }

  async compacted(): Promise<void> {
    await this.#call("compacted", new Uint8Array(0));
  }

  /** Replies from the main thread, one msgpack buffer for many calls. */
  answer(bytes: Uint8Array): void {
    const replies = unpack<{ id: number; result: WireResult }[]>(bytes);
    for (const reply of replies) {
      const resolve = this.#waiting.get(reply.id);
      if (resolve === undefined) continue;
      this.#waiting.delete(reply.id);
      resolve(reply);
    }
  }
}

let proposer: RemoteProposer | undefined;
let server: Deno.HttpServer<Deno.NetAddr> | undefined;

port.onmessage = async (e: MessageEvent) => {
  const msg = e.data;
  if (msg.type === "init") {
    const init = unpack<InitMessage>(msg.payload);
    log.level = init.logLevel;
    const backend = openBackend(init.kvPath);
    proposer = new RemoteProposer(
      init.term,
      new ReadFence(msg.fence, () => port.postMessage({ type: "read-waiting" })),
    );
    const service = new EtcdServer(backend, proposer, {
      clusterId: init.clusterId,
      memberId: init.memberId,
      maxTxnOps: init.maxTxnOps,
      maxRequestBytes: init.maxRequestBytes,
      refreshReads: true,
    });
    const app = createGateway(service, {
      maxRequestBytes: init.maxRequestBytes,
      cairnVersion: init.cairnVersion,
    });
    try {
      server = Deno.serve({
        hostname: init.hostname,
        port: init.port,
        reusePort: true,
        onListen: () => {},
      }, app.fetch);
      port.postMessage({ type: "listening", port: server.addr.port });
    } catch (err) {
      port.postMessage({
        type: "failed",
        message: String((err as Error)?.message ?? err),
        addrInUse: err instanceof Deno.errors.AddrInUse,
      });
    }
  } else if (msg.type === "applied") {
    proposer?.applied();
  } else if (msg.type === "replies") {
    proposer?.answer(msg.bytes);
  } else if (msg.type === "stop") {
    await server?.shutdown();
    port.postMessage({ type: "stopped" });
  }
};
