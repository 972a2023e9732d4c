/**
 * etcd v3 JSON gateway on hono: the HTTP surface of etcd 3.4's grpc-gateway
 * for the KV service and Maintenance.Status, plus etcd's `/health` and
 * `/version` endpoints. Request and response bodies follow etcd 3.4 byte
 * for byte (see core/api/codec.ts); errors are `{"error":M,"message":M,"code":N}`
 * with etcd's message, gRPC code and HTTP status.
 *
 * A transport only: it reads the body, decodes the JSON, applies gRPC's
 * receive-size limit, calls the service (server/etcdserver/, which holds
 * every etcd check and limit of the request itself) and encodes the answer
 * or maps the error to its HTTP status.
 *
 * ```ts
 * import { createGateway } from "./server/gateway/mod.ts";
 * const app = createGateway(service, { cairnVersion: "0.1.0" });
 * Deno.serve({ port: 2379 }, app.fetch);
 * ```
 *
 * @module
 */

import { Hono } from "hono";
import type { Context } from "hono";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import type {
  CampaignRequest,
  CampaignResponse,
  CompactionRequest,
  CompactionResponse,
  Credentials,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KVService,
  LeaderRequest,
  LeaderResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  LockRequest,
  LockResponse,
  MemberAddRequest,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  ProclaimRequest,
  ProclaimResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResignRequest,
  ResignResponse,
  SnapshotResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  UnlockRequest,
  UnlockResponse,
  WatchRequest,
  WatchStreamHandle,
} from "../../core/api/types.ts";
import {
  fromJson,
  keyValueJson,
  type MessageName,
  type MessageTypes,
  protoSize,
  responseHeaderJson,
  stringifyGo,
  toJson,
  watchResponseJson,
} from "../../core/api/codec.ts";
import { firstValueEnd, parseGoJson } from "../../core/api/json.ts";
import { DEFAULT_MAX_REQUEST_BYTES } from "../config.ts";
import { log } from "../log.ts";
import {
  grpcMethodLabels,
  type GrpcMethodMetrics,
  metrics,
  METRICS_CONTENT_TYPE,
} from "../metrics.ts";
import { ETCD_API_VERSION } from "../../version.ts";
import type { MaintenanceService } from "../etcdserver/maintenance.ts";
import type { AuthService } from "../etcdserver/auth.ts";
import {
  GRPC_OVERHEAD_BYTES,
  MAX_KEEPALIVE_BATCH,
  MAX_STREAM_REQUEST_BUFFER_BYTES,
  STREAM_CHUNK_BYTES,
  STREAM_KVS_THRESHOLD,
} from "../../core/limits.ts";

export type { Hono, KVService, MessageName, MessageTypes, RangeResponse };

export { GRPC_OVERHEAD_BYTES };

/**
 * gRPC's receive limit, as etcd's gRPC server applies it before any etcd
 * check: a request whose protobuf encoding is over
 * `maxRequestBytes + 512 KiB` bytes fails.
 *
 * @throws {EtcdError} MessageTooLarge: 429 / ResourceExhausted
 *   `grpc: received message larger than max (N vs. M)`.
 */
export function checkGrpcSize(size: number, maxRequestBytes: number): void {
  const max = maxRequestBytes + GRPC_OVERHEAD_BYTES;
  if (size > max) throw Errors.MessageTooLarge(size, max);
}

/** Options of {@linkcode createGateway}. */
export interface GatewayOptions {
  /**
   * etcd's `--max-request-bytes` (default 1572864 = 1.5 MiB), for gRPC's
   * receive limit: any request whose protobuf encoding is over this +
   * 512 KiB gets 429 `grpc: received message larger than max (N vs. M)`.
   * (The service applies the same flag to proposals.)
   */
  maxRequestBytes?: number;
  /** cairn's own version, reported as `"cairn"` by `GET /version`. */
  cairnVersion: string;
  /**
   * Timeout of the `/health` probe read, in milliseconds (default 1000, as
   * etcd's health check).
   */
  healthTimeoutMs?: number;
  /**
   * The member's metrics in Prometheus' text format (every thread's,
   * merged), served at `/metrics`; none: no `/metrics` route.
   */
  metrics?: () => Promise<string>;
}

/**
 * etcd's KV service and Maintenance.Status as the gateway calls them: each
 * KV request with the caller's credentials.
 */
export interface KVServiceAs {
  /** KV.Range. */
  range(req: RangeRequest, creds?: Credentials): Promise<RangeResponse>;
  /** KV.Put. */
  put(req: PutRequest, creds?: Credentials): Promise<PutResponse>;
  /** KV.DeleteRange. */
  deleteRange(req: DeleteRangeRequest, creds?: Credentials): Promise<DeleteRangeResponse>;
  /** KV.Txn. */
  txn(req: TxnRequest, creds?: Credentials): Promise<TxnResponse>;
  /** KV.Compact. */
  compact(req: CompactionRequest, creds?: Credentials): Promise<CompactionResponse>;
  /** Maintenance.Status (etcd 3.4 checks no credentials for it). */
  status(): Promise<StatusResponse>;
}

/**
 * The credentials of a gateway request: the `Authorization` header's value
 * is the token, as etcd's gateway passes it to its gRPC server.
 */
export function credentialsOf(req: Request): Credentials | undefined {
  const token = req.headers.get("authorization");
  return token === null ? undefined : { token };
}

/** What the gateway serves: etcd's KV and Maintenance.Status, and Watch when `openWatch` is there. */
export type GatewayService = KVServiceAs & {
  /** Open a Watch stream (etcd's Watch RPC). */
  openWatch?: (creds?: Credentials) => WatchStreamHandle;
  /** etcd's Lease service. */
  lease?: LeaseService;
  /** etcd's Lock service (v3lock). */
  lock?: LockService;
  /** etcd's Election service (v3election). */
  election?: ElectionService;
  /** etcd's Cluster service and Maintenance.MoveLeader. */
  cluster?: ClusterService;
  /** etcd's Maintenance service beyond Status (alarms, hashes, snapshot). */
  maintenance?: MaintenanceService;
  /** etcd's Auth service. */
  auth?: AuthService;
};

/** etcd's Cluster service as the gateway calls it (server/etcdserver/cluster.ts). */
export interface ClusterService {
  memberList(): Promise<MemberListResponse>;
  memberAdd(req: MemberAddRequest, creds?: Credentials): Promise<MemberAddResponse>;
  memberRemove(req: MemberRemoveRequest, creds?: Credentials): Promise<MemberRemoveResponse>;
  memberUpdate(req: MemberUpdateRequest, creds?: Credentials): Promise<MemberUpdateResponse>;
  memberPromote(req: MemberPromoteRequest, creds?: Credentials): Promise<MemberPromoteResponse>;
  moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse>;
}

/**
 * etcd's Lock service as the gateway calls it; `signal` aborts when the
 * client goes away.
 */
export interface LockService {
  /** Lock: resolves once the lock is held. */
  lock(req: LockRequest, signal?: AbortSignal, creds?: Credentials): Promise<LockResponse>;
  /** Unlock. */
  unlock(req: UnlockRequest, creds?: Credentials): Promise<UnlockResponse>;
}

/**
 * etcd's Election service as the gateway calls it; `signal` aborts when the
 * client goes away.
 */
export interface ElectionService {
  /** Campaign: resolves once elected. */
  campaign(
    req: CampaignRequest,
    signal?: AbortSignal,
    creds?: Credentials,
  ): Promise<CampaignResponse>;
  /** Proclaim. */
  proclaim(req: ProclaimRequest, creds?: Credentials): Promise<ProclaimResponse>;
  /** Leader. */
  leader(req: LeaderRequest, creds?: Credentials): Promise<LeaderResponse>;
  /** Observe: the leader now and at each change, until `signal` aborts. */
  observe(
    req: LeaderRequest,
    signal?: AbortSignal,
    creds?: Credentials,
  ): AsyncIterable<LeaderResponse>;
  /** Resign. */
  resign(req: ResignRequest, creds?: Credentials): Promise<ResignResponse>;
}

/** etcd's Lease service as the gateway calls it. */
export interface LeaseService {
  /** LeaseGrant. */
  grant(req: LeaseGrantRequest, creds?: Credentials): Promise<LeaseGrantResponse>;
  /** LeaseRevoke. */
  revoke(req: LeaseRevokeRequest, creds?: Credentials): Promise<LeaseRevokeResponse>;
  /** One LeaseKeepAlive request of a stream. */
  keepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse>;
  /** LeaseTimeToLive. */
  timeToLive(req: LeaseTimeToLiveRequest, creds?: Credentials): Promise<LeaseTimeToLiveResponse>;
  /** LeaseLeases. */
  leases(): Promise<LeaseLeasesResponse>;
}

/** The etcd API version cairn speaks, as `GET /version` reports it. */
export { ETCD_API_VERSION };

/** The URL prefixes etcd 3.4 serves the gateway under. */
export const GATEWAY_PREFIXES = ["/v3", "/v3beta"] as const;

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Headers": "accept, content-type, authorization",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin": "*",
};

const JSON_OK_HEADERS = {
  ...CORS_HEADERS,
  "Content-Type": "application/json",
  "Grpc-Metadata-Content-Type": "application/grpc",
};

const JSON_ERROR_HEADERS = { ...CORS_HEADERS, "Content-Type": "application/json" };

/** Plain-text bodies Go's net/http writes (`http.Error`, `http.NotFound`). */
function plainText(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: {
      ...CORS_HEADERS,
      "Content-Type": "text/plain; charset=utf-8",
      "X-Content-Type-Options": "nosniff",
      ...extra,
    },
  });
}

/**
 * The gateway's error response for an error: an `EtcdError` keeps its
 * message, code and HTTP status; anything else is gRPC Unknown (500, code 2)
 * with the error's text, as etcd answers unexpected server errors.
 */
export function errorResponse(err: unknown): Response {
  let e: EtcdError;
  if (err instanceof EtcdError) e = err;
  else {
    log.error("unexpected error serving a request", {
      error: err,
      stack: err instanceof Error ? err.stack : undefined,
    });
    e = new EtcdError(err instanceof Error ? err.message : String(err), GrpcCode.Unknown);
  }
  const body = stringifyGo({ error: e.message, message: e.message, code: e.code });
  return new Response(body, { status: e.httpStatus, headers: JSON_ERROR_HEADERS });
}

/**
 * Reads a request body as text, giving up past `cap` bytes. Past the cap
 * the request is answered as gRPC would answer an oversized message, with
 * the body length standing in for the (unknown) protobuf size.
 */
async function readBody(req: Request, cap: number, grpcMax: number): Promise<string> {
  const tooLarge = (n: number) =>
    new EtcdError(
      `grpc: received message larger than max (${n} vs. ${grpcMax})`,
      GrpcCode.ResourceExhausted,
    );
  const declared = req.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared)) {
    // Fast path: a declared length (Deno enforces it) is read in one go,
    // without touching `req.body` (creating the stream costs more than the
    // whole read of a small body).
    const n = Number(declared);
    if (n > cap) {
      await req.body?.cancel();
      throw tooLarge(n);
    }
    return decoder.decode(await req.arrayBuffer());
  }
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > cap) {
        await reader.cancel();
        throw tooLarge(total);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return decoder.decode(chunks[0]);
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return decoder.decode(all);
}

/** UTF-8 decoding that keeps a leading BOM (Go rejects it as a character). */
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * The JSON of a RangeResponse. Small responses are one string; large ones
 * are a stream of chunks (same bytes), so a big range is never held as one
 * giant string.
 */
export function rangeResponseBody(res: RangeResponse): string | ReadableStream<Uint8Array> {
  if (res.header === undefined) return JSON.stringify(toJson("RangeResponse", res));
  // Field order as etcd writes it: header, kvs, more, count.
  const head = '{"header":' + responseHeaderJson(res.header);
  const tail = (res.more ? ',"more":true' : "") +
    (res.count ? ',"count":"' + String(res.count) + '"' : "") + "}";
  const kvs = res.kvs;
  if (kvs.length === 0) return head + tail;
  if (kvs.length <= STREAM_KVS_THRESHOLD) {
    let s = head + ',"kvs":[' + keyValueJson(kvs[0]);
    for (let i = 1; i < kvs.length; i++) s += "," + keyValueJson(kvs[i]);
    return s + "]" + tail;
  }
  let i = 0;
  let started = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      let chunk = started ? "" : head + ',"kvs":[';
      started = true;
      while (i < kvs.length && chunk.length < STREAM_CHUNK_BYTES) {
        if (i > 0) chunk += ",";
        chunk += keyValueJson(kvs[i++]);
      }
      if (i >= kvs.length) {
        controller.enqueue(encoder.encode(chunk + "]" + tail));
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(chunk));
    },
  });
}

/**
 * A unary endpoint for {@linkcode registerUnary}: decode the request
 * message, execute it, encode the response message.
 */
export interface UnaryEndpoint<Q extends MessageName, R extends MessageName> {
  /** The request message type. */
  request: Q;
  /** The response message type. */
  response: R;
  /**
   * Runs the request against the service layer, which checks it; `signal`
   * aborts when the client goes away before the answer.
   */
  exec: (
    req: MessageTypes[Q],
    signal: AbortSignal,
    creds: Credentials | undefined,
  ) => Promise<MessageTypes[R]>;
  /** Custom body encoding (the default is the codec + JSON.stringify). */
  encode?: (res: MessageTypes[R]) => string | ReadableStream<Uint8Array>;
}

/**
 * The gRPC method behind each unary gateway path (etcd's gateway calls its
 * gRPC server, so these calls count in the grpc_server_* metrics).
 */
const GATEWAY_GRPC_METHODS: Record<string, string> = {
  "/kv/range": "/etcdserverpb.KV/Range",
  "/kv/put": "/etcdserverpb.KV/Put",
  "/kv/deleterange": "/etcdserverpb.KV/DeleteRange",
  "/kv/txn": "/etcdserverpb.KV/Txn",
  "/kv/compaction": "/etcdserverpb.KV/Compact",
  "/maintenance/status": "/etcdserverpb.Maintenance/Status",
  "/maintenance/transfer-leadership": "/etcdserverpb.Maintenance/MoveLeader",
  "/lease/grant": "/etcdserverpb.Lease/LeaseGrant",
  "/lease/revoke": "/etcdserverpb.Lease/LeaseRevoke",
  "/kv/lease/revoke": "/etcdserverpb.Lease/LeaseRevoke",
  "/lease/timetolive": "/etcdserverpb.Lease/LeaseTimeToLive",
  "/kv/lease/timetolive": "/etcdserverpb.Lease/LeaseTimeToLive",
  "/lease/leases": "/etcdserverpb.Lease/LeaseLeases",
  "/kv/lease/leases": "/etcdserverpb.Lease/LeaseLeases",
  "/cluster/member/list": "/etcdserverpb.Cluster/MemberList",
  "/cluster/member/add": "/etcdserverpb.Cluster/MemberAdd",
  "/cluster/member/remove": "/etcdserverpb.Cluster/MemberRemove",
  "/cluster/member/update": "/etcdserverpb.Cluster/MemberUpdate",
  "/cluster/member/promote": "/etcdserverpb.Cluster/MemberPromote",
  "/auth/enable": "/etcdserverpb.Auth/AuthEnable",
  "/auth/disable": "/etcdserverpb.Auth/AuthDisable",
  "/auth/authenticate": "/etcdserverpb.Auth/Authenticate",
  "/auth/user/add": "/etcdserverpb.Auth/UserAdd",
  "/auth/user/get": "/etcdserverpb.Auth/UserGet",
  "/auth/user/list": "/etcdserverpb.Auth/UserList",
  "/auth/user/delete": "/etcdserverpb.Auth/UserDelete",
  "/auth/user/changepw": "/etcdserverpb.Auth/UserChangePassword",
  "/auth/user/grant": "/etcdserverpb.Auth/UserGrantRole",
  "/auth/user/revoke": "/etcdserverpb.Auth/UserRevokeRole",
  "/auth/role/add": "/etcdserverpb.Auth/RoleAdd",
  "/auth/role/get": "/etcdserverpb.Auth/RoleGet",
  "/auth/role/list": "/etcdserverpb.Auth/RoleList",
  "/auth/role/delete": "/etcdserverpb.Auth/RoleDelete",
  "/auth/role/grant": "/etcdserverpb.Auth/RoleGrantPermission",
  "/auth/role/revoke": "/etcdserverpb.Auth/RoleRevokePermission",
  "/lock/lock": "/v3lockpb.Lock/Lock",
  "/lock/unlock": "/v3lockpb.Lock/Unlock",
  "/election/campaign": "/v3electionpb.Election/Campaign",
  "/election/proclaim": "/v3electionpb.Election/Proclaim",
  "/election/leader": "/v3electionpb.Election/Leader",
  "/election/resign": "/v3electionpb.Election/Resign",
};

/**
 * Registers a unary POST endpoint under every gateway prefix (`/v3` and
 * `/v3beta`), with etcd's 405 for other methods. `path` is relative, e.g.
 * `"/kv/range"`. Exported so later services (lease, cluster, auth) register
 * the same way.
 */
export function registerUnary<Q extends MessageName, R extends MessageName>(
  app: Hono,
  path: string,
  endpoint: UnaryEndpoint<Q, R>,
  limits: { maxRequestBytes: number },
): void {
  const method = GATEWAY_GRPC_METHODS[path];
  const counters = method === undefined
    ? undefined
    : metrics.grpcMethod(grpcMethodLabels(method, false, false));
  const grpcMax = limits.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  // A JSON body can be larger than its protobuf form (base64 is 4/3 of
  // the bytes, plus names and quotes): read up to 4× the gRPC limit.
  const bodyCap = 4 * grpcMax;
  const handler = async (c: Context): Promise<Response> => {
    let counted: GrpcMethodMetrics | undefined;
    try {
      const text = await readBody(c.req.raw, bodyCap, grpcMax);
      const req = fromJson(endpoint.request, parseGoJson(text, "decoder"));
      const size = protoSize(endpoint.request, req);
      // etcd's gateway calls its gRPC server, which counts the call.
      counted = counters;
      counters?.started();
      counters?.received(size);
      checkGrpcSize(size, limits.maxRequestBytes);
      const res = await endpoint.exec(req, c.req.raw.signal, credentialsOf(c.req.raw));
      const body = endpoint.encode
        ? endpoint.encode(res)
        : stringifyGo(toJson(endpoint.response, res));
      counters?.sent(-1);
      counters?.handled(GrpcCode.OK);
      return new Response(body, { status: 200, headers: JSON_OK_HEADERS });
    } catch (err) {
      counted?.handled(err instanceof EtcdError ? err.code : GrpcCode.Unknown);
      return errorResponse(err);
    }
  };
  for (const prefix of GATEWAY_PREFIXES) {
    app.post(prefix + path, handler);
    app.all(prefix + path, () => plainText(405, "Method Not Allowed\n"));
  }
}

/**
 * Builds the gateway: a hono app to hand to `Deno.serve`.
 *
 * Routes (each also under `/v3beta/`): POST `/v3/kv/range`, `/v3/kv/put`,
 * `/v3/kv/deleterange`, `/v3/kv/txn`, `/v3/kv/compaction`,
 * `/v3/maintenance/status`, the lease endpoints, `/v3/lock/lock`,
 * `/v3/lock/unlock`, `/v3/election/{campaign,proclaim,leader,resign}`,
 * streaming `/v3/watch`, `/v3/lease/keepalive`, `/v3/election/observe` and
 * `/v3/maintenance/snapshot`
 * (when the service has them); other methods on them → 405
 * `Method Not Allowed`; unknown paths under the prefixes → 404 `Not Found`,
 * elsewhere → 404 `404 page not found` (etcd's texts). `GET /health` reads
 * key `health` through the service: `{"health":"true"}`, or 503
 * `{"health":"false"}` if the read fails or takes longer than
 * `healthTimeoutMs`. `GET /version` →
 * `{"etcdserver":"3.4.0","etcdcluster":"3.4.0","cairn":"<cairnVersion>"}`.
 * `/metrics` (any method, as etcd) when `options.metrics` is given.
 * Every response carries etcd's CORS headers and `OPTIONS` is answered 200.
 *
 * Before calling the service, a request is decoded (Go's JSON errors,
 * jsonpb's type errors) and measured against gRPC's message-size limit, as
 * etcd's gateway and gRPC server do; everything else (API checks, the txn
 * op limit, the proposal-size limit) is the service's.
 */
export function createGateway(service: GatewayService, options: GatewayOptions): Hono {
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const healthTimeoutMs = options.healthTimeoutMs ?? 1000;
  const limits = { maxRequestBytes };
  const app = new Hono();

  app.options("*", () => new Response(null, { status: 200, headers: CORS_HEADERS }));

  registerUnary(app, "/kv/range", {
    request: "RangeRequest",
    response: "RangeResponse",
    exec: (req, _signal, creds) => service.range(req, creds),
    encode: rangeResponseBody,
  }, limits);
  registerUnary(app, "/kv/put", {
    request: "PutRequest",
    response: "PutResponse",
    exec: (req, _signal, creds) => service.put(req, creds),
  }, limits);
  registerUnary(app, "/kv/deleterange", {
    request: "DeleteRangeRequest",
    response: "DeleteRangeResponse",
    exec: (req, _signal, creds) => service.deleteRange(req, creds),
  }, limits);
  registerUnary(app, "/kv/txn", {
    request: "TxnRequest",
    response: "TxnResponse",
    exec: (req, _signal, creds) => service.txn(req, creds),
  }, limits);
  registerUnary(app, "/kv/compaction", {
    request: "CompactionRequest",
    response: "CompactionResponse",
    exec: (req, _signal, creds) => service.compact(req, creds),
  }, limits);
  registerUnary(app, "/maintenance/status", {
    request: "StatusRequest",
    response: "StatusResponse",
    exec: () => service.status(),
  }, limits);
  const maintenance = service.maintenance;
  if (maintenance !== undefined) {
    registerUnary(app, "/maintenance/alarm", {
      request: "AlarmRequest",
      response: "AlarmResponse",
      exec: (req) => maintenance.alarm(req),
    }, limits);
    // etcd 3.4's gateway routes /maintenance/hash to Hash (HashKV's route
    // in its rpc.proto is the same path, so HashKV is unreachable there);
    // HashKV is served at etcd 3.5's /maintenance/hashkv.
    registerUnary(app, "/maintenance/hash", {
      request: "HashRequest",
      response: "HashResponse",
      exec: (_req, _signal, creds) => maintenance.hash(creds),
    }, limits);
    registerUnary(app, "/maintenance/defragment", {
      request: "DefragmentRequest",
      response: "DefragmentResponse",
      exec: (_req, _signal, creds) => maintenance.defragment(creds),
    }, limits);
    registerUnary(app, "/maintenance/hashkv", {
      request: "HashKVRequest",
      response: "HashKVResponse",
      exec: (req, _signal, creds) => maintenance.hashKV(req, creds),
    }, limits);
    const snapshot = (c: Context) => serveSnapshot(c.req.raw, maintenance, limits);
    for (const prefix of GATEWAY_PREFIXES) {
      app.post(prefix + "/maintenance/snapshot", snapshot);
      app.all(prefix + "/maintenance/snapshot", () => plainText(405, "Method Not Allowed\n"));
    }
  }

  const lease = service.lease;
  if (lease !== undefined) {
    // etcd 3.4 serves revoke, timetolive and leases under /kv/lease/ too.
    registerUnary(app, "/lease/grant", {
      request: "LeaseGrantRequest",
      response: "LeaseGrantResponse",
      exec: (req, _signal, creds) => lease.grant(req, creds),
    }, limits);
    for (const base of ["/lease", "/kv/lease"]) {
      registerUnary(app, base + "/revoke", {
        request: "LeaseRevokeRequest",
        response: "LeaseRevokeResponse",
        exec: (req, _signal, creds) => lease.revoke(req, creds),
      }, limits);
      registerUnary(app, base + "/timetolive", {
        request: "LeaseTimeToLiveRequest",
        response: "LeaseTimeToLiveResponse",
        exec: (req, _signal, creds) => lease.timeToLive(req, creds),
      }, limits);
      registerUnary(app, base + "/leases", {
        request: "LeaseLeasesRequest",
        response: "LeaseLeasesResponse",
        exec: () => lease.leases(),
      }, limits);
    }
    const keepAlive = (c: Context) => serveKeepAlive(c.req.raw, lease, limits);
    for (const prefix of GATEWAY_PREFIXES) {
      app.post(prefix + "/lease/keepalive", keepAlive);
      app.all(prefix + "/lease/keepalive", () => plainText(405, "Method Not Allowed\n"));
    }
  }

  const lock = service.lock;
  if (lock !== undefined) {
    registerUnary(app, "/lock/lock", {
      request: "LockRequest",
      response: "LockResponse",
      exec: (req, signal, creds) => lock.lock(req, signal, creds),
    }, limits);
    registerUnary(app, "/lock/unlock", {
      request: "UnlockRequest",
      response: "UnlockResponse",
      exec: (req, _signal, creds) => lock.unlock(req, creds),
    }, limits);
  }

  const election = service.election;
  if (election !== undefined) {
    registerUnary(app, "/election/campaign", {
      request: "CampaignRequest",
      response: "CampaignResponse",
      exec: (req, signal, creds) => election.campaign(req, signal, creds),
    }, limits);
    registerUnary(app, "/election/proclaim", {
      request: "ProclaimRequest",
      response: "ProclaimResponse",
      exec: (req, _signal, creds) => election.proclaim(req, creds),
    }, limits);
    registerUnary(app, "/election/leader", {
      request: "LeaderRequest",
      response: "LeaderResponse",
      exec: (req, _signal, creds) => election.leader(req, creds),
    }, limits);
    registerUnary(app, "/election/resign", {
      request: "ResignRequest",
      response: "ResignResponse",
      exec: (req, _signal, creds) => election.resign(req, creds),
    }, limits);
    const observe = (c: Context) => serveObserve(c.req.raw, election, limits);
    for (const prefix of GATEWAY_PREFIXES) {
      app.post(prefix + "/election/observe", observe);
      app.all(prefix + "/election/observe", () => plainText(405, "Method Not Allowed\n"));
    }
  }

  const auth = service.auth;
  if (auth !== undefined) {
    registerUnary(app, "/auth/enable", {
      request: "AuthEnableRequest",
      response: "AuthEnableResponse",
      exec: (_req, _signal, creds) => auth.authEnable(undefined, creds),
    }, limits);
    registerUnary(app, "/auth/disable", {
      request: "AuthDisableRequest",
      response: "AuthDisableResponse",
      exec: (_req, _signal, creds) => auth.authDisable(undefined, creds),
    }, limits);
    registerUnary(app, "/auth/authenticate", {
      request: "AuthenticateRequest",
      response: "AuthenticateResponse",
      exec: (req) => auth.authenticate(req),
    }, limits);
    registerUnary(app, "/auth/user/add", {
      request: "AuthUserAddRequest",
      response: "AuthUserAddResponse",
      exec: (req, _signal, creds) => auth.userAdd(req, creds),
    }, limits);
    registerUnary(app, "/auth/user/get", {
      request: "AuthUserGetRequest",
      response: "AuthUserGetResponse",
      exec: (req, _signal, creds) => auth.userGet(req, creds),
    }, limits);
    registerUnary(app, "/auth/user/list", {
      request: "AuthUserListRequest",
      response: "AuthUserListResponse",
      exec: (_req, _signal, creds) => auth.userList(undefined, creds),
    }, limits);
    registerUnary(app, "/auth/user/delete", {
      request: "AuthUserDeleteRequest",
      response: "AuthUserDeleteResponse",
      exec: (req, _signal, creds) => auth.userDelete(req, creds),
    }, limits);
    registerUnary(app, "/auth/user/changepw", {
      request: "AuthUserChangePasswordRequest",
      response: "AuthUserChangePasswordResponse",
      exec: (req, _signal, creds) => auth.userChangePassword(req, creds),
    }, limits);
    registerUnary(app, "/auth/user/grant", {
      request: "AuthUserGrantRoleRequest",
      response: "AuthUserGrantRoleResponse",
      exec: (req, _signal, creds) => auth.userGrantRole(req, creds),
    }, limits);
    registerUnary(app, "/auth/user/revoke", {
      request: "AuthUserRevokeRoleRequest",
      response: "AuthUserRevokeRoleResponse",
      exec: (req, _signal, creds) => auth.userRevokeRole(req, creds),
    }, limits);
    registerUnary(app, "/auth/role/add", {
      request: "AuthRoleAddRequest",
      response: "AuthRoleAddResponse",
      exec: (req, _signal, creds) => auth.roleAdd(req, creds),
    }, limits);
    registerUnary(app, "/auth/role/get", {
      request: "AuthRoleGetRequest",
      response: "AuthRoleGetResponse",
      exec: (req, _signal, creds) => auth.roleGet(req, creds),
    }, limits);
    registerUnary(app, "/auth/role/list", {
      request: "AuthRoleListRequest",
      response: "AuthRoleListResponse",
      exec: (_req, _signal, creds) => auth.roleList(undefined, creds),
    }, limits);
    registerUnary(app, "/auth/role/delete", {
      request: "AuthRoleDeleteRequest",
      response: "AuthRoleDeleteResponse",
      exec: (req, _signal, creds) => auth.roleDelete(req, creds),
    }, limits);
    registerUnary(app, "/auth/role/grant", {
      request: "AuthRoleGrantPermissionRequest",
      response: "AuthRoleGrantPermissionResponse",
      exec: (req, _signal, creds) => auth.roleGrantPermission(req, creds),
    }, limits);
    registerUnary(app, "/auth/role/revoke", {
      request: "AuthRoleRevokePermissionRequest",
      response: "AuthRoleRevokePermissionResponse",
      exec: (req, _signal, creds) => auth.roleRevokePermission(req, creds),
    }, limits);
  }

  const cluster = service.cluster;
  if (cluster !== undefined) {
    registerUnary(app, "/cluster/member/list", {
      request: "MemberListRequest",
      response: "MemberListResponse",
      exec: () => cluster.memberList(),
    }, limits);
    registerUnary(app, "/cluster/member/add", {
      request: "MemberAddRequest",
      response: "MemberAddResponse",
      exec: (req, _signal, creds) => cluster.memberAdd(req, creds),
    }, limits);
    registerUnary(app, "/cluster/member/remove", {
      request: "MemberRemoveRequest",
      response: "MemberRemoveResponse",
      exec: (req, _signal, creds) => cluster.memberRemove(req, creds),
    }, limits);
    registerUnary(app, "/cluster/member/update", {
      request: "MemberUpdateRequest",
      response: "MemberUpdateResponse",
      exec: (req, _signal, creds) => cluster.memberUpdate(req, creds),
    }, limits);
    registerUnary(app, "/cluster/member/promote", {
      request: "MemberPromoteRequest",
      response: "MemberPromoteResponse",
      exec: (req, _signal, creds) => cluster.memberPromote(req, creds),
    }, limits);
    registerUnary(app, "/maintenance/transfer-leadership", {
      request: "MoveLeaderRequest",
      response: "MoveLeaderResponse",
      exec: (req) => cluster.moveLeader(req),
    }, limits);
  }

  const openWatch = service.openWatch?.bind(service);
  if (openWatch !== undefined) {
    const handler = (c: Context) =>
      serveWatch(c.req.raw, openWatch(credentialsOf(c.req.raw)), limits);
    for (const prefix of GATEWAY_PREFIXES) {
      app.post(prefix + "/watch", handler);
      app.all(prefix + "/watch", () => plainText(405, "Method Not Allowed\n"));
    }
  }

  // etcd answers only GET on these (hono would also route HEAD here).
  const notGet = (c: Context) =>
    c.req.method === "GET" ? undefined : plainText(405, "Method Not Allowed\n", { Allow: "GET" });
  app.get("/health", (c) => notGet(c) ?? healthResponse(service, healthTimeoutMs));
  const scrape = options.metrics;
  if (scrape !== undefined) app.all("/metrics", () => metricsResponse(scrape));
  app.get("/version", (c) =>
    notGet(c) ?? new Response(
      stringifyGo({
        etcdserver: ETCD_API_VERSION,
        etcdcluster: ETCD_API_VERSION,
        cairn: options.cairnVersion,
      }),
      { status: 200, headers: JSON_ERROR_HEADERS },
    ));
  for (const path of ["/health", "/version"]) {
    app.all(path, () => plainText(405, "Method Not Allowed\n", { Allow: "GET" }));
  }

  app.notFound((c) => {
    const p = c.req.path;
    if (GATEWAY_PREFIXES.some((prefix) => p.startsWith(prefix + "/"))) {
      return plainText(404, "Not Found\n");
    }
    return plainText(404, "404 page not found\n");
  });
  return app;
}

/**
 * etcd's `/health`: reads key `health` through the service; `{"health":"true"}`
 * (200), or `{"health":"false"}` (503) if the read fails (other than being
 * refused for want of a user, with auth on) or takes longer than
 * `timeoutMs` milliseconds.
 */
async function healthResponse(
  service: Pick<KVService, "range">,
  timeoutMs: number,
): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let healthy: boolean;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("health check timed out")), timeoutMs);
    });
    await Promise.race([service.range({ key: encoder.encode("health") }), timeout]);
    healthy = true;
  } catch (err) {
    // With auth on, the anonymous probe is refused by a member that answers:
    // healthy, as etcd 3.4's probe (a v2 read, outside v3 auth) is.
    healthy = err instanceof EtcdError && err.message === Errors.UserEmpty().message;
  } finally {
    clearTimeout(timer);
  }
  return new Response(`{"health":"${healthy}"}`, {
    status: healthy ? 200 : 503,
    headers: { ...CORS_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
  });
}

/** `/metrics`: the text exposition of the member's metrics (any method, as etcd's promhttp). */
async function metricsResponse(scrape: () => Promise<string>): Promise<Response> {
  try {
    return new Response(await scrape(), {
      status: 200,
      headers: { "Content-Type": METRICS_CONTENT_TYPE },
    });
  } catch (err) {
    log.warn("metrics scrape failed", { error: err });
    return plainText(500, `An error has occurred while serving metrics:\n\n${err}\n`);
  }
}

/**
 * etcd's `--listen-metrics-urls` listener: `/metrics` (see
 * {@linkcode GatewayOptions.metrics}) and `GET /health` (as on the client
 * URLs); anything else is 404 `404 page not found`.
 */
export function createMetricsApp(
  service: Pick<KVService, "range">,
  scrape: () => Promise<string>,
  options: { healthTimeoutMs?: number } = {},
): Hono {
  const app = new Hono();
  const timeoutMs = options.healthTimeoutMs ?? 1000;
  app.all("/metrics", () => metricsResponse(scrape));
  app.get(
    "/health",
    (c) =>
      c.req.method === "GET"
        ? healthResponse(service, timeoutMs)
        : plainText(405, "Method Not Allowed\n", { Allow: "GET" }),
  );
  app.all("/health", () => plainText(405, "Method Not Allowed\n", { Allow: "GET" }));
  app.notFound(() => plainText(404, "404 page not found\n"));
  return app;
}

/**
 * Reads a streaming request body as Go's `json.Decoder` does: one message
 * after the other, each parsed and decoded as `type` when it is complete.
 */
class MessageReader<K extends "WatchRequest" | "LeaseKeepAliveRequest"> {
  readonly #type: K;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #text = "";
  #done: boolean;

  constructor(type: K, body: ReadableStream<Uint8Array> | null) {
    this.#type = type;
    this.#reader = body?.getReader();
    this.#done = body === null;
  }

  /**
   * The next message, or undefined at the end of the body.
   *
   * @throws {EtcdError} Go's JSON error or jsonpb's decoding error, or
   *   gRPC's size error past the limits.
   */
  async next(maxRequestBytes: number): Promise<MessageTypes[K] | undefined> {
    for (;;) {
      const req = this.buffered(maxRequestBytes);
      if (req !== undefined) return req;
      if (this.#done) return undefined;
      const { done, value } = await this.#reader!.read();
      if (done) {
        this.#done = true;
        this.#text += this.#decoder.decode();
      } else {
        this.#text += this.#decoder.decode(value, { stream: true });
        if (this.#text.length > MAX_STREAM_REQUEST_BUFFER_BYTES) {
          throw Errors.MessageTooLarge(this.#text.length, maxRequestBytes + GRPC_OVERHEAD_BYTES);
        }
      }
    }
  }

  /**
   * The next message if all of it has been read already, else undefined
   * (without waiting for more of the body).
   *
   * @throws {EtcdError} as {@linkcode MessageReader.next}.
   */
  buffered(maxRequestBytes: number): MessageTypes[K] | undefined {
    let end = -1;
    try {
      end = firstValueEnd(this.#text);
    } catch (err) {
      // A message cut short may be completed by the next chunk.
      if (this.#done || !(err instanceof EtcdError) || err.message !== "unexpected EOF") {
        throw err;
      }
    }
    if (end < 0) return undefined;
    const text = this.#text.slice(0, end);
    this.#text = this.#text.slice(end);
    const req = fromJson(this.#type, parseGoJson(text, "decoder"));
    checkGrpcSize(protoSize(this.#type, req), maxRequestBytes);
    return req;
  }

  /** Stop reading the body. */
  cancel(): void {
    this.#done = true;
    this.#reader?.cancel().catch(() => {});
  }
}

/**
 * POST /v3/watch, as etcd 3.4's gateway serves its bidirectional Watch
 * stream: the body holds concatenated WatchRequest messages, each handled in
 * order as it arrives; the response streams one `{"result":…}` line per
 * WatchResponse and stays open after the body ends. A first message that
 * cannot be read is answered with HTTP 500 and gRPC code 2 (the gateway's
 * error for a failed stream); a later one ends the reading of requests,
 * and the stream goes on. The stream ends when the client goes away or the
 * server stops.
 */
async function serveWatch(
  req: Request,
  session: WatchStreamHandle,
  limits: { maxRequestBytes: number },
): Promise<Response> {
  const reader = new MessageReader("WatchRequest", req.body);
  let first: WatchRequest | undefined;
  try {
    first = await reader.next(limits.maxRequestBytes);
  } catch (err) {
    reader.cancel();
    session.close();
    const message = err instanceof Error ? err.message : String(err);
    return errorResponse(new EtcdError(message, GrpcCode.Unknown));
  }
  const pump = async () => {
    try {
      let next = first;
      while (next !== undefined) {
        await session.request(next);
        next = await reader.next(limits.maxRequestBytes);
      }
    } catch (err) {
      // etcd's gateway stops sending after a bad message; the stream stays.
      if (!(err instanceof EtcdError)) {
        log.warn("watch stream request failed", { error: err });
      }
      reader.cancel();
    }
  };
  void pump();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const first = await session.next();
      if (first === undefined) {
        reader.cancel();
        controller.close();
        return;
      }
      let text = '{"result":' + watchResponseJson(first) + "}\n";
      for (let r = session.take(); r !== undefined; r = session.take()) {
        text += '{"result":' + watchResponseJson(r) + "}\n";
        if (text.length >= STREAM_CHUNK_BYTES) break;
      }
      controller.enqueue(encoder.encode(text));
    },
    cancel() {
      reader.cancel();
      session.close();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: JSON_OK_HEADERS });
}

/**
 * POST /v3/lease/keepalive, as etcd 3.4's gateway serves the bidirectional
 * LeaseKeepAlive stream: each LeaseKeepAliveRequest of the body is answered
 * with one `{"result":…}` line as it arrives; the response ends after the
 * body does. A first message that cannot be read gets HTTP 500, code 2;
 * a later one ends the stream.
 */
async function serveKeepAlive(
  req: Request,
  lease: LeaseService,
  limits: { maxRequestBytes: number },
): Promise<Response> {
  const reader = new MessageReader("LeaseKeepAliveRequest", req.body);
  let first: LeaseKeepAliveRequest | undefined;
  try {
    first = await reader.next(limits.maxRequestBytes);
  } catch (err) {
    reader.cancel();
    const message = err instanceof Error ? err.message : String(err);
    return errorResponse(new EtcdError(message, GrpcCode.Unknown));
  }
  // An empty body: etcd's gateway answers an empty stream, without gRPC's header.
  if (first === undefined) return new Response("", { status: 200, headers: JSON_ERROR_HEADERS });
  let next: LeaseKeepAliveRequest | undefined = first;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next === undefined) {
        controller.close();
        return;
      }
      // The requests already read are renewed together, answered in order.
      const batch = [next];
      let bad = false;
      try {
        for (let r = reader.buffered(limits.maxRequestBytes); r !== undefined;) {
          batch.push(r);
          if (batch.length >= MAX_KEEPALIVE_BATCH) break;
          r = reader.buffered(limits.maxRequestBytes);
        }
      } catch {
        bad = true; // etcd's gateway stops reading at a bad message
      }
      try {
        const answers = await Promise.all(batch.map((r) => lease.keepAlive(r)));
        let text = "";
        for (const res of answers) {
          text += '{"result":' + stringifyGo(toJson("LeaseKeepAliveResponse", res)) + "}\n";
        }
        controller.enqueue(encoder.encode(text));
        next = bad ? undefined : await reader.next(limits.maxRequestBytes);
      } catch (err) {
        // A bad later message or a failed renewal ends the stream.
        if (!(err instanceof EtcdError)) log.warn("lease keep-alive stream failed", { error: err });
        next = undefined;
      }
      if (next === undefined) {
        reader.cancel();
        controller.close();
      }
    },
    cancel() {
      reader.cancel();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: JSON_OK_HEADERS });
}

/**
 * POST /v3/election/observe, as etcd 3.4's gateway serves the
 * server-streaming Observe: the body is one LeaderRequest (read and checked
 * as a unary request's: a bad one gets the unary error answer); the
 * response streams one `{"result":LeaderResponse}` line each time the
 * leader changes, until the client goes away. When the service ends the
 * iteration (a failed read, a canceled watch) the response ends, as etcd's
 * Observe ends its stream without an error then.
 */
async function serveObserve(
  req: Request,
  election: ElectionService,
  limits: { maxRequestBytes: number },
): Promise<Response> {
  const grpcMax = limits.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  let request: LeaderRequest;
  try {
    const text = await readBody(req, 4 * grpcMax, grpcMax);
    request = fromJson("LeaderRequest", parseGoJson(text, "decoder"));
    checkGrpcSize(protoSize("LeaderRequest", request), limits.maxRequestBytes);
  } catch (err) {
    return errorResponse(err);
  }
  const abort = new AbortController();
  const responses = election.observe(request, abort.signal, credentialsOf(req))
    [Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await responses.next();
        if (r.done) {
          controller.close();
          return;
        }
        const line = '{"result":' + stringifyGo(toJson("LeaderResponse", r.value)) + "}\n";
        controller.enqueue(encoder.encode(line));
      } catch (err) {
        log.warn("election observe stream failed", { error: err });
        controller.close();
      }
    },
    cancel() {
      abort.abort();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: JSON_OK_HEADERS });
}

/** Go's `http.StatusText` for the statuses gRPC codes map to (grpc-gateway's stream errors name it). */
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * grpc-gateway v1's frame for an error in a server stream (etcd 3.4):
 * `{"error":{"grpc_code":N,"http_code":H,"message":M,"http_status":T}}`.
 */
function streamErrorFrame(err: unknown): { frame: string; httpStatus: number } {
  let e: EtcdError;
  if (err instanceof EtcdError) e = err;
  else {
    log.error("snapshot stream failed", { error: err });
    e = new EtcdError(err instanceof Error ? err.message : String(err), GrpcCode.Unknown);
  }
  const frame = stringifyGo({
    error: {
      grpc_code: e.code,
      http_code: e.httpStatus,
      message: e.message,
      http_status: STATUS_TEXT[e.httpStatus] ?? "",
    },
  });
  return { frame, httpStatus: e.httpStatus };
}

/**
 * POST /v3/maintenance/snapshot, as etcd 3.4's gateway serves the
 * server-streaming Maintenance.Snapshot: the body is one SnapshotRequest
 * (read and checked as a unary request's: a bad one gets the unary error
 * answer); the response streams one `{"result":SnapshotResponse}` line per
 * message: the store's copy in chunks (`remaining_bytes` counting down,
 * `blob` base64), then its SHA-256 as the last `blob`. An error before the
 * first message is answered with its HTTP status and grpc-gateway's
 * `{"error":{…}}` frame; a later one ends the stream with that frame. The
 * copy is removed when the client goes away.
 */
async function serveSnapshot(
  req: Request,
  maintenance: Pick<MaintenanceService, "snapshot">,
  limits: { maxRequestBytes: number },
): Promise<Response> {
  const grpcMax = limits.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  try {
    const text = await readBody(req, 4 * grpcMax, grpcMax);
    const request = fromJson("SnapshotRequest", parseGoJson(text, "decoder"));
    checkGrpcSize(protoSize("SnapshotRequest", request), limits.maxRequestBytes);
  } catch (err) {
    return errorResponse(err);
  }
  const abort = new AbortController();
  const chunks = maintenance.snapshot(abort.signal, credentialsOf(req))[Symbol.asyncIterator]();
  let first: IteratorResult<SnapshotResponse>;
  try {
    first = await chunks.next();
  } catch (err) {
    const { frame, httpStatus } = streamErrorFrame(err);
    return new Response(frame, { status: httpStatus, headers: JSON_OK_HEADERS });
  }
  let pending: IteratorResult<SnapshotResponse> | undefined = first;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = pending ?? await chunks.next();
        pending = undefined;
        if (r.done) {
          controller.close();
          return;
        }
        const line = '{"result":' + stringifyGo(toJson("SnapshotResponse", r.value)) + "}\n";
        controller.enqueue(encoder.encode(line));
      } catch (err) {
        controller.enqueue(encoder.encode(streamErrorFrame(err).frame));
        controller.close();
      }
    },
    async cancel() {
      abort.abort();
      await chunks.return?.();
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: JSON_OK_HEADERS });
}
