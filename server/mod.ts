/**
 * Composition of a cairn member: the LMDB backend, the log and apply loop
 * ({@linkcode Node}), the KV service and the JSON gateway on every client
 * URL.
 *
 * @module
 */
import { createGateway } from "./gateway/mod.ts";
import { loadJwtTokens, type ServerConfig } from "./config.ts";
import type { EtcdServer } from "./etcdserver/mod.ts";
import { memberId } from "./ids.ts";
import { type Member, memberDir, type MemberIdentity, openMember, snapDir } from "./member.ts";
import {
  type MemberContext,
  memberContext,
  memberFromContext,
  Membership,
} from "./cluster/membership.ts";
import { type PeerObserver, PeerTransport } from "./peer/transport.ts";
import type { RaftNode } from "./raftnode/node.ts";
import {
  DEFAULT_QUOTA_BACKEND_BYTES,
  MAX_QUOTA_BACKEND_BYTES,
  PUBLISH_RETRY_MS,
} from "../core/limits.ts";
import { type ClientListener, type HttpWorkers, startHttpWorkers } from "./workers.ts";
import { createGrpcTransport } from "./grpc/mod.ts";
import { type ClientPort, listenClientPort } from "./client_port.ts";
import { type ClientTls, loadClientTls, loadPeerTls, type TlsInfo } from "./tls.ts";
import { PeerDialer } from "./peer/dialer.ts";
import { cipherSuiteById } from "./cipher_suites.ts";
import { Compactor } from "./compactor.ts";
import { socketHostname } from "./listen.ts";
import { goDuration, hexId, log } from "./log.ts";
import { leaderChangeLogger, logRaftEvent, membershipLogger } from "./member_log.ts";
import { CorruptionChecker, HASHKV_PATH } from "./corrupt.ts";
import { CAIRN_VERSION, ETCD_API_VERSION } from "../version.ts";
import { createMetricsApp } from "./gateway/mod.ts";
import { metrics } from "./metrics.ts";
import { listenError } from "./listen.ts";
import { Meta } from "../core/mvcc/view.ts";

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
  const clientTls = await loadClientTls(config);
  const peerTls = await loadPeerTls(config);
  warnIgnoredTls(config);
  // Outgoing peer connections (a joining member's first question included)
  // present the member's peer certificate.
  const dialer = new PeerDialer(peerTls);
  let identity: Awaited<ReturnType<typeof memberIdentity>>;
  try {
    identity = await memberIdentity(config, dialer);
  } catch (err) {
    dialer.close();
    throw err;
  }
  // The transport starts once the node is open (which sends nothing before
  // it has heard from a peer, except as a single voter).
  let peer: Peers | undefined;
  // Set once the member is open (the node's callbacks may run before).
  const late: {
    node?: RaftNode;
    membershipChanged?: (m: Membership) => void;
    /** A member was added to a member that started without peers. */
    peersNeeded?: () => void;
  } = {};
  const self = identity.memberId;
  const leaderChanged = leaderChangeLogger(self);
  const memberOf = (raftId: number): bigint =>
    (late.node?.membership ?? identity.remoteMembership ?? identity.membership)?.byRaftId(raftId)
      ?.id ?? BigInt(raftId);
  const member = await openMember(config.dataDir, identity, {
    maxTxnOps: config.maxTxnOps,
    maxRequestBytes: config.maxRequestBytes,
    quotaBackendBytes: config.quotaBackendBytes,
    bcryptCost: config.bcryptCost,
    authTokenTtlSeconds: config.authTokenTtlSeconds,
    progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
    warningApplyDurationMs: config.warningApplyDurationMs,
  }, {
    tokens: config.authToken.type === "jwt" ? await loadJwtTokens(config.authToken) : undefined,
    heartbeatMs: config.heartbeatIntervalMs,
    electionMs: config.electionTimeoutMs,
    preVote: config.preVote,
    walDir: config.walDir,
    snapshotCount: config.snapshotCount,
    warningApplyDurationMs: config.warningApplyDurationMs,
    transport: {
      send: (messages) => peer?.send(messages),
      request: (id, path, body) =>
        peer === undefined ? Promise.reject(new Error("no peers")) : peer.request(id, path, body),
    },
    onRaftEvent: (event) => logRaftEvent(self, event),
    onLeaderChange: (leader, term) =>
      leaderChanged(leader === 0 ? undefined : memberOf(leader), term),
    onMembership: (membership) => {
      late.membershipChanged?.(membership);
      peer?.update(membership);
      if (peer === undefined && membership.members.length > 1) late.peersNeeded?.();
    },
  });
  late.node = member.node;
  late.membershipChanged = membershipLogger(self, member.service.clusterId, member.node.membership);
  log.info("starting local member", {
    "local-member-id": hexId(self),
    "cluster-id": hexId(member.service.clusterId),
    "data-dir": config.dataDir,
    "applied-index": member.node.appliedIndex,
    "current-revision": member.service.currentRevision(),
  });
  const { node, service } = member;
  bindMetrics(config, member);
  if (node.membership.isRemoved(service.memberId)) {
    await member.close();
    // etcd refuses to start a member removed from its cluster.
    throw new Error("the member has been permanently removed from the cluster");
  }
  const checker = new CorruptionChecker({
    node,
    maintenance: service.maintenance,
    request: (id, path, body) => node.requestPeer(id, path, body),
  });
  const reach = { tls: peerTls, dialer };
  try {
    peer = await startPeers(config, node, service.memberId, service.clusterId, checker, reach);
  } catch (err) {
    dialer.close();
    await member.close();
    throw err;
  }
  /** Peers started after a member was added to a single member (see below). */
  let peersStarting: Promise<void> | undefined;
  if (peer === undefined) {
    // A single member listens on its peer URLs once a second member is
    // added (etcd listens from the start): from then on the leader needs
    // that member, which reaches it there.
    late.peersNeeded = () => {
      peersStarting ??= startPeers(
        config,
        node,
        service.memberId,
        service.clusterId,
        checker,
        reach,
      )
        .then((started) => {
          peer = started;
          if (started === undefined) return;
          started.update(node.membership);
          if (config.corruptCheckMs > 0) checker.start(config.corruptCheckMs);
          log.info("listening for peers: the cluster has more than one member", {
            "listen-peer-urls": config.listenPeerUrls.map((u) => u.href.replace(/\/$/, "")),
          });
        }, (err) => {
          log.error("cannot listen for peers; the added member cannot reach this one", {
            error: err instanceof Error ? err.message : String(err),
          });
        });
    };
    if (node.membership.members.length > 1) late.peersNeeded();
  }
  /** Stop the peer transport, or the dialer when it never started. */
  const closePeers = async () => {
    await peersStarting;
    if (peer !== undefined) await peer.close();
    else dialer.close();
  };
  if (peer !== undefined) {
    // A member that joined learns the membership from the leader's snapshot;
    // until then it answers the members that told it who it is.
    const known = node.membership;
    peer.update(known.members.length > 0 ? known : identity.remoteMembership ?? known);
  }
  if (config.initialCorruptCheck && peer !== undefined) {
    // etcd's: a member whose data differs from its peers' does not serve.
    try {
      await checker.initialCheck();
    } catch (err) {
      await closePeers();
      await member.close();
      throw err;
    }
  }
  // Clients find the members' client URLs in the member list (Patroni, ctl
  // --cluster); as etcd, a member serves clients once its own are there.
  await publish(node, service.memberId, config);
  logQuota(config.quotaBackendBytes);
  const compactor = startCompactor(config, service, () => node.isLeader);
  if (config.corruptCheckMs > 0 && peer !== undefined && peersStarting === undefined) {
    checker.start(config.corruptCheckMs);
  }
  const listeners = clientListeners(config, clientTls);
  if (config.httpWorkers > 0) {
    // The metrics URLs listen before the client URLs: a member that answers
    // /health on its client URL serves its metrics too. A scrape waits for
    // the workers (it merges their values).
    const started = Promise.withResolvers<HttpWorkers>();
    started.promise.catch(() => {});
    let metricsListeners: Deno.HttpServer[];
    try {
      metricsListeners = listenMetrics(
        config,
        service,
        async () => (await started.promise).scrape(),
      );
    } catch (err) {
      clearInterval(compactor);
      checker.stop();
      await closePeers();
      await member.close();
      throw err;
    }
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
          quotaBackendBytes: config.quotaBackendBytes,
          bcryptCost: config.bcryptCost,
          cairnVersion: CAIRN_VERSION,
          progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
          snapshotDir: snapDir(config.dataDir),
          warningApplyDurationMs: config.warningApplyDurationMs,
        },
        listeners,
        config.httpWorkers,
      );
    } catch (err) {
      started.reject(err);
      clearInterval(compactor);
      checker.stop();
      await Promise.all(metricsListeners.map((l) => l.shutdown()));
      await member.close();
      await closePeers();
      throw err;
    }
    started.resolve(workers);
    return {
      service,
      clientUrls: workers.clientUrls,
      async close() {
        clearInterval(compactor);
        checker.stop();
        await Promise.all(metricsListeners.map((l) => l.shutdown()));
        await workers.stop();
        await closePeers();
        await member.close();
      },
    };
  }
  const scrape = () => metrics.registry.metrics();
  // No workers: the main thread serves the gateway and gRPC itself.
  const app = createGateway(service, {
    maxRequestBytes: config.maxRequestBytes,
    cairnVersion: CAIRN_VERSION,
    metrics: scrape,
  });
  const grpc = createGrpcTransport(service, { maxRequestBytes: config.maxRequestBytes });
  const ports: ClientPort[] = [];
  const clientUrls: string[] = [];
  let metricsListeners: Deno.HttpServer[] = [];
  try {
    metricsListeners = listenMetrics(config, service, scrape);
    for (const listener of listeners) {
      const url = listener.url;
      const port = await listenClientPort({
        hostname: socketHostname(url),
        port: Number(url.port || 80),
        grpc: listener.grpc ? grpc.injector : undefined,
        http: listener.http ? app.fetch : undefined,
        tls: listener.tls,
      });
      ports.push(port);
      clientUrls.push(`${url.protocol}//${url.hostname}:${port.port}`);
    }
  } catch (err) {
    clearInterval(compactor);
    checker.stop();
    grpc.close();
    await Promise.all(metricsListeners.map((l) => l.shutdown()));
    await Promise.all(ports.map((p) => p.close()));
    await closePeers();
    await member.close();
    throw err;
  }
  return {
    service,
    clientUrls,
    async close() {
      clearInterval(compactor);
      checker.stop();
      // Open watch streams end first: a server's shutdown waits for them.
      service.close();
      grpc.close();
      await Promise.all(metricsListeners.map((l) => l.shutdown()));
      await Promise.all(ports.map((p) => p.close()));
      await closePeers();
      await member.close();
    },
  };
}

/**
 * Point this thread's metrics at the member: the gauges read at scrape time
 * (Raft indexes, pending proposals, database size, keys, revisions), its ID,
 * the versions, the quota, and the process metrics.
 */
function bindMetrics(config: ServerConfig, member: Member): void {
  const { node, service, backend } = member;
  metrics.collectProcessMetrics();
  metrics.bindMember({
    committedIndex: () => node.status().hardState.commit,
    appliedIndex: () => node.appliedIndex,
    pendingProposals: () => node.pendingProposals,
    dbSize: () => backend.size(),
    keys: () => node.keys,
    currentRevision: () => node.revision,
    compactRevision: () => {
      const rev = backend.getMeta(Meta.compactRevision);
      return rev === undefined ? -1 : Number(rev);
    },
    isLearner: () => node.membership.get(service.memberId)?.isLearner === true,
  }, {
    memberId: service.memberId,
    serverVersion: ETCD_API_VERSION,
    clusterVersion: ETCD_API_VERSION.split(".").slice(0, 2).join("."),
    // A disabled quota (negative) is reported as given, as etcd does.
    quotaBytes: config.quotaBackendBytes < 0 ? config.quotaBackendBytes : service.quotaBytes,
  });
  const watch = service.watch.hub;
  metrics.bindWatch({ watchers: () => watch.size, streams: () => watch.streams });
}

/**
 * etcd's --listen-metrics-urls: a listener per URL serving /metrics and
 * /health only.
 *
 * @throws {AddressInUseError} when an address is taken.
 */
function listenMetrics(
  config: ServerConfig,
  service: EtcdServer,
  scrape: () => Promise<string>,
): Deno.HttpServer[] {
  const app = createMetricsApp(service, scrape);
  const servers: Deno.HttpServer[] = [];
  for (const url of config.listenMetricsUrls) {
    if (url.protocol !== "http:") {
      throw new Error(`Metrics URLs with ${url.protocol} are not supported yet: ${url.href}`);
    }
    const port = Number(url.port || 80);
    try {
      servers.push(
        Deno.serve({ hostname: socketHostname(url), port, onListen: () => {} }, app.fetch),
      );
    } catch (err) {
      for (const s of servers) void s.shutdown();
      throw listenError(err, url.hostname, port);
    }
  }
  return servers;
}

/**
 * What each client URL serves: gRPC and the gateway on --listen-client-urls,
 * or, with --listen-client-http-urls (etcd 3.5), gRPC there and the gateway
 * alone on those; https URLs with `tls` (from {@linkcode loadClientTls}).
 */
export function clientListeners(config: ServerConfig, tls?: ClientTls): ClientListener[] {
  const split = config.listenClientHttpUrls.length > 0;
  const tlsOf = (url: URL) => url.protocol === "https:" ? tls : undefined;
  return [
    ...config.listenClientUrls.map((url) => ({ url, grpc: true, http: !split, tls: tlsOf(url) })),
    ...config.listenClientHttpUrls.map((url) => ({
      url,
      grpc: false,
      http: true,
      tls: tlsOf(url),
    })),
  ];
}

/** Start the auto-compactor the flags ask for; returns its timer (or undefined). */
function startCompactor(
  config: ServerConfig,
  service: EtcdServer,
  isLeader: () => boolean,
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
  // Only the leader compacts (etcd pauses the compactor on followers): one
  // compaction entry per period, not one per member.
  return setInterval(() => {
    if (isLeader()) void compactor.tick(Date.now());
  }, compactor.intervalMs);
}

/** The peer side of a member: its transport, and the peers it knows. */
interface Peers {
  /** Send Raft messages (the node's transport port). */
  send: PeerTransport["send"];
  /** A request to a peer's POST handler. */
  request: PeerTransport["request"];
  /** Point the transport at the members of `membership` (all but this one). */
  update(membership: Membership): void;
  close(): Promise<void>;
}

/**
 * Who this member is. A data dir that exists keeps the identity it was
 * created with (etcd ignores the --initial-* flags then). A new member of a
 * new cluster takes its IDs from --initial-cluster; a new member joining an
 * existing cluster (--initial-cluster-state existing) asks the cluster's
 * members, at the peer URLs of --initial-cluster, which member it is.
 *
 * @throws {Error} when no member of the cluster lists this member's peer URLs.
 */
async function memberIdentity(
  config: ServerConfig,
  dialer: PeerDialer,
): Promise<MemberIdentity & { remoteMembership?: Membership }> {
  const mine = config.initialAdvertisePeerUrls.map((u) => u.origin).sort();
  const id = memberId(mine, config.initialClusterToken);
  const initial = new Map(
    [...config.initialCluster].map(([name, urls]) => [name, urls.map((u) => u.origin)]),
  );
  const existingDir = (() => {
    try {
      return Deno.statSync(`${memberDir(config.dataDir)}/data.mdb`).isFile;
    } catch {
      return false;
    }
  })();
  if (existingDir || config.initialClusterState === "new") {
    const membership = Membership.bootstrap(initial, config.initialClusterToken);
    const me = membership.get(id);
    return {
      memberId: id,
      clusterId: membership.clusterId(),
      raftId: me?.raftId ?? 1,
      membership,
    };
  }
  // Joining: the cluster's members know this member (added with `member add`).
  const errors: string[] = [];
  for (const [, urls] of initial) {
    for (const url of urls) {
      if (mine.includes(url)) continue;
      try {
        await dialer.prepare(url);
        const res = await fetch(`${url}/members`, {
          client: dialer.client(),
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = await res.json() as { clusterId: string; members: MemberContext[] };
        const me = body.members.find((m) => m.peerURLs.some((u) => mine.includes(u)));
        if (me === undefined) {
          throw new Error(
            `error validating peerURLs: member with peer URLs ${
              mine.join(",")
            } is not in the cluster; add it with 'member add' first`,
          );
        }
        const remote = new Membership();
        for (const m of body.members) {
          remote.set(memberFromContext(m));
        }
        return {
          memberId: BigInt(me.id),
          clusterId: BigInt(body.clusterId),
          raftId: me.raftId,
          // Learned from the leader's snapshot.
          membership: new Membership(),
          remoteMembership: remote,
        };
      } catch (err) {
        errors.push(`${url}: ${(err as Error).message}`);
      }
    }
  }
  throw new Error(`cannot fetch cluster info from peer urls: ${errors.join("; ")}`);
}

/** Log the backend quota in effect, as etcd does when it starts. */
function logQuota(quota: number): void {
  const fields = (bytes: number) => ({
    "quota-name": "v3-applier",
    "quota-size-bytes": bytes,
    "quota-size": `${(bytes / 1024 ** 3).toFixed(1)} GiB`,
  });
  if (quota < 0) {
    log.info("disabled backend quota", { "quota-name": "v3-applier", "quota-size-bytes": quota });
  } else if (quota === 0) {
    log.info("enabled backend quota with default value", fields(DEFAULT_QUOTA_BACKEND_BYTES));
  } else if (quota > MAX_QUOTA_BACKEND_BYTES) {
    log.warn("quota exceeds the maximum value", {
      ...fields(quota),
      "quota-maximum-size-bytes": MAX_QUOTA_BACKEND_BYTES,
    });
  } else log.info("enabled backend quota", fields(quota));
}

/**
 * Listen on --listen-peer-urls when the member has or may get peers (a
 * cluster of more than one, or one it joins), and reach the others there.
 */
async function startPeers(
  config: ServerConfig,
  raftNode: RaftNode,
  memberId: bigint,
  clusterId: bigint,
  checker: CorruptionChecker,
  reach: { tls: TlsInfo | undefined; dialer: PeerDialer },
): Promise<Peers | undefined> {
  const members = raftNode.membership.members.length;
  if (config.initialCluster.size <= 1 && members <= 1 && config.initialClusterState === "new") {
    return undefined;
  }
  const identity = { raftId: raftNode.raftId, clusterId, memberId };
  const dir = snapDir(config.dataDir);
  let snapSeq = 0;
  const sending = new Map<number, { fields: Record<string, unknown>; start: number }>();
  const transport = await PeerTransport.listen(config.listenPeerUrls, {
    tls: reach.tls,
    dialer: reach.dialer,
    id: identity.raftId,
    clusterId: identity.clusterId,
    snapDir: dir,
    deliver: (messages) => raftNode.step(messages),
    deliverSnapshot: (message, file) => {
      log.info("received and saved database snapshot", {
        "local-member-id": hexId(memberId),
        "remote-snapshot-sender-id": hexId(
          raftNode.membership.byRaftId(message.from)?.id ?? BigInt(message.from),
        ),
        "incoming-snapshot-index": message.snapshot?.metadata.index,
        "incoming-snapshot-size-bytes": fileSize(file),
      });
      raftNode.stepSnapshot(message, file);
    },
    openSnapshot: async (message) => {
      const n = raftNode;
      const out = `${dir}/out-${Date.now()}-${++snapSeq}`;
      const built = await n.snapshotToSend(message, out);
      const fields = {
        "snapshot-index": built.message.snapshot?.metadata.index,
        "remote-peer-id": hexId(n.membership.byRaftId(message.to)?.id ?? BigInt(message.to)),
        bytes: fileSize(built.file),
      };
      log.info("sending database snapshot", fields);
      // One snapshot in flight per peer; reportSnapshot logs how it ended.
      sending.set(message.to, { fields, start: performance.now() });
      return {
        message: built.message,
        file: built.file,
        done: () => Deno.remove(out, { recursive: true }).catch(() => {}),
      };
    },
    reportUnreachable: (id) => raftNode.reportUnreachable(id),
    reportSnapshot: (id, failed) => {
      const sent = sending.get(id);
      sending.delete(id);
      if (sent !== undefined) {
        const fields = { ...sent.fields, took: goDuration(performance.now() - sent.start) };
        if (failed) log.warn("failed to send database snapshot", fields);
        else log.info("sent database snapshot", fields);
      }
      raftNode.reportSnapshot(id, failed);
    },
    postHandlers: {
      ...raftNode.peerHandlers(),
      [HASHKV_PATH]: (body) => checker.peerHashKV(body),
    },
    observer: peerMetrics(raftNode, memberId),
    isRemoved: (id) => raftNode.membership.isRemovedRaftId(id),
    onRemoved: () => removedFromCluster(),
    handlers: {
      ...faultHandlers(() => transport),
      "/members": () => {
        const membership = raftNode.membership;
        return {
          clusterId: identity.clusterId.toString(),
          members: membership.members.map(memberContext),
        };
      },
    },
  });
  const self = identity.raftId;
  let removed = false;
  // etcd stops a member removed from its cluster.
  const removedFromCluster = () => {
    if (removed) return;
    removed = true;
    log.error("the member has been permanently removed from the cluster; exiting", {
      member: identity.memberId.toString(16),
    });
    setTimeout(() => Deno.exit(1), 100);
  };
  return {
    send: (messages) => transport.send(messages),
    request: (id, path, body) => transport.request(id, path, body),
    update(membership) {
      const known = new Set<number>();
      for (const m of membership.members) {
        if (m.raftId === self) continue;
        known.add(m.raftId);
        transport.setPeer(m.raftId, m.peerURLs);
      }
      for (const id of transport.peers()) if (!known.has(id)) transport.removePeer(id);
      if (membership.isRemoved(identity.memberId)) removedFromCluster();
    },
    close: async () => {
      await transport.close();
      reach.dialer.close();
    },
  };
}

/**
 * etcd's warnings for TLS flags an http URL ignores: certificate files or
 * client-certificate authentication given while the client (or peer) URLs
 * are http. And a warning for each --cipher-suites suite cairn's TLS
 * library cannot negotiate.
 */
function warnIgnoredTls(config: ServerConfig): void {
  for (const id of config.cipherSuites) {
    const suite = cipherSuiteById(id);
    if (suite !== undefined && !suite.available) {
      // rustls (Deno's TLS) has no CBC, RC4, 3DES or RSA key-exchange suites.
      log.warn(
        "cipher suite is not available in cairn's TLS; clients offering only it are refused",
        {
          "cipher-suite": suite.name,
        },
      );
    }
  }
  for (const url of config.listenPeerUrls) {
    if (url.protocol !== "http:") continue;
    const fields = { "peer-url": url.href.replace(/\/$/, "") };
    if (config.peerCertFile !== "" || config.peerKeyFile !== "") {
      log.warn(
        "scheme is HTTP while key and cert files are present; ignoring key and cert files",
        fields,
      );
    }
    if (config.peerClientCertAuth) {
      log.warn(
        "scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL",
        fields,
      );
    }
  }
  for (const url of [...config.listenClientUrls, ...config.listenClientHttpUrls]) {
    if (url.protocol !== "http:") continue;
    const fields = { "client-url": url.href.replace(/\/$/, "") };
    if (config.certFile !== "" || config.keyFile !== "") {
      log.warn(
        "scheme is HTTP while key and cert files are present; ignoring key and cert files",
        fields,
      );
    }
    if (config.clientCertAuth) {
      log.warn(
        "scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL",
        fields,
      );
    }
  }
}

/**
 * The peer transport's events as etcd's etcd_network_* metrics, labelled
 * with member IDs in hex (as etcd labels them).
 */
function peerMetrics(node: RaftNode, self: bigint): PeerObserver {
  const names = new Map<number, string>();
  const local = self.toString(16);
  const name = (raftId: number): string => {
    const known = names.get(raftId);
    if (known !== undefined) return known;
    const member = node.membership.byRaftId(raftId);
    if (member === undefined) return String(raftId);
    const hex = member.id.toString(16);
    names.set(raftId, hex);
    return hex;
  };
  return {
    sent: (to, bytes) => metrics.peerSentBytes.inc({ To: name(to) }, bytes),
    received: (from, bytes) => metrics.peerReceivedBytes.inc({ From: name(from) }, bytes),
    sendFailed: (to) => metrics.peerSentFailures.inc({ To: name(to) }),
    receiveFailed: (from) => metrics.peerReceivedFailures.inc({ From: name(from) }),
    connected: (to, up) => metrics.activePeers.set({ Local: local, Remote: name(to) }, up ? 1 : 0),
    roundTrip: (to, seconds) => metrics.peerRoundTrip.observe({ To: name(to) }, seconds),
  };
}

/**
 * etcd's publish: record this member's name and client URLs in the
 * replicated membership once a leader takes the proposal, retrying until
 * it is applied (or the member stops). Resolves once they are there (at
 * once when they already were, as after a restart).
 */
function publish(node: RaftNode, id: bigint, config: ServerConfig): Promise<void> {
  const clientURLs = config.advertiseClientUrls.map((u) => u.origin);
  const { promise, resolve } = Promise.withResolvers<void>();
  const attempt = () => {
    const m = node.membership.get(id);
    if (
      m !== undefined && m.name === config.name &&
      m.clientURLs.join(",") === clientURLs.join(",")
    ) {
      resolve();
      return;
    }
    node.propose({
      type: "member_update",
      member_update: { ID: id, name: config.name, clientURLs },
    }).then((r) => {
      if ("error" in r) log.warn("publish failed", { error: r.error });
      else log.info("published local member to cluster through raft", { name: config.name });
      resolve();
    }, () => {
      const timer = setTimeout(attempt, PUBLISH_RETRY_MS);
      Deno.unrefTimer(timer);
    });
  };
  attempt();
  return promise;
}

/**
 * Network partitions for tests of real processes: with
 * CAIRN_FAULT_INJECTION=1 in the environment, GET /cairn/fault/isolate on
 * the peer port drops every Raft message to and from this member, and GET
 * /cairn/fault/heal ends that. Without it, no such endpoint exists.
 */
function faultHandlers(transport: () => PeerTransport): Record<string, () => unknown> {
  if (Deno.env.get("CAIRN_FAULT_INJECTION") !== "1") return {};
  return {
    "/cairn/fault/isolate": () => {
      transport().setFault(() => true);
      log.warn("fault injection: this member is cut off from its peers");
      return { isolated: true };
    },
    "/cairn/fault/heal": () => {
      transport().setFault(undefined);
      log.warn("fault injection: this member reaches its peers again");
      return { isolated: false };
    },
  };
}

/** A file's size in bytes, or undefined when it cannot be read. */
function fileSize(path: string): number | undefined {
  try {
    return Deno.statSync(path).size;
  } catch {
    return undefined;
  }
}
