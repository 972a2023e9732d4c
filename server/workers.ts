/**
 * HTTP worker threads of a member (see server/http_worker.ts): each listens
 * on the client URL with SO_REUSEPORT and serves the gateway; the main
 * thread answers their forwarded proposals from the member's {@linkcode Node}.
 * So HTTP parsing, JSON and reads use every core while one thread keeps the
 * log and apply loop.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { decodeRequest } from "./raftnode/request.ts";
import type { RaftNode } from "./raftnode/node.ts";
import { errorToWire, type InitMessage, pack, resultToWire, unpack } from "./wire.ts";

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
  /** cairn's version, reported by `GET /version`. */
  cairnVersion: string;
}

/** Running HTTP workers. */
export interface HttpWorkers {
  /** The URLs listened on. */
  clientUrls: string[];
  /** Stop every listener (open requests finish), then end the threads. */
  stop(): Promise<void>;
}

function freePort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Start `count` workers on each URL.
 *
 * @throws {Error} when a worker cannot listen (the port is taken).
 */
export async function startHttpWorkers(
  setup: WorkerSetup,
  urls: URL[],
  count: number,
): Promise<HttpWorkers> {
  const workers: Worker[] = [];
  const clientUrls: string[] = [];
  const stop = async () => {
    await Promise.all(workers.map((w) =>
      new Promise<void>((resolve) => {
        w.addEventListener("message", (e) => {
          if ((e as MessageEvent).data?.type === "stopped") resolve();
        });
        w.postMessage({ type: "stop" });
      })
    ));
    for (const w of workers) w.terminate();
  };
  try {
    for (const url of urls) {
      const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
      // With port 0 every worker would get its own port: choose one for all.
      let port = Number(url.port || 80);
      if (port === 0) port = freePort(hostname);
      for (let i = 0; i < count; i++) {
        workers.push(await startWorker(setup, hostname, port));
      }
      clientUrls.push(`http://${url.hostname}:${port}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { clientUrls, stop };
}

async function startWorker(setup: WorkerSetup, hostname: string, port: number): Promise<Worker> {
  const worker = new Worker(new URL("./http_worker.ts", import.meta.url), { type: "module" });
  const node = setup.node;
  // Replies gathered in this event-loop turn go back as one msgpack buffer.
  let outbox: { id: number; result: unknown }[] = [];
  const flush = () => {
    const bytes = pack(outbox);
    outbox = [];
    worker.postMessage({ type: "replies", bytes }, [bytes.buffer as ArrayBuffer]);
  };
  const reply = (id: number, result: unknown) => {
    if (outbox.length === 0) setImmediate(flush);
    outbox.push({ id, result });
  };
  // Wake the worker's waiting linearizable reads once per event-loop turn
  // in which batches became visible.
  let wakeScheduled = false;
  const unsubscribe = node.onVisible(() => {
    if (wakeScheduled) return;
    wakeScheduled = true;
    setImmediate(() => {
      wakeScheduled = false;
      worker.postMessage({ type: "applied" });
    });
  });
  const { promise: listening, resolve, reject } = Promise.withResolvers<void>();
  const handle = (item: { type: string; id: number; payload: Uint8Array }) => {
    if (item.type === "propose") {
      node.propose(decodeRequest(item.payload), item.payload).then(
        (result) => reply(item.id, resultToWire(result)),
        (err) => reply(item.id, { error: errorToWire(err) }),
      );
    } else if (item.type === "compacted") {
      node.compacted().then(() => reply(item.id, { ok: null }));
    }
  };
  worker.onmessage = (e: MessageEvent) => {
    const msg = e.data;
    if (msg.type === "batch") {
      for (const item of unpack<{ type: string; id: number; payload: Uint8Array }[]>(msg.bytes)) {
        handle(item);
      }
    } else if (msg.type === "listening") {
      resolve();
    } else if (msg.type === "failed") {
      reject(new Error(`cairn: cannot listen on ${hostname}:${port}: ${msg.message}`));
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    reject(new Error(`cairn: HTTP worker failed: ${e.message}`));
  };
  const init: InitMessage = {
    type: "init",
    kvPath: setup.kvPath,
    hostname,
    port,
    clusterId: setup.clusterId,
    memberId: setup.memberId,
    term: node.term,
    maxTxnOps: setup.maxTxnOps,
    maxRequestBytes: setup.maxRequestBytes,
    cairnVersion: setup.cairnVersion,
  };
  const bytes = pack(init);
  // The fence's shared memory travels beside the msgpack payload.
  worker.postMessage({ type: "init", payload: bytes, fence: node.fenceBuffer }, [
    bytes.buffer as ArrayBuffer,
  ]);
  try {
    await listening;
  } catch (err) {
    unsubscribe();
    worker.terminate();
    throw err;
  }
  worker.addEventListener("message", (e) => {
    if ((e as MessageEvent).data?.type === "stopped") unsubscribe();
  });
  return worker;
}
