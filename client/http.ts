/**
 * What the client's unary calls and its watch streams share: the gateway's
 * error bodies turned back into {@linkcode EtcdError}s, how a failed fetch
 * is classified (never sent, or maybe executed), proto3 zero values filled
 * into decoded responses, and endpoint URL normalisation.
 *
 * @module
 */

import { Errors, EtcdError, GrpcCode } from "../core/errors.ts";
import { type MessageName, type MessageTypes, SCHEMA, zeroOf } from "../core/api/codec.ts";

/**
 * An endpoint could not be reached, or the connection failed mid-request
 * (code Unavailable). `notExecuted` is true when the request provably never
 * reached the server (connection refused or not opened), so that even a
 * write may be sent again.
 */
export class ConnectionError extends EtcdError {
  /** The request provably did not reach a server. */
  readonly notExecuted: boolean;
  /** `message` names the endpoint and the transport error. */
  constructor(message: string, notExecuted: boolean) {
    super(message, GrpcCode.Unavailable);
    this.name = "ConnectionError";
    this.notExecuted = notExecuted;
  }
}

/**
 * Whether a fetch rejection happened before the request could reach the
 * server. Deno reports `TypeError: fetch failed` with the transport error
 * as `cause` (e.g. `client error (Connect): tcp connect error: Connection
 * refused`), so the whole cause chain is inspected. A TLS handshake the
 * server refused (no client certificate, or one it does not trust: in TLS
 * 1.3 the client learns it from an alert after it may have sent the
 * request, which the server never read) and a server certificate the
 * client does not trust count as never sent.
 */
export function isConnectFailure(e: unknown): boolean {
  return /\(Connect\)|tcp connect error|connection refused|dns error|failed to lookup|are blocked|invalid peer certificate|received fatal alert: (CertificateRequired|BadCertificate|UnknownCA|CertificateUnknown|UnsupportedCertificate|CertificateRevoked|CertificateExpired|AccessDenied|HandshakeFailure)/i
    .test(errorChain(e));
}

/** An error's message followed by its causes' messages. */
export function errorChain(e: unknown): string {
  const parts: string[] = [];
  for (let cur = e, depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    parts.push(String((cur as Error).message ?? cur));
    cur = (cur as Error).cause;
  }
  return parts.join(": ");
}

/** Fills the proto zero value into every absent scalar and repeated field. */
export function withDefaults<K extends MessageName>(
  type: K,
  msg: MessageTypes[K],
): MessageTypes[K] {
  fill(type, msg as unknown as Record<string, unknown>);
  return msg;
}

function fill(type: MessageName, m: Record<string, unknown>): void {
  for (const f of SCHEMA[type].fields) {
    const v = m[f.name];
    if (f.message !== undefined) {
      if (Array.isArray(v)) {
        for (const e of v) fill(f.message, e as Record<string, unknown>);
      } else if (v !== undefined && v !== null) fill(f.message, v as Record<string, unknown>);
      else if (f.repeated) m[f.name] = [];
      continue;
    }
    if (f.oneof !== undefined) continue;
    if (v === undefined || v === null) m[f.name] = f.repeated ? [] : zeroOf(f);
  }
}

/**
 * Rebuilds an EtcdError from a gateway error body: a unary call's
 * `{error, message, code}`, or the `{"error":{grpc_code, message, …}}`
 * frame grpc-gateway v1 answers when a server stream fails before its first
 * message.
 */
export function errorFromBody(json: unknown, status: number, text: string): EtcdError {
  if (json !== null && typeof json === "object") {
    const b = json as { error?: unknown; message?: unknown; code?: unknown };
    if (b.error !== null && typeof b.error === "object") {
      const e = b.error as { grpc_code?: unknown; message?: unknown };
      if (typeof e.message === "string") {
        const code = typeof e.grpc_code === "number" ? e.grpc_code : codeFromHttp(status);
        return new EtcdError(e.message, code as GrpcCode, status);
      }
    }
    const message = typeof b.message === "string"
      ? b.message
      : typeof b.error === "string"
      ? b.error
      : undefined;
    if (message !== undefined) {
      const code = typeof b.code === "number" ? b.code : codeFromHttp(status);
      return new EtcdError(message, code as GrpcCode, status);
    }
  }
  return new EtcdError(
    `unexpected HTTP status ${status}: ${text.trim()}`,
    codeFromHttp(status),
    status,
  );
}

export function codeFromHttp(status: number): GrpcCode {
  switch (status) {
    case 400:
      return GrpcCode.InvalidArgument;
    case 401:
      return GrpcCode.Unauthenticated;
    case 403:
      return GrpcCode.PermissionDenied;
    case 404:
      return GrpcCode.NotFound;
    case 409:
      return GrpcCode.Aborted;
    case 412:
      return GrpcCode.FailedPrecondition;
    case 429:
      return GrpcCode.ResourceExhausted;
    case 501:
      return GrpcCode.Unimplemented;
    case 503:
      return GrpcCode.Unavailable;
    case 408:
    case 504:
      return GrpcCode.DeadlineExceeded;
    default:
      return GrpcCode.Unknown;
  }
}

/** `host:port` → `http://host:port`; a trailing slash is dropped. */
export function normalizeEndpoint(ep: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(ep) ? ep : `http://${ep}`;
  return url.replace(/\/+$/, "");
}

/**
 * Answers after which a client with credentials authenticates again and
 * sends the request once more (clientv3 3.4's `shouldRefreshToken`): an
 * expired or unknown token (simple tokens are member-local), a token older
 * than the auth store's last change, and no token while auth is on.
 */
export const RENEW_TOKEN_ERRORS: ReadonlySet<string> = new Set([
  Errors.InvalidAuthToken().message,
  Errors.AuthOldRevision().message,
  Errors.UserEmpty().message,
]);
