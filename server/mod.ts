/**
 * Composition of a cairn member: the LMDB backend, the log and apply loop
 * ({@linkcode Node}), the KV service and the JSON gateway on every client
 * URL.
 *
 * @module
 */
import { createGateway } from "./gateway/mod.ts";
import type { ServerConfig } from "./config.ts";
import type { EtcdServer } from "./etcdserver/mod.ts";
import { clusterId, memberId } from "./ids.ts";
import { memberDir, openMember } from "./member.ts";
import { type HttpWorkers, startHttpWorkers } from "./workers.ts";
import { Compactor } from "./compactor.ts";
import { listenError, socketHostname } from "./listen.ts";
import { log } from "./log.ts";
import { CAIRN_VERSION } from "../version.ts";

/** A running member. */
export interface RunningServer {
  /** The KV service the gateway serves. */
  readonly service: EtcdServer;
  /** The URLs actually listened on (a port of 0 becomes the one chosen). */
  readonly clientUrls: string[];
  /** Stop listening, finish in-flight writes and close the store. */
  close(): Promise<void>;
}

/**
 * Start a member from its configuration: open the store in --data-dir
 * (holding its lock until close) and serve the etcd v3 JSON gateway on each
 * --listen-client-urls URL.
 *
 * @throws {DataDirLockedError} when another process holds --data-dir.
 * @throws {AddressInUseError} when a client address is taken (by anything,
 *   another cairn included: see server/workers.ts).
 * @throws {Error} when the data directory cannot be opened or a port cannot
 *   be bound.
 */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  if (config.initialCluster.size > 1) {
    throw new Error("Clusters of more than one member are not supported yet");
  }
  for (const url of config.listenClientUrls) {
    if (url.protocol !== "http:") {
      throw new Error(`Client URLs with ${url.protocol} are not supported yet: ${url.href}`);
    }
  }
  const peers = config.initialAdvertisePeerUrls.map((u) => u.origin);
  const id = memberId(peers, config.initialClusterToken);
  const member = await openMember(
    config.dataDir,
    { memberId: id, clusterId: clusterId([id]) },
    {
      maxTxnOps: config.maxTxnOps,
      maxRequestBytes: config.maxRequestBytes,
      progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
    },
    {
      heartbeatMs: config.heartbeatIntervalMs,
      electionMs: config.electionTimeoutMs,
      snapshotCount: config.snapshotCount,
    },
  );
  const { node, service } = member;
  const compactor = startCompactor(config, service);
  if (config.httpWorkers > 0) {
    let workers: HttpWorkers;
    try {
      workers = await startHttpWorkers(
        {
          node,
          kvPath: memberDir(config.dataDir),
          clusterId: service.clusterId,
          memberId: service.memberId,
          maxTxnOps: config.maxTxnOps,
          maxRequestBytes: config.maxRequestBytes,
          cairnVersion: CAIRN_VERSION,
          progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
        },
        config.listenClientUrls,
        config.httpWorkers,
      );
    } catch (err) {
      clearInterval(compactor);
      await member.close();
      throw err;
    }
    return {
      service,
      clientUrls: workers.clientUrls,
      async close() {
        clearInterval(compactor);
        await workers.stop();
        await member.close();
      },
    };
  }
  // No workers: the main thread serves the gateway itself.
  const app = createGateway(service, {
    maxRequestBytes: config.maxRequestBytes,
    cairnVersion: CAIRN_VERSION,
  });
  const servers: Deno.HttpServer<Deno.NetAddr>[] = [];
  const clientUrls: string[] = [];
  try {
    for (const url of config.listenClientUrls) {
      const port = Number(url.port || 80);
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = Deno.serve({ hostname: socketHostname(url), port, onListen: () => {} }, app.fetch);
      } catch (err) {
        throw listenError(err, url.hostname, port);
      }
      servers.push(server);
      clientUrls.push(`http://${url.hostname}:${server.addr.port}`);
    }
  } catch (err) {
    clearInterval(compactor);
    await Promise.all(servers.map((s) => s.shutdown()));
    await member.close();
    throw err;
  }
  return {
    service,
    clientUrls,
    async close() {
      clearInterval(compactor);
      // Open watch streams end first: a server's shutdown waits for them.
      service.close();
      await Promise.all(servers.map((s) => s.shutdown()));
      await member.close();
    },
  };
}

/** Start the auto-compactor the flags ask for; returns its timer (or undefined). */
function startCompactor(
  config: ServerConfig,
  service: EtcdServer,
): ReturnType<typeof setInterval> | undefined {
  const retention = config.autoCompactionRetention;
  if (retention <= 0) return undefined;
  const mode = config.autoCompactionMode;
  const compactor = new Compactor(mode, retention, {
    currentRevision: () => service.currentRevision(),
    compact: async (revision) => {
      log.info("starting auto compaction", { mode, revision });
      try {
        await service.compact({ revision });
      } catch (err) {
        log.warn("failed auto compaction", { mode, revision, error: err });
        throw err;
      }
      log.info("completed auto compaction", { mode, revision });
    },
  });
  return setInterval(() => void compactor.tick(Date.now()), compactor.intervalMs);
}
