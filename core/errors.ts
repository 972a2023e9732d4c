/**
 * The etcd error catalogue: every error cairn returns to a client, with the
 * exact message etcd 3.4 sends, its gRPC status code and the HTTP status the
 * JSON gateway (grpc-gateway v1) maps that code to. Clients match on these
 * strings (clientv3 `rpctypes/error.go`), so they never change.
 *
 * @module
 */

/** gRPC status codes (google.golang.org/grpc/codes). */
export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

/** A gRPC status code number, 0–16. */
export type GrpcCode = typeof GrpcCode[keyof typeof GrpcCode];

/**
 * HTTP status for a gRPC code, as grpc-gateway v1 (`runtime.HTTPStatusFromCode`)
 * maps it in etcd 3.4.
 */
export function httpStatusFromCode(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK:
      return 200;
    case GrpcCode.Canceled:
      return 408;
    case GrpcCode.Unknown:
      return 500;
    case GrpcCode.InvalidArgument:
      return 400;
    case GrpcCode.DeadlineExceeded:
      return 408;
    case GrpcCode.NotFound:
      return 404;
    case GrpcCode.AlreadyExists:
      return 409;
    case GrpcCode.PermissionDenied:
      return 403;
    case GrpcCode.Unauthenticated:
      return 401;
    case GrpcCode.ResourceExhausted:
      return 429;
    case GrpcCode.FailedPrecondition:
      return 412;
    case GrpcCode.Aborted:
      return 409;
    case GrpcCode.OutOfRange:
      return 400;
    case GrpcCode.Unimplemented:
      return 501;
    case GrpcCode.Internal:
      return 500;
    case GrpcCode.Unavailable:
      return 503;
    case GrpcCode.DataLoss:
      return 500;
  }
  return 500;
}

/**
 * An error with etcd's wire identity. `message` is the exact text etcd sends
 * (for example `etcdserver: key is not provided`); `code` is the gRPC status
 * code and `httpStatus` the gateway's HTTP status for it.
 */
export class EtcdError extends Error {
  /** gRPC status code. */
  readonly code: GrpcCode;
  /** HTTP status the JSON gateway answers with. */
  readonly httpStatus: number;

  /** An error with etcd's `message`; `httpStatus` defaults to the gateway's status for `code`. */
  constructor(message: string, code: GrpcCode, httpStatus: number = httpStatusFromCode(code)) {
    super(message);
    this.name = "EtcdError";
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

function def(message: string, code: GrpcCode): () => EtcdError {
  return () => new EtcdError(message, code);
}

/**
 * Constructors for each catalogued error (a fresh instance each call, so
 * stacks point at the thrower). Names follow etcd's `ErrGRPC*` variables.
 */
export const Errors = {
  /** A put, range or delete without a key. */
  EmptyKey: def("etcdserver: key is not provided", GrpcCode.InvalidArgument),
  /** A read or compaction at a revision at or below the compacted revision. */
  Compacted: def("etcdserver: mvcc: required revision has been compacted", GrpcCode.OutOfRange),
  /** A read or compaction at a revision above the current revision. */
  FutureRev: def("etcdserver: mvcc: required revision is a future revision", GrpcCode.OutOfRange),
  /** A put or revoke that names a lease that does not exist. */
  LeaseNotFound: def("etcdserver: requested lease not found", GrpcCode.NotFound),
  /** A grant with an ID already in use. */
  LeaseExist: def("etcdserver: lease already exists", GrpcCode.FailedPrecondition),
  /** A grant with a TTL above 9,000,000,000 s. */
  LeaseTTLTooLarge: def("etcdserver: too large lease TTL", GrpcCode.OutOfRange),
  /** A txn branch that writes one key twice. */
  DuplicateKey: def("etcdserver: duplicate key given in txn request", GrpcCode.InvalidArgument),
  /** A txn with more compares or ops than --max-txn-ops. */
  TooManyOps: def("etcdserver: too many operations in txn request", GrpcCode.InvalidArgument),
  /** A request larger than --max-request-bytes. */
  RequestTooLarge: def("etcdserver: request is too large", GrpcCode.InvalidArgument),
  /**
   * A key longer than storage takes (cairn only: about 1.9 KiB, see
   * native/README.md; etcd takes keys up to the request size).
   */
  KeyTooLarge: def("etcdserver: key is too large", GrpcCode.InvalidArgument),
  /** ignore_value on a key that does not exist. */
  KeyNotFound: def("etcdserver: key not found", GrpcCode.InvalidArgument),
  /** ignore_value together with a value. */
  ValueProvided: def("etcdserver: value is provided", GrpcCode.InvalidArgument),
  /** ignore_lease together with a lease. */
  LeaseProvided: def("etcdserver: lease is provided", GrpcCode.InvalidArgument),
  /** A write while the NOSPACE alarm is active. */
  NoSpace: def("etcdserver: mvcc: database space exceeded", GrpcCode.ResourceExhausted),
  /** A write while the CORRUPT alarm is active. */
  Corrupt: def("etcdserver: corrupt cluster", GrpcCode.DataLoss),
  /** Apply lags commit by more than 5000 entries. */
  TooManyRequests: def("etcdserver: too many requests", GrpcCode.ResourceExhausted),
  /** No leader is known. */
  NoLeader: def("etcdserver: no leader", GrpcCode.Unavailable),
  /** The leader changed while the request was in flight. */
  LeaderChanged: def("etcdserver: leader changed", GrpcCode.Unavailable),
  /** The request was not committed in time. */
  Timeout: def("etcdserver: request timed out", GrpcCode.Unavailable),
  /** The server is shutting down. */
  Stopped: def("etcdserver: server stopped", GrpcCode.Unavailable),
  /** Member URLs that do not parse. */
  BadMemberURLs: def("etcdserver: given member URLs are invalid", GrpcCode.InvalidArgument),
  /** An unknown member ID. */
  MemberNotFound: def("etcdserver: member not found", GrpcCode.NotFound),
  /** Promotion of a member that is not a learner. */
  MemberNotLearner: def(
    "etcdserver: can only promote a learner member",
    GrpcCode.FailedPrecondition,
  ),
  /** A member added with peer URLs another member has. */
  PeerURLExists: def("etcdserver: Peer URLs already exists", GrpcCode.FailedPrecondition),
  /** Promotion of a learner whose log is not close enough to the leader's. */
  LearnerNotReady: def(
    "etcdserver: can only promote a learner member which is in sync with leader",
    GrpcCode.FailedPrecondition,
  ),
  /** A leader-only request (MoveLeader) sent to a follower. */
  NotLeader: def("etcdserver: not leader", GrpcCode.FailedPrecondition),
  /** Authenticate while authentication is disabled (etcd's ErrGRPCAuthNotEnabled). */
  AuthNotEnabled: def("etcdserver: authentication is not enabled", GrpcCode.FailedPrecondition),
  /** Auth enable without a `root` user (ErrGRPCRootUserNotExist). */
  RootUserNotExist: def("etcdserver: root user does not exist", GrpcCode.FailedPrecondition),
  /** Auth enable while the `root` user lacks the `root` role (ErrGRPCRootRoleNotExist). */
  RootRoleNotExist: def(
    "etcdserver: root user does not have root role",
    GrpcCode.FailedPrecondition,
  ),
  /** UserAdd of a name that exists (ErrGRPCUserAlreadyExist). */
  UserAlreadyExist: def("etcdserver: user name already exists", GrpcCode.FailedPrecondition),
  /** UserAdd without a name; a request without a user while auth is on (ErrGRPCUserEmpty). */
  UserEmpty: def("etcdserver: user name is empty", GrpcCode.InvalidArgument),
  /** A user operation on a name that does not exist (ErrGRPCUserNotFound). */
  UserNotFound: def("etcdserver: user name not found", GrpcCode.FailedPrecondition),
  /** RoleAdd of a name that exists (ErrGRPCRoleAlreadyExist). */
  RoleAlreadyExist: def("etcdserver: role name already exists", GrpcCode.FailedPrecondition),
  /** A role operation on (or a grant of) a role that does not exist (ErrGRPCRoleNotFound). */
  RoleNotFound: def("etcdserver: role name not found", GrpcCode.FailedPrecondition),
  /** RoleAdd without a name (ErrGRPCRoleEmpty). */
  RoleEmpty: def("etcdserver: role name is empty", GrpcCode.InvalidArgument),
  /** Authenticate with an unknown user or a wrong password (ErrGRPCAuthFailed). */
  AuthFailed: def(
    "etcdserver: authentication failed, invalid user ID or password",
    GrpcCode.InvalidArgument,
  ),
  /**
   * Authenticate as a user added with `no_password` (etcd 3.4 passes its
   * auth store's error through unmapped: gRPC Unknown, HTTP 500).
   */
  NoPasswordUser: def(
    "auth: authentication failed, password was given for no password user",
    GrpcCode.Unknown,
  ),
  /**
   * Authenticate on a `jwt` member given only a public key (etcd 3.4 passes
   * its auth store's ErrVerifyOnly through unmapped: gRPC Unknown, HTTP 500).
   */
  AuthVerifyOnly: def("auth: token signing attempted with verify-only key", GrpcCode.Unknown),
  /**
   * Authenticate on a `jwt` member whose ES sign method and EC key are of
   * different curves (golang-jwt's ErrInvalidKey, passed through unmapped).
   */
  JwtInvalidKey: def("key is invalid", GrpcCode.Unknown),
  /** A request the user's roles do not permit (ErrGRPCPermissionDenied). */
  PermissionDenied: def("etcdserver: permission denied", GrpcCode.PermissionDenied),
  /** UserRevokeRole of a role the user does not have (ErrGRPCRoleNotGranted). */
  RoleNotGranted: def("etcdserver: role is not granted to the user", GrpcCode.FailedPrecondition),
  /** RoleRevokePermission of a range the role has no permission on (ErrGRPCPermissionNotGranted). */
  PermissionNotGranted: def(
    "etcdserver: permission is not granted to the role",
    GrpcCode.FailedPrecondition,
  ),
  /** An unknown or expired token (ErrGRPCInvalidAuthToken). */
  InvalidAuthToken: def("etcdserver: invalid auth token", GrpcCode.Unauthenticated),
  /**
   * While auth is on: deleting the root user or role, or revoking the root
   * role from the root user (ErrGRPCInvalidAuthMgmt).
   */
  InvalidAuthMgmt: def("etcdserver: invalid auth management", GrpcCode.InvalidArgument),
  /** A token issued before the auth store last changed (ErrGRPCAuthOldRevision). */
  AuthOldRevision: def("etcdserver: revision of auth store is old", GrpcCode.InvalidArgument),
  /** Leader transfer to a member that cannot take it. */
  BadLeaderTransferee: def("etcdserver: bad leader transferee", GrpcCode.FailedPrecondition),
  /**
   * A message over the transport limit (max request bytes + 512 KiB), as the
   * gRPC layer words it: `grpc: received message larger than max (N vs. M)`.
   */
  MessageTooLarge: (size: number, max: number): EtcdError =>
    new EtcdError(
      `grpc: received message larger than max (${size} vs. ${max})`,
      GrpcCode.ResourceExhausted,
    ),
  /**
   * A Lock whose key was deleted (its lease ended) before it got the lock
   * (clientv3/concurrency's ErrSessionExpired, from etcd 3.5; a plain error,
   * so gRPC Unknown).
   */
  SessionExpired: def("mutex: session is expired", GrpcCode.Unknown),
  /** Proclaim (or Campaign) by a candidate whose key is no longer the one it campaigned with. */
  ElectionNotLeader: def("election: not leader", GrpcCode.Unknown),
  /** Leader of an election nobody holds. */
  ElectionNoLeader: def("election: no leader", GrpcCode.Unknown),
  /** Proclaim or Resign without a `leader`. */
  MissingLeaderKey: def('"leader" field must be provided', GrpcCode.Unknown),
  /** A request whose client went away (Go's `context.Canceled`). */
  Canceled: def("context canceled", GrpcCode.Canceled),
  /** Malformed request input (bad JSON, bad base64, unknown enum value). */
  InvalidArgument: (message: string): EtcdError => new EtcdError(message, GrpcCode.InvalidArgument),
} as const;

/**
 * An error as a Go gRPC client prints it (`status.Error(...).Error()`):
 * `rpc error: code = <Code> desc = <message>`, e.g. etcd 3.4's cancel
 * reason of a watch it refuses.
 */
export function grpcErrorText(err: EtcdError): string {
  const name = Object.entries(GrpcCode).find(([, code]) => code === err.code)?.[0] ?? "Unknown";
  return `rpc error: code = ${name} desc = ${err.message}`;
}
