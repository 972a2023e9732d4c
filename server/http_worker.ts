/**
 * An HTTP worker thread: serves the JSON gateway on the member's client port
 * (SO_REUSEPORT, so the kernel spreads connections over the workers), runs
 * reads against the store directly (LMDB readers in any thread see every
 * commit), and forwards writes to the main thread, which owns the log and
 * apply loop. Started by server/workers.ts.
 *
 * @module
 */
import { Errors } from "../core/errors.ts";
import { openBackend } from "../native/lmdb.ts";
import type { InternalRequest } from "./entry.ts";
import { EtcdServer, type Proposer } from "./etcd_server.ts";
import { createGateway } from "./gateway/mod.ts";
import type { ApplyResult } from "./node.ts";
import { type InitMessage, pack, resultFromWire, unpack, type WireResult } from "./wire.ts";

/** Proposals waiting for the main thread's answer, at most. */
const MAX_IN_FLIGHT = 20_000;

const port = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

class RemoteProposer implements Proposer {
  term: number;
  appliedIndex: number;
  #next = 1;
  #waiting = new Map<number, (reply: { appliedIndex: number; result: WireResult }) => void>();

  constructor(term: number, appliedIndex: number) {
    this.term = term;
    this.appliedIndex = appliedIndex;
  }

  #call(type: string, payload: unknown): Promise<{ appliedIndex: number; result: WireResult }> {
    if (this.#waiting.size >= MAX_IN_FLIGHT) return Promise.reject(Errors.TooManyRequests());
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<
      { appliedIndex: number; result: WireResult }
    >();
    this.#waiting.set(id, resolve);
    const bytes = pack(payload);
    port.postMessage({ type, id, payload: bytes }, [bytes.buffer as ArrayBuffer]);
    return promise;
  }

  async propose(request: InternalRequest): Promise<ApplyResult> {
    const reply = await this.#call("propose", request);
    this.appliedIndex = Math.max(this.appliedIndex, reply.appliedIndex);
    return resultFromWire(reply.result);
  }

  async compacted(): Promise<void> {
    await this.#call("compacted", null);
  }

  /** A reply from the main thread. */
  answer(id: number, payload: Uint8Array): void {
    const resolve = this.#waiting.get(id);
    if (resolve === undefined) return;
    this.#waiting.delete(id);
    resolve(unpack(payload));
  }
}

let proposer: RemoteProposer | undefined;
let server: Deno.HttpServer<Deno.NetAddr> | undefined;

port.onmessage = async (e: MessageEvent) => {
  const msg = e.data;
  if (msg.type === "init") {
    const init = unpack<InitMessage>(msg.payload);
    const backend = openBackend(init.kvPath);
    proposer = new RemoteProposer(init.term, init.appliedIndex);
    const service = new EtcdServer(backend, proposer, {
      clusterId: init.clusterId,
      memberId: init.memberId,
      maxTxnOps: init.maxTxnOps,
    });
    const app = createGateway(service, {
      maxRequestBytes: init.maxRequestBytes,
      maxTxnOps: init.maxTxnOps,
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
      port.postMessage({ type: "failed", message: String((err as Error)?.message ?? err) });
    }
  } else if (msg.type === "reply") {
    proposer?.answer(msg.id, msg.payload);
  } else if (msg.type === "stop") {
    await server?.shutdown();
    port.postMessage({ type: "stopped" });
  }
};
