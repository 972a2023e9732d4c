/**
 * etcd's gRPC API on @grpc/grpc-js: the services of etcd 3.4's rpc.proto
 * (KV, Watch, Lease, Cluster, Maintenance, Auth), v3lock.Lock and
 * v3election.Election, with etcd's method paths, status codes and messages.
 *
 * A transport only, like the JSON gateway: each RPC decodes its protobuf
 * request (core/api/proto.ts, driven by the same message table as the
 * gateway's JSON codec), applies gRPC's receive-size limit as etcd's server
 * does, calls the service layer (server/etcdserver/) and encodes its answer,
 * or sends its `EtcdError` as the gRPC status (code and message as etcd's).
 *
 * The server is not bound to a port: {@linkcode GrpcTransport.injector}
 * takes the HTTP/2 connections that server/client_port.ts tells apart from
 * the gateway's HTTP/1.1 ones on the shared client port.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Errors, EtcdError, GrpcCode } from "../../core/errors.ts";
import type { MessageName, MessageTypes } from "../../core/api/codec.ts";
import { decodeMessage, encodeMessage } from "../../core/api/proto.ts";
import type {
  Credentials,
  LeaseKeepAliveRequest,
  WatchRequest,
  WatchStreamHandle,
} from "../../core/api/types.ts";
import { checkGrpcSize, type GatewayService } from "../gateway/mod.ts";
import { DEFAULT_MAX_REQUEST_BYTES } from "../config.ts";
import {
  GRPC_MAX_RECEIVE_FACTOR,
  GRPC_OVERHEAD_BYTES,
  MAX_KEEPALIVE_BATCH,
} from "../../core/limits.ts";
import { invariant } from "../../core/invariant.ts";
import { log } from "../log.ts";
import { grpcMethodLabels, metrics } from "../metrics.ts";
import type { MaintenanceService } from "../etcdserver/maintenance.ts";
import { peerCommonName } from "../client_identity.ts";

/** What the gRPC services call: the gateway's service surface plus Maintenance. */
export type GrpcService = GatewayService & {
  /** Whether this member knows a leader (for the `hasleader` metadata). */
  hasLeader?: () => Promise<boolean>;
};

/** Options of {@linkcode createGrpcTransport}. */
export interface GrpcOptions {
  /**
   * etcd's `--max-request-bytes` (default 1572864): a request whose protobuf
   * encoding is over this + 512 KiB fails with ResourceExhausted
   * `grpc: received message larger than max (N vs. M)`, as etcd's server.
   */
  maxRequestBytes?: number;
}

/** The gRPC server of a member and the door its connections come in by. */
export interface GrpcTransport {
  /** Hands an accepted HTTP/2 connection to the server. */
  injector: grpc.ConnectionInjector;
  /** Stop: end every call and connection. */
  close(): void;
}

type Handler = grpc.UntypedHandleCall;
type Kind = "unary" | "serverStream" | "clientStream" | "bidi";

/** gRPC status of an error: an `EtcdError` keeps its code and message; anything else is Unknown. */
export function grpcStatus(err: unknown): grpc.ServiceError {
  let code: GrpcCode;
  let message: string;
  if (err instanceof EtcdError) {
    code = err.code;
    message = err.message;
  } else {
    log.error("unexpected error serving a gRPC call", {
      error: err,
      stack: err instanceof Error ? err.stack : undefined,
    });
    code = GrpcCode.Unknown;
    message = err instanceof Error ? err.message : String(err);
  }
  return Object.assign(new Error(message), {
    code: code as number as grpc.status,
    details: message,
    metadata: new grpc.Metadata(),
  });
}

/** The raw request bytes as received (decoded by the handler, which owns the errors). */
const identity = (b: Buffer): Buffer => b;
const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * Decodes one request message after gRPC's receive-size check.
 *
 * @throws {EtcdError} ResourceExhausted `grpc: received message larger than
 *   max (N vs. M)` past the limit; Internal `grpc: error unmarshalling
 *   request: …` for bytes that are not the message (grpc-go's texts).
 */
function decodeRequest<K extends MessageName>(
  type: K,
  bytes: Buffer,
  maxRequestBytes: number,
): MessageTypes[K] {
  checkGrpcSize(bytes.length, maxRequestBytes);
  try {
    return decodeMessage(type, bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new EtcdError(`grpc: error unmarshalling request: ${reason}`, GrpcCode.Internal);
  }
}

/**
 * Ends a stream with the error's status (grpc-js sends a stream's `error`
 * event as its status, then ends it).
 */
function fail(call: { emit(event: "error", err: grpc.ServiceError): boolean }, err: unknown): void {
  call.emit("error", grpcStatus(err));
}

/** The signal of calls that need none: it never aborts. */
const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** A signal that aborts when the call is cancelled (the client went away or gave up). */
function callSignal(
  call: { cancelled: boolean; once(event: "cancelled", listener: () => void): unknown },
): AbortSignal {
  const abort = new AbortController();
  if (call.cancelled) abort.abort();
  else call.once("cancelled", () => abort.abort());
  return abort.signal;
}

/** Writes to a server stream, waiting while its buffer is over its high-water mark. */
async function write(
  call: grpc.ServerWritableStream<unknown, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>,
  bytes: Uint8Array,
): Promise<void> {
  if (call.write(asBuffer(bytes))) return;
  if (call.cancelled || call.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.once("cancelled", done);
    call.once("close", done);
  });
}

/**
 * go-grpc-prometheus' server metrics, as etcd counts them: a call started,
 * each message received and sent (etcd_network_client_grpc_*_bytes_total:
 * their protobuf sizes), the call handled with its status code.
 */
const metricsInterceptor: grpc.ServerInterceptor = (method, call) => {
  const m = metrics.grpcMethod(
    grpcMethodLabels(method.path, method.requestStream, method.responseStream),
  );
  return new grpc.ServerInterceptingCall(call, {
    start: (next) => {
      m.started();
      next({
        onReceiveMessage: (message: Buffer, forward: (message: Buffer) => void) => {
          m.received(message.byteLength);
          forward(message);
        },
      });
    },
    sendMessage: (message: Buffer, next: (message: Buffer) => void) => {
      m.sent(message.byteLength);
      next(message);
    },
    sendStatus: (status, next) => {
      m.handled(status.code ?? GrpcCode.Unknown);
      next(status);
    },
  });
};

/**
 * The credentials of a call: the `token` metadata, or else `authorization`
 * (etcd reads both, in this order); without either, the common name of its
 * client certificate, with --client-cert-auth.
 */
export function grpcCredentials(
  call: { metadata: grpc.Metadata; getPeer(): string },
): Credentials | undefined {
  const token = call.metadata.get("token")[0] ?? call.metadata.get("authorization")[0];
  // The verified client certificate's CN (server/client_identity.ts).
  const commonName = peerCommonName(call.getPeer());
  if (token === undefined) return commonName === undefined ? undefined : { commonName };
  return { token: typeof token === "string" ? token : new TextDecoder().decode(token) };
}

/**
 * Builds the gRPC server: registers every RPC cairn serves, each calling
 * `service`. RPCs of services the member lacks, and etcd RPCs cairn does
 * not serve yet, answer Unimplemented as a gRPC server answers an unknown
 * method.
 */
export function createGrpcTransport(
  service: GrpcService,
  options: GrpcOptions = {},
): GrpcTransport {
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const maxRecv = maxRequestBytes + GRPC_OVERHEAD_BYTES;
  invariant(maxRecv > 0, "gRPC's receive limit is positive");
  const server = new grpc.Server({
    // grpc-js's own cap is a bound on what is buffered; the limit etcd
    // answers is applied per message by decodeRequest, with etcd's text.
    "grpc.max_receive_message_length": maxRecv * GRPC_MAX_RECEIVE_FACTOR,
    "grpc.max_send_message_length": -1,
    // No channelz bookkeeping per call (cairn exposes no channelz service).
    "grpc.enable_channelz": 0,
    interceptors: [metricsInterceptor],
  });

  const register = (path: string, kind: Kind, handler: Handler) => {
    const ok = server.register(path, handler, identity, identity, kind);
    invariant(ok, `gRPC method ${path} is registered once`);
    // Every registered method's series start at zero, as go-grpc-prometheus's.
    const requestStream = kind === "bidi" || kind === "clientStream";
    const responseStream = kind === "bidi" || kind === "serverStream";
    metrics.grpcMethod(grpcMethodLabels(path, requestStream, responseStream), true);
  };

  /**
   * A unary RPC: decode, execute, encode, or the error's status. A
   * `cancellable` one (a lock or campaign that waits) gets a signal that
   * aborts when the client goes away; the others a signal that never does.
   */
  const unary = <Q extends MessageName, R extends MessageName>(
    path: string,
    request: Q,
    response: R,
    exec: (
      req: MessageTypes[Q],
      signal: AbortSignal,
      creds: Credentials | undefined,
    ) => Promise<MessageTypes[R]>,
    options: { cancellable?: boolean } = {},
  ) => {
    const cancellable = options.cancellable === true;
    const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      let req: MessageTypes[Q];
      try {
        req = decodeRequest(request, call.request, maxRequestBytes);
      } catch (err) {
        callback(grpcStatus(err));
        return;
      }
      exec(req, cancellable ? callSignal(call) : NEVER_ABORTED, grpcCredentials(call)).then(
        (res) => callback(null, asBuffer(encodeMessage(response, res))),
        (err) => callback(grpcStatus(err)),
      );
    };
    register(path, "unary", handler as Handler);
  };

  // --- KV ---
  unary(
    "/etcdserverpb.KV/Range",
    "RangeRequest",
    "RangeResponse",
    (r, _s, c) => service.range(r, c),
  );
  unary("/etcdserverpb.KV/Put", "PutRequest", "PutResponse", (r, _s, c) => service.put(r, c));
  unary(
    "/etcdserverpb.KV/DeleteRange",
    "DeleteRangeRequest",
    "DeleteRangeResponse",
    (r, _s, c) => service.deleteRange(r, c),
  );
  unary("/etcdserverpb.KV/Txn", "TxnRequest", "TxnResponse", (r, _s, c) => service.txn(r, c));
  unary(
    "/etcdserverpb.KV/Compact",
    "CompactionRequest",
    "CompactionResponse",
    (r, _s, c) => service.compact(r, c),
  );

  // --- Watch ---
  const openWatch = service.openWatch?.bind(service);
  if (openWatch !== undefined) {
    register(
      "/etcdserverpb.Watch/Watch",
      "bidi",
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        void serveWatch(call, openWatch, service, maxRequestBytes);
      }) as Handler,
    );
  }

  // --- Lease ---
  const lease = service.lease;
  if (lease !== undefined) {
    unary(
      "/etcdserverpb.Lease/LeaseGrant",
      "LeaseGrantRequest",
      "LeaseGrantResponse",
      (r, _s, c) => lease.grant(r, c),
    );
    unary(
      "/etcdserverpb.Lease/LeaseRevoke",
      "LeaseRevokeRequest",
      "LeaseRevokeResponse",
      (r, _s, c) => lease.revoke(r, c),
    );
    unary(
      "/etcdserverpb.Lease/LeaseTimeToLive",
      "LeaseTimeToLiveRequest",
      "LeaseTimeToLiveResponse",
      (r, _s, c) => lease.timeToLive(r, c),
    );
    unary(
      "/etcdserverpb.Lease/LeaseLeases",
      "LeaseLeasesRequest",
      "LeaseLeasesResponse",
      () => lease.leases(),
    );
    register(
      "/etcdserverpb.Lease/LeaseKeepAlive",
      "bidi",
      ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        void serveKeepAlive(call, (r) => lease.keepAlive(r), maxRequestBytes);
      }) as Handler,
    );
  }

  // --- Cluster and Maintenance.MoveLeader ---
  const cluster = service.cluster;
  if (cluster !== undefined) {
    unary(
      "/etcdserverpb.Cluster/MemberAdd",
      "MemberAddRequest",
      "MemberAddResponse",
      (r, _s, c) => cluster.memberAdd(r, c),
    );
    unary(
      "/etcdserverpb.Cluster/MemberRemove",
      "MemberRemoveRequest",
      "MemberRemoveResponse",
      (r, _s, c) => cluster.memberRemove(r, c),
    );
    unary(
      "/etcdserverpb.Cluster/MemberUpdate",
      "MemberUpdateRequest",
      "MemberUpdateResponse",
      (r, _s, c) => cluster.memberUpdate(r, c),
    );
    unary(
      "/etcdserverpb.Cluster/MemberList",
      "MemberListRequest",
      "MemberListResponse",
      () => cluster.memberList(),
    );
    unary(
      "/etcdserverpb.Cluster/MemberPromote",
      "MemberPromoteRequest",
      "MemberPromoteResponse",
      (r, _s, c) => cluster.memberPromote(r, c),
    );
    unary(
      "/etcdserverpb.Maintenance/MoveLeader",
      "MoveLeaderRequest",
      "MoveLeaderResponse",
      (r) => cluster.moveLeader(r),
    );
  }

  // --- Maintenance ---
  unary(
    "/etcdserverpb.Maintenance/Status",
    "StatusRequest",
    "StatusResponse",
    () => service.status(),
  );
  const maintenance = service.maintenance;
  if (maintenance !== undefined) {
    unary(
      "/etcdserverpb.Maintenance/Alarm",
      "AlarmRequest",
      "AlarmResponse",
      (r) => maintenance.alarm(r),
    );
    unary(
      "/etcdserverpb.Maintenance/HashKV",
      "HashKVRequest",
      "HashKVResponse",
      (r, _s, c) => maintenance.hashKV(r, c),
    );
    unary(
      "/etcdserverpb.Maintenance/Defragment",
      "DefragmentRequest",
      "DefragmentResponse",
      (_r, _s, c) => maintenance.defragment(c),
    );
    unary(
      "/etcdserverpb.Maintenance/Hash",
      "HashRequest",
      "HashResponse",
      (_r, _s, c) => maintenance.hash(c),
    );
    register(
      "/etcdserverpb.Maintenance/Snapshot",
      "serverStream",
      ((call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        void serveSnapshot(call, maintenance, maxRequestBytes);
      }) as Handler,
    );
  }

  // --- v3lock.Lock ---
  const lock = service.lock;
  if (lock !== undefined) {
    unary("/v3lockpb.Lock/Lock", "LockRequest", "LockResponse", (r, s, c) => lock.lock(r, s, c), {
      cancellable: true,
    });
    unary(
      "/v3lockpb.Lock/Unlock",
      "UnlockRequest",
      "UnlockResponse",
      (r, _s, c) => lock.unlock(r, c),
    );
  }

  // --- v3election.Election ---
  const election = service.election;
  if (election !== undefined) {
    unary(
      "/v3electionpb.Election/Campaign",
      "CampaignRequest",
      "CampaignResponse",
      (r, s, c) => election.campaign(r, s, c),
      { cancellable: true },
    );
    unary(
      "/v3electionpb.Election/Proclaim",
      "ProclaimRequest",
      "ProclaimResponse",
      (r, _s, c) => election.proclaim(r, c),
    );
    unary(
      "/v3electionpb.Election/Leader",
      "LeaderRequest",
      "LeaderResponse",
      (r, _s, c) => election.leader(r, c),
    );
    unary(
      "/v3electionpb.Election/Resign",
      "ResignRequest",
      "ResignResponse",
      (r, _s, c) => election.resign(r, c),
    );
    register(
      "/v3electionpb.Election/Observe",
      "serverStream",
      ((call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        void serveObserve(call, election, maxRequestBytes);
      }) as Handler,
    );
  }

  // --- Auth (without a service: authentication is not enabled, as on a fresh etcd) ---
  const auth = service.auth;
  if (auth !== undefined) {
    unary(
      "/etcdserverpb.Auth/AuthEnable",
      "AuthEnableRequest",
      "AuthEnableResponse",
      (_r, _s, c) => auth.authEnable(undefined, c),
    );
    unary(
      "/etcdserverpb.Auth/AuthDisable",
      "AuthDisableRequest",
      "AuthDisableResponse",
      (_r, _s, c) => auth.authDisable(undefined, c),
    );
    unary(
      "/etcdserverpb.Auth/Authenticate",
      "AuthenticateRequest",
      "AuthenticateResponse",
      (r) => auth.authenticate(r),
    );
    unary(
      "/etcdserverpb.Auth/UserAdd",
      "AuthUserAddRequest",
      "AuthUserAddResponse",
      (r, _s, c) => auth.userAdd(r, c),
    );
    unary(
      "/etcdserverpb.Auth/UserGet",
      "AuthUserGetRequest",
      "AuthUserGetResponse",
      (r, _s, c) => auth.userGet(r, c),
    );
    unary(
      "/etcdserverpb.Auth/UserList",
      "AuthUserListRequest",
      "AuthUserListResponse",
      (_r, _s, c) => auth.userList(undefined, c),
    );
    unary(
      "/etcdserverpb.Auth/UserDelete",
      "AuthUserDeleteRequest",
      "AuthUserDeleteResponse",
      (r, _s, c) => auth.userDelete(r, c),
    );
    unary(
      "/etcdserverpb.Auth/UserChangePassword",
      "AuthUserChangePasswordRequest",
      "AuthUserChangePasswordResponse",
      (r, _s, c) => auth.userChangePassword(r, c),
    );
    unary(
      "/etcdserverpb.Auth/UserGrantRole",
      "AuthUserGrantRoleRequest",
      "AuthUserGrantRoleResponse",
      (r, _s, c) => auth.userGrantRole(r, c),
    );
    unary(
      "/etcdserverpb.Auth/UserRevokeRole",
      "AuthUserRevokeRoleRequest",
      "AuthUserRevokeRoleResponse",
      (r, _s, c) => auth.userRevokeRole(r, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleAdd",
      "AuthRoleAddRequest",
      "AuthRoleAddResponse",
      (r, _s, c) => auth.roleAdd(r, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleGet",
      "AuthRoleGetRequest",
      "AuthRoleGetResponse",
      (r, _s, c) => auth.roleGet(r, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleList",
      "AuthRoleListRequest",
      "AuthRoleListResponse",
      (_r, _s, c) => auth.roleList(undefined, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleDelete",
      "AuthRoleDeleteRequest",
      "AuthRoleDeleteResponse",
      (r, _s, c) => auth.roleDelete(r, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleGrantPermission",
      "AuthRoleGrantPermissionRequest",
      "AuthRoleGrantPermissionResponse",
      (r, _s, c) => auth.roleGrantPermission(r, c),
    );
    unary(
      "/etcdserverpb.Auth/RoleRevokePermission",
      "AuthRoleRevokePermissionRequest",
      "AuthRoleRevokePermissionResponse",
      (r, _s, c) => auth.roleRevokePermission(r, c),
    );
  } else {
    unary(
      "/etcdserverpb.Auth/Authenticate",
      "AuthenticateRequest",
      "AuthenticateResponse",
      () => Promise.reject(Errors.AuthNotEnabled()),
    );
  }

  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  return {
    injector,
    close() {
      injector.destroy();
      server.forceShutdown();
    },
  };
}

/**
 * The Watch stream: each WatchRequest is handled in order as it arrives;
 * every WatchResponse of the session is written as it comes, waiting for
 * the client when its buffer is full (the session holds a bounded backlog
 * and cancels a watcher that falls too far behind). With the `hasleader`
 * metadata, a member without a leader refuses the stream with etcd's
 * `etcdserver: no leader`. A request that cannot be decoded ends the stream
 * with its status.
 */
async function serveWatch(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  openWatch: (creds?: Credentials) => WatchStreamHandle,
  service: GrpcService,
  maxRequestBytes: number,
): Promise<void> {
  if (call.metadata.get("hasleader")[0] === "true" && service.hasLeader !== undefined) {
    try {
      if (!(await service.hasLeader())) throw Errors.NoLeader();
    } catch (err) {
      fail(call, err);
      return;
    }
  }
  const session = openWatch(grpcCredentials(call));
  let ended = false;
  const end = (err?: unknown) => {
    if (ended) return;
    ended = true;
    session.close();
    if (err !== undefined) fail(call, err);
    else if (!call.cancelled) call.end();
  };
  call.once("cancelled", () => end());
  call.once("error", () => end());
  // Requests in order: each is handled before the next is read.
  let queue: Promise<void> = Promise.resolve();
  call.on("data", (bytes: Buffer) => {
    let req: WatchRequest;
    try {
      req = decodeRequest("WatchRequest", bytes, maxRequestBytes);
    } catch (err) {
      end(err);
      return;
    }
    queue = queue.then(() => session.request(req)).catch((err) => end(err));
  });
  // The client closing its side leaves the stream open, as etcd's does.
  call.on("end", () => {});
  try {
    for (;;) {
      const res = await session.next();
      if (res === undefined || ended) break;
      await write(call, encodeMessage("WatchResponse", res));
      for (let r = session.take(); r !== undefined && !ended; r = session.take()) {
        await write(call, encodeMessage("WatchResponse", r));
      }
    }
    end();
  } catch (err) {
    end(err);
  }
}

/**
 * The LeaseKeepAlive stream: each request is answered in order (requests
 * already received are renewed together, at most MAX_KEEPALIVE_BATCH); the
 * response side ends when the client ends its side. A renewal that fails
 * (no leader, a timeout) ends the stream with its status, as etcd's.
 */
async function serveKeepAlive(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  keepAlive: (req: LeaseKeepAliveRequest) => Promise<MessageTypes["LeaseKeepAliveResponse"]>,
  maxRequestBytes: number,
): Promise<void> {
  const pending: LeaseKeepAliveRequest[] = [];
  let clientDone = false;
  let failed = false;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  call.on("data", (bytes: Buffer) => {
    if (failed) return;
    try {
      pending.push(decodeRequest("LeaseKeepAliveRequest", bytes, maxRequestBytes));
    } catch (err) {
      failed = true;
      fail(call, err);
    }
    // A client that sends faster than renewals complete is slowed by HTTP/2 flow control.
    if (pending.length >= MAX_KEEPALIVE_BATCH) call.pause();
    signal();
  });
  call.on("end", () => {
    clientDone = true;
    signal();
  });
  call.once("cancelled", () => {
    failed = true;
    signal();
  });
  for (;;) {
    if (failed) return;
    if (pending.length === 0) {
      if (clientDone) break;
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    const batch = pending.splice(0, MAX_KEEPALIVE_BATCH);
    call.resume();
    try {
      const answers = await Promise.all(batch.map(keepAlive));
      for (const res of answers) await write(call, encodeMessage("LeaseKeepAliveResponse", res));
    } catch (err) {
      failed = true;
      fail(call, err);
      return;
    }
  }
  if (!call.cancelled) call.end();
}

/**
 * Election.Observe: the leader now and at each change, until the client
 * goes away; when the service ends the iteration the stream ends without
 * an error, as etcd's.
 */
async function serveObserve(
  call: grpc.ServerWritableStream<Buffer, Buffer>,
  election: NonNullable<GatewayService["election"]>,
  maxRequestBytes: number,
): Promise<void> {
  let req: MessageTypes["LeaderRequest"];
  try {
    req = decodeRequest("LeaderRequest", call.request, maxRequestBytes);
  } catch (err) {
    fail(call, err);
    return;
  }
  const signal = callSignal(call);
  try {
    for await (const res of election.observe(req, signal, grpcCredentials(call))) {
      if (signal.aborted) return;
      await write(call, encodeMessage("LeaderResponse", res));
    }
    if (!call.cancelled) call.end();
  } catch (err) {
    if (!call.cancelled) fail(call, err);
  }
}

/**
 * Maintenance.Snapshot: the member's consistent copy in chunks, then its
 * SHA-256, as etcd sends it (see {@linkcode MaintenanceService.snapshot}).
 */
async function serveSnapshot(
  call: grpc.ServerWritableStream<Buffer, Buffer>,
  maintenance: MaintenanceService,
  maxRequestBytes: number,
): Promise<void> {
  try {
    decodeRequest("SnapshotRequest", call.request, maxRequestBytes);
    const signal = callSignal(call);
    for await (const chunk of maintenance.snapshot(signal, grpcCredentials(call))) {
      if (signal.aborted) return;
      await write(call, encodeMessage("SnapshotResponse", chunk));
    }
    if (!call.cancelled) call.end();
  } catch (err) {
    if (!call.cancelled) fail(call, err);
  }
}
