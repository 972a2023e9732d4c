/**
 * The server's flags: etcd's names, defaults and `ETCD_*` environment
 * variables, in one table. A flag on the command line wins over its
 * environment variable, as in etcd.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { invariant } from "../core/invariant.ts";
import {
  DEFAULT_AUTH_TOKEN_TTL_S,
  DEFAULT_BCRYPT_COST,
  DEFAULT_JWT_TTL_MS,
  MAX_HTTP_WORKERS,
  MAX_TXN_DEPTH,
} from "../core/limits.ts";
import { cipherSuiteById, parseCipherSuites } from "./cipher_suites.ts";
import { isLogLevel, type LogLevel } from "./log.ts";
import {
  isJwtSignMethod,
  JwtKeyError,
  type JwtSignMethod,
  JwtTokens,
} from "../core/auth/jwt_token.ts";
import { goOsError } from "../core/go_os_error.ts";

/** etcd's default `--max-request-bytes`: 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1572864;
/** etcd's default backend quota (`--quota-backend-bytes` 0): 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd's default `--max-txn-ops`. */
export const DEFAULT_MAX_TXN_OPS = 128;
// With the default --max-txn-ops, etcd's own rule (at most --max-txn-ops + 1
// levels of txn nesting) is the one clients meet, not cairn's depth bound.
invariant(
  DEFAULT_MAX_TXN_OPS + 1 <= MAX_TXN_DEPTH,
  "the nesting etcd's default --max-txn-ops allows fits in MAX_TXN_DEPTH",
);

/** A server flag: its etcd name, type, default and help text. */
interface FlagSpec {
  type: "string" | "number" | "boolean";
  default: string | number | boolean;
  help: string;
  /** Parsed and validated as etcd does, but not acted on yet (logged as such at start-up). */
  compatOnly?: true;
}

/** Every server flag cairn takes, by etcd's name. */
export const FLAGS = {
  "config-file": {
    type: "string",
    default: "",
    help:
      "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.",
  },
  "name": { type: "string", default: "default", help: "Human-readable name for this member." },
  "data-dir": {
    type: "string",
    default: "${name}.cairn",
    help: "Path to the data directory.",
  },
  "listen-client-urls": {
    type: "string",
    default: "http://localhost:2379",
    help: "List of URLs to listen on for client traffic.",
  },
  "listen-client-http-urls": {
    type: "string",
    default: "",
    help:
      "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.",
  },
  "listen-metrics-urls": {
    type: "string",
    default: "",
    help: "List of URLs to listen on for the metrics and health endpoints.",
  },
  "advertise-client-urls": {
    type: "string",
    default: "http://localhost:2379",
    help: "List of this member's client URLs to advertise to the public.",
  },
  "cert-file": { type: "string", default: "", help: "Path to the client server TLS cert file." },
  "key-file": { type: "string", default: "", help: "Path to the client server TLS key file." },
  "client-cert-auth": {
    type: "boolean",
    default: false,
    help: "Enable client cert authentication.",
  },
  "trusted-ca-file": {
    type: "string",
    default: "",
    help: "Path to the client server TLS trusted CA cert file.",
  },
  "auto-tls": {
    type: "boolean",
    default: false,
    help: "Client TLS using generated certificates.",
  },
  "client-crl-file": {
    type: "string",
    default: "",
    help: "Path to the client certificate revocation list file.",
  },
  "client-cert-allowed-hostname": {
    type: "string",
    default: "",
    help: "Allowed TLS hostname for client cert authentication.",
  },
  "peer-cert-file": { type: "string", default: "", help: "Path to the peer server TLS cert file." },
  "peer-key-file": { type: "string", default: "", help: "Path to the peer server TLS key file." },
  "peer-client-cert-auth": {
    type: "boolean",
    default: false,
    help: "Enable peer client cert authentication.",
  },
  "peer-trusted-ca-file": {
    type: "string",
    default: "",
    help: "Path to the peer server TLS trusted CA file.",
  },
  "peer-auto-tls": {
    type: "boolean",
    default: false,
    help: "Peer TLS using generated certificates.",
  },
  "peer-crl-file": {
    type: "string",
    default: "",
    help: "Path to the peer certificate revocation list file.",
  },
  "peer-cert-allowed-cn": {
    type: "string",
    default: "",
    help: "Allowed CN for inter peer authentication.",
  },
  "peer-cert-allowed-hostname": {
    type: "string",
    default: "",
    help: "Allowed TLS hostname for inter peer authentication.",
  },
  "cipher-suites": {
    type: "string",
    default: "",
    help:
      "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).",
  },
  "listen-peer-urls": {
    type: "string",
    default: "http://localhost:2380",
    help: "List of URLs to listen on for peer traffic.",
  },
  "initial-advertise-peer-urls": {
    type: "string",
    default: "http://localhost:2380",
    help: "List of this member's peer URLs to advertise to the rest of the cluster.",
  },
  "initial-cluster": {
    type: "string",
    default: "",
    help:
      "Initial cluster configuration for bootstrapping (default: name=initial-advertise-peer-urls).",
  },
  "initial-cluster-state": {
    type: "string",
    default: "new",
    help: "Initial cluster state ('new' or 'existing').",
  },
  "initial-cluster-token": {
    type: "string",
    default: "etcd-cluster",
    help: "Initial cluster token for the etcd cluster during bootstrap.",
  },
  "heartbeat-interval": {
    type: "number",
    default: 100,
    help: "Time (in milliseconds) of a heartbeat interval.",
  },
  "election-timeout": {
    type: "number",
    default: 1000,
    help: "Time (in milliseconds) for an election to timeout.",
  },
  "snapshot-count": {
    type: "number",
    default: 100000,
    help:
      "Number of committed transactions to trigger a snapshot to disk. (cairn: applied entries after which the Raft log and WAL are compacted, keeping 5000.)",
  },
  "quota-backend-bytes": {
    type: "number",
    default: 0,
    help: "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).",
  },
  "max-request-bytes": {
    type: "number",
    default: DEFAULT_MAX_REQUEST_BYTES,
    help: "Maximum client request size in bytes the server will accept.",
  },
  "max-txn-ops": {
    type: "number",
    default: DEFAULT_MAX_TXN_OPS,
    help: "Maximum number of operations permitted in a transaction.",
  },
  "auto-compaction-mode": {
    type: "string",
    default: "periodic",
    help: "Interpret 'auto-compaction-retention' one of: periodic|revision.",
  },
  "auto-compaction-retention": {
    type: "string",
    default: "0",
    help: "Auto compaction retention for mvcc key value store. 0 means disable auto compaction.",
  },
  "experimental-corrupt-check-time": {
    type: "string",
    default: "0s",
    help: "Duration of time between cluster corruption check passes.",
  },
  "experimental-watch-progress-notify-interval": {
    type: "string",
    default: "10m0s",
    help: "Duration of periodic watch progress notifications.",
  },
  "http-workers": {
    type: "number",
    default: 2,
    help:
      "cairn: HTTP worker threads per client URL, sharing the port with SO_REUSEPORT (0 serves from the main thread). Uses Deno's unstable net API, which deno.json enables.",
  },
  "experimental-warning-apply-duration": {
    type: "string",
    default: "100ms",
    help: "Warning is generated if requests take more than this duration.",
  },
  "auth-token": {
    type: "string",
    default: "simple",
    help:
      "Specify a v3 authentication token type and its options ('simple' or 'jwt'). jwt takes etcd's options: 'jwt,pub-key=…,priv-key=…,sign-method=RS256|ES256|…,ttl=…'.",
  },
  "auth-token-ttl": {
    type: "number",
    default: DEFAULT_AUTH_TOKEN_TTL_S,
    help: "The lifetime in seconds of the auth token.",
  },
  "bcrypt-cost": {
    type: "number",
    default: DEFAULT_BCRYPT_COST,
    help:
      "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.",
  },
  "logger": {
    type: "string",
    default: "zap",
    help:
      "Specify 'zap' for structured logging or 'capnslog'. [WARN] 'capnslog' will be deprecated in v3.5. (cairn: always writes zap's JSON lines; 'capnslog' is accepted with etcd's deprecation warning and etcd's checks of --log-outputs.)",
  },
  "log-outputs": {
    type: "string",
    default: "default",
    help:
      "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets. (cairn: 'default' and 'systemd/journal' write to stderr, which systemd passes to the journal.)",
  },
  "log-level": {
    type: "string",
    default: "info",
    help: "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
  },
  "debug": {
    type: "boolean",
    default: false,
    help:
      "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead.",
  },
  "wal-dir": { type: "string", default: "", help: "Path to the dedicated wal directory." },
  "pre-vote": {
    type: "boolean",
    default: true,
    help:
      "Enable to run an additional Raft election phase. (cairn: on unless --pre-vote=false; etcd 3.4 has it off by default, etcd 3.5 on.)",
  },
  "max-concurrent-streams": {
    type: "number",
    default: 4294967295,
    help: "Maximum concurrent streams that each client can open at a time.",
    compatOnly: true,
  },
  // Accepted with etcd's types and defaults so that etcd's command lines and
  // ETCD_* environments start cairn; not acted on (logged as such at start).
  "max-snapshots": {
    type: "number",
    default: 5,
    help: "Maximum number of snapshot files to retain (0 is unlimited).",
    compatOnly: true,
  },
  "max-wals": {
    type: "number",
    default: 5,
    help: "Maximum number of wal files to retain (0 is unlimited).",
    compatOnly: true,
  },
  "strict-reconfig-check": {
    type: "boolean",
    default: true,
    help: "Reject reconfiguration requests that would cause quorum loss.",
    compatOnly: true,
  },
  "initial-election-tick-advance": {
    type: "boolean",
    default: true,
    help: "Whether to fast-forward initial election ticks on boot for faster election.",
    compatOnly: true,
  },
  "grpc-keepalive-min-time": {
    type: "string",
    default: "5s",
    help: "Minimum duration interval that a client should wait before pinging server.",
    compatOnly: true,
  },
  "grpc-keepalive-interval": {
    type: "string",
    default: "2h",
    help:
      "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).",
    compatOnly: true,
  },
  "grpc-keepalive-timeout": {
    type: "string",
    default: "20s",
    help: "Additional duration of wait before closing a non-responsive connection (0 to disable).",
    compatOnly: true,
  },
  "cors": {
    type: "string",
    default: "*",
    help:
      "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).",
    compatOnly: true,
  },
  "host-whitelist": {
    type: "string",
    default: "*",
    help:
      "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).",
    compatOnly: true,
  },
  "enable-pprof": {
    type: "boolean",
    default: false,
    help:
      'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"',
    compatOnly: true,
  },
  "metrics": {
    type: "string",
    default: "basic",
    help:
      "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.",
    compatOnly: true,
  },
  "log-package-levels": {
    type: "string",
    default: "",
    help:
      "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').",
    compatOnly: true,
  },
  "backend-batch-interval": {
    type: "string",
    default: "",
    help: "BackendBatchInterval is the maximum time before commit the backend transaction.",
    compatOnly: true,
  },
  "backend-batch-limit": {
    type: "number",
    default: 0,
    help: "BackendBatchLimit is the maximum operations before commit the backend transaction.",
    compatOnly: true,
  },
  "experimental-initial-corrupt-check": {
    type: "boolean",
    default: false,
    help:
      "Enable to check data corruption before serving any client/peer traffic. (cairn: before serving clients.)",
  },
  "experimental-enable-lease-checkpoint": {
    type: "boolean",
    default: false,
    help:
      "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.",
    compatOnly: true,
  },
  "experimental-compaction-batch-limit": {
    type: "number",
    default: 1000,
    help:
      "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.",
    compatOnly: true,
  },
  "experimental-backend-bbolt-freelist-type": {
    type: "string",
    default: "array",
    help:
      "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).",
    compatOnly: true,
  },
  "experimental-peer-skip-client-san-verification": {
    type: "boolean",
    default: false,
    help: "Skip verification of SAN field in client certificate for peer connections.",
    compatOnly: true,
  },
  // What cairn does not do: accepted at etcd's defaults only.
  "enable-v2": {
    type: "boolean",
    default: false,
    help: "Accept etcd V2 client requests. (cairn: the v2 API is not served.)",
    compatOnly: true,
  },
  "experimental-enable-v2v3": {
    type: "string",
    default: "",
    help: "Serve v2 requests through the v3 backend under a given prefix. (cairn: not served.)",
    compatOnly: true,
  },
  "force-new-cluster": {
    type: "boolean",
    default: false,
    help: "Force to create a new one-member cluster. (cairn: only false.)",
    compatOnly: true,
  },
  "discovery": {
    type: "string",
    default: "",
    help: "Discovery URL used to bootstrap the cluster. (cairn: only empty.)",
    compatOnly: true,
  },
  "discovery-srv": {
    type: "string",
    default: "",
    help: "DNS srv domain used to bootstrap the cluster. (cairn: only empty.)",
    compatOnly: true,
  },
  "discovery-srv-name": {
    type: "string",
    default: "",
    help: "Suffix to the dns srv name queried when bootstrapping.",
    compatOnly: true,
  },
  "discovery-proxy": {
    type: "string",
    default: "",
    help: "HTTP proxy to use for traffic to discovery service.",
    compatOnly: true,
  },
  "discovery-fallback": {
    type: "string",
    default: "proxy",
    help:
      "Expected behavior ('exit' or 'proxy') when discovery services fails. \"proxy\" supports v2 API only.",
    compatOnly: true,
  },
  "proxy": {
    type: "string",
    default: "off",
    help: "Proxy mode setting ('off', 'readonly' or 'on'). (cairn: only off.)",
    compatOnly: true,
  },
  "proxy-failure-wait": {
    type: "number",
    default: 5000,
    help: "Time (in milliseconds) an endpoint will be held in a failed state.",
    compatOnly: true,
  },
  "proxy-refresh-interval": {
    type: "number",
    default: 30000,
    help: "Time (in milliseconds) of the endpoints refresh interval.",
    compatOnly: true,
  },
  "proxy-dial-timeout": {
    type: "number",
    default: 1000,
    help: "Time (in milliseconds) for a dial to timeout.",
    compatOnly: true,
  },
  "proxy-write-timeout": {
    type: "number",
    default: 5000,
    help: "Time (in milliseconds) for a write to timeout.",
    compatOnly: true,
  },
  "proxy-read-timeout": {
    type: "number",
    default: 0,
    help: "Time (in milliseconds) for a read to timeout.",
    compatOnly: true,
  },
} as const satisfies Record<string, FlagSpec>;

/**
 * What validating a flag accepted for compatibility needs beyond its type
 * in {@linkcode FLAGS} (a boolean is a Go bool, a number an unsigned
 * integer, a string any text): a Go duration (`"0"` allowed; with `empty`,
 * also `""`), one of a list of words, or `onlyDefault`: cairn runs with the
 * flag's default only, and any other value stops the start with this reason.
 */
const COMPAT_CHECKS: Partial<
  Record<FlagName, { duration?: true; empty?: true; words?: string[]; onlyDefault?: string }>
> = {
  "grpc-keepalive-min-time": { duration: true },
  "grpc-keepalive-interval": { duration: true },
  "grpc-keepalive-timeout": { duration: true },
  "backend-batch-interval": { duration: true, empty: true },
  "metrics": { words: ["basic", "extensive"] },
  "experimental-backend-bbolt-freelist-type": { words: ["array", "map"] },
  "discovery-fallback": { words: ["exit", "proxy"] },
  "force-new-cluster": {
    onlyDefault:
      "cairn has no --force-new-cluster; restore a snapshot into a new one-member cluster instead (ctl snapshot restore)",
  },
  "discovery": {
    onlyDefault: "cairn does not bootstrap by discovery; list the members in --initial-cluster",
  },
  "discovery-srv": {
    onlyDefault: "cairn does not bootstrap by DNS discovery; list the members in --initial-cluster",
  },
  "proxy": {
    words: ["off", "readonly", "on"],
    onlyDefault: "cairn does not run as etcd's v2 proxy (--proxy)",
  },
};

/** A flag's name. */
export type FlagName = keyof typeof FLAGS;

/** The resolved server configuration. Units: ms for times, bytes for sizes. */
export interface ServerConfig {
  /** Human-readable name of this member (--name). */
  name: string;
  /** Path of the data directory (--data-dir), with `${name}` substituted. */
  dataDir: string;
  /** URLs to listen on for client traffic (--listen-client-urls). */
  listenClientUrls: URL[];
  /**
   * URLs for the JSON gateway alone (--listen-client-http-urls, etcd 3.5);
   * when given, --listen-client-urls serve gRPC only.
   */
  listenClientHttpUrls: URL[];
  /** Extra URLs serving only /metrics and /health (--listen-metrics-urls). */
  listenMetricsUrls: URL[];
  /** This member's client URLs advertised to the public (--advertise-client-urls). */
  advertiseClientUrls: URL[];
  /** Path of the client URLs' TLS certificate, PEM (--cert-file); empty: none. */
  certFile: string;
  /** Path of the client URLs' TLS private key, PEM (--key-file); empty: none. */
  keyFile: string;
  /** Require client certificates signed by --trusted-ca-file (--client-cert-auth). */
  clientCertAuth: boolean;
  /** Path of the CA certificates, PEM, that client certificates are verified against (--trusted-ca-file). */
  trustedCaFile: string;
  /** Generate a self-signed certificate for https client URLs when --cert-file is not given (--auto-tls). */
  autoTls: boolean;
  /** Path of a certificate revocation list, PEM or DER: client certificates it lists are refused (--client-crl-file); empty: none. */
  clientCrlFile: string;
  /** With client certificate auth, a client certificate must be valid for this host name or IP (--client-cert-allowed-hostname); empty: any. */
  clientCertAllowedHostname: string;
  /** Path of the peer URLs' TLS certificate, PEM (--peer-cert-file); empty: none. It is also presented to the members this one reaches. */
  peerCertFile: string;
  /** Path of the peer URLs' TLS private key, PEM (--peer-key-file); empty: none. */
  peerKeyFile: string;
  /** Require peer certificates signed by --peer-trusted-ca-file (--peer-client-cert-auth). */
  peerClientCertAuth: boolean;
  /** Path of the CA certificates, PEM, that peers' certificates are verified against (--peer-trusted-ca-file). */
  peerTrustedCaFile: string;
  /** Generate a self-signed certificate for https peer URLs when --peer-cert-file is not given (--peer-auto-tls). */
  peerAutoTls: boolean;
  /** Path of a certificate revocation list, PEM or DER: peer certificates it lists are refused (--peer-crl-file); empty: none. */
  peerCrlFile: string;
  /** With peer certificate auth, a peer certificate's subject CN must be this (--peer-cert-allowed-cn); empty: any. */
  peerCertAllowedCn: string;
  /** With peer certificate auth, a peer certificate must be valid for this host name or IP (--peer-cert-allowed-hostname); empty: any. */
  peerCertAllowedHostname: string;
  /** IANA numbers of the TLS 1.2 cipher suites client and peer listeners allow (--cipher-suites, Go's names); empty: any. */
  cipherSuites: number[];
  /** URLs to listen on for peer traffic (--listen-peer-urls). */
  listenPeerUrls: URL[];
  /** This member's peer URLs advertised to the cluster (--initial-advertise-peer-urls). */
  initialAdvertisePeerUrls: URL[];
  /** Member name → peer URLs, from --initial-cluster. */
  initialCluster: Map<string, URL[]>;
  /** Initial cluster state (--initial-cluster-state). */
  initialClusterState: "new" | "existing";
  /** Cluster token for bootstrap (--initial-cluster-token); it seeds the member ID. */
  initialClusterToken: string;
  /** Raft heartbeat interval in ms (--heartbeat-interval). */
  heartbeatIntervalMs: number;
  /** Raft election timeout in ms (--election-timeout); at least 5 heartbeat intervals. */
  electionTimeoutMs: number;
  /** Committed transactions that trigger a snapshot to disk (--snapshot-count). */
  snapshotCount: number;
  /** Backend size quota in bytes (--quota-backend-bytes); 0 = etcd's default (2 GiB). */
  quotaBackendBytes: number;
  /** Largest client request accepted, in bytes (--max-request-bytes). */
  maxRequestBytes: number;
  /** Ops or compares per txn level, at most (--max-txn-ops). */
  maxTxnOps: number;
  /** How autoCompactionRetention is read (--auto-compaction-mode). */
  autoCompactionMode: "periodic" | "revision";
  /** ms in periodic mode, revisions in revision mode; 0 = off. */
  autoCompactionRetention: number;
  /** Log level (--log-level): debug, info, warn, error, panic or fatal. */
  logLevel: LogLevel;
  /** --logger: `zap`, or `capnslog` (deprecated in etcd 3.4; cairn logs zap's format either way). */
  logger: "zap" | "capnslog";
  /**
   * Where log lines go (--log-outputs, resolved by {@linkcode resolveLogOutputs}):
   * `stderr`, `stdout` or file paths, no duplicates, sorted; empty discards them.
   */
  logOutputs: string[];
  /** ms a request may take before it is logged as slow (--experimental-warning-apply-duration). */
  warningApplyDurationMs: number;
  /** HTTP worker threads per client URL; 0 = serve from the main thread. */
  httpWorkers: number;
  /** ms between progress notifications to idle watchers (--experimental-watch-progress-notify-interval). */
  watchProgressNotifyIntervalMs: number;
  /** ms between the leader's corruption checks; 0 = none (--experimental-corrupt-check-time). */
  corruptCheckMs: number;
  /** Token type and its options (--auth-token): `simple`, or `jwt` with its keys. */
  authToken: AuthTokenConfig;
  /** Seconds a `simple` token lives after its last use (--auth-token-ttl). */
  authTokenTtlSeconds: number;
  /** Cost of bcrypt password hashes (--bcrypt-cost; outside 4–31 etcd uses 10). */
  bcryptCost: number;
  /** The flags given on the command line or as `ETCD_*` variables; the others took their defaults. */
  givenFlags: FlagName[];
  /** The WAL's directory (--wal-dir; default `<data-dir>/member/wal`). */
  walDir: string;
  /** Compare the data with the peers' before serving clients (--experimental-initial-corrupt-check). */
  initialCorruptCheck: boolean;
  /** The --config-file the settings were read from (flags and variables then ignored). */
  configFile?: string;
  /** Raft's pre-vote phase (--pre-vote; cairn's default true). */
  preVote: boolean;
  /** The values of the flags accepted for compatibility only (validated, not acted on). */
  compat: Partial<Record<FlagName, string | number | boolean>>;
}

/**
 * `--auth-token jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…` (etcd 3.4's
 * auth/options.go): the key files are read when the member starts, by
 * {@linkcode loadJwtTokens}.
 */
export interface JwtAuthTokenConfig {
  type: "jwt";
  /** The `sign-method` option: the algorithm tokens are signed and verified with. */
  signMethod: JwtSignMethod;
  /** Path of the `pub-key` file (PEM public key or certificate); "" when not given. */
  pubKeyFile: string;
  /** Path of the `priv-key` file (PEM private key; the HMAC secret for HS*); "" when not given. */
  privKeyFile: string;
  /** The `ttl` option, a Go duration, in ms (default 5 minutes; 0 and negative are taken, as etcd). */
  ttlMs: number;
  /**
   * Option names etcd does not know, in the order given; etcd starts anyway
   * and warns `unknown JWT options` with them.
   */
  unknownOptions: string[];
}

/** The parsed --auth-token: etcd's `simple` tokens, or `jwt` with its options. */
export type AuthTokenConfig = { type: "simple" } | JwtAuthTokenConfig;

/** A flag or environment value that etcd would refuse; the message says which. */
export class ConfigError extends Error {
  /** An error with etcd's message for the bad value. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** `ETCD_` + the flag name upper-cased with dashes as underscores. */
export function envName(flag: string): string {
  return "ETCD_" + flag.toUpperCase().replaceAll("-", "_");
}

function parseUrls(flag: string, value: string): URL[] {
  const urls: URL[] = [];
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new ConfigError(
        `invalid value "${value}" for flag -${flag}: parse "${part}": invalid URL`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(
        `invalid value "${value}" for flag -${flag}: URL scheme must be http or https: ${part}`,
      );
    }
    urls.push(url);
  }
  return urls;
}

/**
 * etcd's bootstrap check of a new member (`VerifyBootstrap`): `name` is in
 * the initial cluster, listed there with exactly its advertised peer URLs
 * (compared by origin).
 *
 * @throws {ConfigError} `couldn't find local name "n" in the initial
 *   cluster configuration`, or `--initial-cluster has n=… but missing from
 *   --initial-advertise-peer-urls=…`.
 */
export function verifyLocalMember(
  name: string,
  initialCluster: Map<string, URL[]>,
  initialAdvertisePeerUrls: URL[],
): void {
  const mine = initialCluster.get(name);
  if (mine === undefined) {
    throw new ConfigError(
      `couldn't find local name "${name}" in the initial cluster configuration`,
    );
  }
  const advertised = new Set(initialAdvertisePeerUrls.map((u) => u.origin));
  const listed = new Set(mine.map((u) => u.origin));
  if (advertised.size !== listed.size || [...advertised].some((u) => !listed.has(u))) {
    throw new ConfigError(
      `--initial-cluster has ${name}=${
        [...listed].join(",")
      } but missing from --initial-advertise-peer-urls=${[...advertised].join(",")}`,
    );
  }
}

function parseCluster(value: string): Map<string, URL[]> {
  const cluster = new Map<string, URL[]>();
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = part.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError(`error setting up initial cluster: ${part} is not a name=url pair`);
    }
    const name = part.slice(0, eq);
    const urls = parseUrls("initial-cluster", part.slice(eq + 1));
    cluster.set(name, [...(cluster.get(name) ?? []), ...urls]);
  }
  return cluster;
}

/**
 * A boolean flag as Go's flag package reads it: `1`, `t`, `T`, `TRUE`,
 * `true`, `True` and their false counterparts; anything else is Go's
 * `parse error`.
 */
function boolFlag(flag: string, raw: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;
  throw new ConfigError(`invalid boolean value "${raw}" for -${flag}: parse error`);
}

function numberFlag(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || raw.trim() === "") {
    throw new ConfigError(`invalid value "${raw}" for flag -${flag}: parse error`);
  }
  return n;
}

/**
 * A flag etcd declares unsigned (Go's flag.Uint/Uint64): a non-negative
 * integer, in Go's notation (decimal, 0x…, 0o…, 0b…); anything else is
 * Go's `parse error`.
 */
function uintFlag(flag: string, raw: string): number {
  const text = raw.trim();
  if (/^(0x[0-9a-f]+|0o[0-7]+|0b[01]+|[0-9]+)$/i.test(text)) {
    const n = Number(BigInt(text));
    if (Number.isSafeInteger(n)) return n;
    throw new ConfigError(`invalid value "${raw}" for flag -${flag}: value out of range`);
  }
  throw new ConfigError(`invalid value "${raw}" for flag -${flag}: parse error`);
}

const HOUR = 3_600_000;

/**
 * Parse a retention: in `periodic` mode a Go duration (`1h30m`, `10m`, `45s`)
 * or a plain number of hours, returned in ms; in `revision` mode a revision
 * count.
 *
 * @throws {ConfigError} for a malformed or negative retention.
 */
export function parseRetention(mode: "periodic" | "revision", retention: string): number {
  const text = retention.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    if (mode === "revision") {
      if (!Number.isInteger(n)) {
        throw new ConfigError(`invalid auto-compaction-retention "${retention}"`);
      }
      return n;
    }
    return n * HOUR;
  }
  if (mode === "revision") {
    throw new ConfigError(`invalid auto-compaction-retention "${retention}"`);
  }
  const units: Record<string, number> = { h: HOUR, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|h|m|s)/.exec(rest);
    if (!m) throw new ConfigError(`invalid auto-compaction-retention "${retention}"`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/**
 * A Go duration flag (`10m0s`, `1h30m`, `500ms`, `1.5s`), in ms; it must be
 * positive, or with `allowZero` also zero (`0`, `0s`).
 *
 * @throws {ConfigError} Go's `parse error` for anything else.
 */
export function durationFlag(flag: string, raw: string, allowZero = false): number {
  const units: Record<string, number> = {
    h: HOUR,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 1e-3,
    µs: 1e-3,
    ns: 1e-6,
  };
  let total = 0;
  let rest = raw.trim();
  const bad = () => new ConfigError(`invalid value "${raw}" for flag -${flag}: parse error`);
  if (rest.length === 0) throw bad();
  if (allowZero && rest === "0") return 0;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|h|m|s)/.exec(rest);
    if (!m) throw bad();
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  if (!(total > 0 || (allowZero && total === 0))) throw bad();
  return total;
}

/** Go's `%q` of a list of strings: `["a" "b"]`. */
function goQuoteList(values: string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(" ")}]`;
}

/**
 * Resolve --log-outputs as etcd 3.4 does for `--logger`: the values
 * (comma-separated, duplicates dropped, sorted as etcd's flag keeps them)
 * become the outputs server/log.ts's `LogOutputs` opens: `default` (and
 * `systemd/journal`, which cairn does not speak: systemd passes stderr to
 * the journal) is `stderr`; `stderr`, `stdout` and file paths stay; with
 * `/dev/null` among them every line is discarded (an empty list). With
 * `capnslog`, only one of `default`, `stderr` and `stdout` is taken.
 *
 * @throws {ConfigError} with etcd's message for a combination etcd refuses:
 *   `default` beside other outputs with zap (`multi logoutput for "default"
 *   is not supported yet`); with capnslog, more than one value or a file.
 */
export function resolveLogOutputs(logger: "zap" | "capnslog", value: string): string[] {
  const given = [...new Set(value.split(",").map((s) => s.trim()))].sort();
  const values = given.filter((v) => v.length > 0);
  if (values.length === 0) values.push("default");
  if (logger === "capnslog") {
    if (values.length !== 1) {
      throw new ConfigError(
        `--logger=capnslog supports only 1 value in '--log-outputs', got ${goQuoteList(values)}`,
      );
    }
    const output = values[0];
    if (output !== "default" && output !== "stderr" && output !== "stdout") {
      throw new ConfigError(
        `unknown log-output "${output}" (only supports "default", "stderr", "stdout")`,
      );
    }
    return [output === "stdout" ? "stdout" : "stderr"];
  }
  if (values.length > 1 && values.includes("default")) {
    throw new ConfigError(`multi logoutput for "default" is not supported yet`);
  }
  if (values.length > 1 && values.includes("systemd/journal")) {
    throw new ConfigError(
      `running with systemd/journal but other '--log-outputs' values (${
        goQuoteList(values)
      }) are configured with 'default'; override 'default' value with something else`,
    );
  }
  if (values.includes("/dev/null")) return [];
  const outputs = values.map((v) => v === "default" || v === "systemd/journal" ? "stderr" : v);
  return [...new Set(outputs)].sort();
}

/**
 * etcd's check of a TLS certificate and key given by path: both or neither.
 *
 * @throws {ConfigError} `KeyFile and CertFile must both be present[key: …,
 *   cert: …]`, etcd's text.
 */
function bothOrNeither(keyFile: string, certFile: string): void {
  if ((keyFile === "") !== (certFile === "")) {
    throw new ConfigError(
      `KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}]`,
    );
  }
}

/** Help text listing every flag with its default and environment variable. */
export function usage(): string {
  const lines = ["Usage: cairn [flags]", "", "Flags:"];
  for (const [name, spec] of Object.entries(FLAGS)) {
    lines.push(
      `  --${name}`,
      `      ${spec.help}${
        "compatOnly" in spec ? " Accepted for compatibility, not in effect yet." : ""
      } (default ${JSON.stringify(spec.default)}; env ${envName(name)})`,
    );
  }
  lines.push("  --version", "      Print the version and exit.");
  return lines.join("\n");
}

/**
 * Resolve the configuration from command-line `args` (`--flag value` or
 * `--flag=value`, etcd's names) and `env` (`ETCD_*`), with etcd's defaults.
 * Validates the initial cluster: it must name this member with its
 * --initial-advertise-peer-urls.
 *
 * @throws {ConfigError} for an unknown flag, a bad value or an inconsistent
 *   initial cluster.
 */
export function parseConfig(args: string[], env: Record<string, string | undefined>): ServerConfig {
  const file = configFileOf(args, env);
  if (file !== undefined) {
    // As etcd: the file's settings alone; other flags and variables are ignored.
    return { ...parseFlags(configFileArgs(file), {}), configFile: file };
  }
  return parseFlags(args, env);
}

/** The --config-file given (as a flag or ETCD_CONFIG_FILE), if any. */
function configFileOf(args: string[], env: Record<string, string | undefined>): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const m = /^--?config-file(?:=(.*))?$/.exec(args[i]);
    if (m !== null) return m[1] ?? args[i + 1] ?? "";
  }
  const fromEnv = env[envName("config-file")];
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** Flags of etcd's config file whose YAML value is a Go time.Duration: integer nanoseconds. */
const DURATION_FLAGS = new Set<string>([
  "grpc-keepalive-min-time",
  "grpc-keepalive-interval",
  "grpc-keepalive-timeout",
  "backend-batch-interval",
  "experimental-corrupt-check-time",
  "experimental-watch-progress-notify-interval",
  "experimental-warning-apply-duration",
]);

/** etcd's config-file sections of TLS settings, and the prefix of the flags they stand for. */
const SECURITY_SECTIONS: Record<string, string> = {
  "client-transport-security": "",
  "peer-transport-security": "peer-",
};
const SECURITY_KEYS = ["cert-file", "key-file", "client-cert-auth", "trusted-ca-file", "auto-tls"];

/**
 * etcd's YAML configuration file as command-line flags: each top-level key
 * is the flag of its name (lists joined with commas, durations in
 * nanoseconds, empty values left at their defaults), and
 * `client-transport-security` / `peer-transport-security` hold the client
 * and `--peer-*` TLS flags. Keys cairn does not know are ignored, as etcd's
 * YAML decoding ignores them.
 *
 * @throws {ConfigError} etcd's `open <path>: no such file or directory`, or
 *   why the YAML cannot be read.
 */
export function configFileArgs(path: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(`open ${path}: ${goOsError(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`error converting YAML to JSON: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError("error unmarshaling JSON: the configuration file is not a mapping");
  }
  const args: string[] = [];
  const add = (flag: string, value: unknown) => {
    if (value === null || value === undefined || !(flag in FLAGS)) return;
    let text: string;
    if (Array.isArray(value)) text = value.map(String).join(",");
    else if (typeof value === "number" && DURATION_FLAGS.has(flag)) text = `${value}ns`;
    else if (typeof value === "object") {
      throw new ConfigError(`error unmarshaling JSON: ${flag} is not a single value`);
    } else text = String(value);
    args.push(`--${flag}=${text}`);
  };
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key === "config-file") continue;
    const prefix = SECURITY_SECTIONS[key];
    if (prefix === undefined) {
      add(key, value);
      continue;
    }
    if (value === null || value === undefined) continue;
    for (const sub of SECURITY_KEYS) {
      add(`${prefix}${sub}`, (value as Record<string, unknown>)[sub]);
    }
  }
  return args;
}

function parseFlags(args: string[], env: Record<string, string | undefined>): ServerConfig {
  const options: Record<string, { type: "string" }> = {};
  for (const name of Object.keys(FLAGS)) options[name] = { type: "string" };
  // etcd (Go's flag package) takes -flag as well as --flag.
  args = args.map((a) => /^-[a-z]/.test(a) ? `-${a}` : a);
  // A boolean flag alone (`--client-cert-auth`) is true, as in Go.
  const booleans = new Set(
    Object.entries(FLAGS).filter(([, spec]) => spec.type === "boolean").map(([n]) => `--${n}`),
  );
  args = args.map((a) => booleans.has(a) ? `${a}=true` : a);
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<
      string,
      string | undefined
    >;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const raw = (flag: FlagName): string => {
    const v = values[flag] ?? env[envName(flag)];
    return v === undefined ? String(FLAGS[flag].default) : String(v);
  };
  const givenFlags = (Object.keys(FLAGS) as FlagName[]).filter((flag) =>
    values[flag] !== undefined || env[envName(flag)] !== undefined
  );
  // --debug is etcd 3.4's older spelling of --log-level debug.
  const logLevel = boolFlag("debug", raw("debug")) ? "debug" : raw("log-level");
  if (!isLogLevel(logLevel)) throw new ConfigError(`unknown level "${logLevel}"`);
  const compat = compatValues(raw);
  const logger = raw("logger");
  if (logger !== "zap" && logger !== "capnslog") {
    throw new ConfigError(`unknown logger option "${logger}"`);
  }
  const logOutputs = resolveLogOutputs(logger, raw("log-outputs"));
  const name = raw("name");
  const dataDir = raw("data-dir").replace("${name}", name);
  const initialAdvertisePeerUrls = parseUrls(
    "initial-advertise-peer-urls",
    raw("initial-advertise-peer-urls"),
  );
  const clusterRaw = raw("initial-cluster") ||
    `${name}=${initialAdvertisePeerUrls.map((u) => u.origin).join(`,${name}=`)}`;
  const initialCluster = parseCluster(clusterRaw);
  const state = raw("initial-cluster-state");
  if (state !== "new" && state !== "existing") {
    throw new ConfigError(
      `invalid value "${state}" for flag -initial-cluster-state: valid values are "new", "existing"`,
    );
  }
  verifyLocalMember(name, initialCluster, initialAdvertisePeerUrls);
  const mode = raw("auto-compaction-mode");
  if (mode !== "periodic" && mode !== "revision") {
    throw new ConfigError(`unknown auto-compaction-mode "${mode}"`);
  }
  const httpWorkers = numberFlag("http-workers", raw("http-workers"));
  if (httpWorkers < 0 || httpWorkers > MAX_HTTP_WORKERS) {
    throw new ConfigError(`--http-workers must be between 0 and ${MAX_HTTP_WORKERS}`);
  }
  const heartbeat = uintFlag("heartbeat-interval", raw("heartbeat-interval"));
  const election = uintFlag("election-timeout", raw("election-timeout"));
  if (election < 5 * heartbeat) {
    throw new ConfigError(
      `--election-timeout[${election}ms] should be at least as 5 times as --heartbeat-interval[${heartbeat}ms]`,
    );
  }
  // etcd's order: cipher suites, then the peer listeners, then the client ones.
  let cipherSuites: number[];
  try {
    cipherSuites = parseCipherSuites(raw("cipher-suites")).map((s) => s.id);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const listenPeerUrls = parseUrls("listen-peer-urls", raw("listen-peer-urls"));
  const peerCertFile = raw("peer-cert-file");
  const peerKeyFile = raw("peer-key-file");
  const peerAutoTls = boolFlag("peer-auto-tls", raw("peer-auto-tls"));
  bothOrNeither(peerKeyFile, peerCertFile);
  for (const url of listenPeerUrls) {
    if (url.protocol === "https:" && peerCertFile === "" && !peerAutoTls) {
      throw new ConfigError(
        `cannot listen on TLS for ${url.hostname}:${
          url.port || "443"
        }: KeyFile and CertFile are not presented`,
      );
    }
  }
  const listenClientUrls = parseUrls("listen-client-urls", raw("listen-client-urls"));
  const listenClientHttpUrls = parseUrls("listen-client-http-urls", raw("listen-client-http-urls"));
  const certFile = raw("cert-file");
  const keyFile = raw("key-file");
  const autoTls = boolFlag("auto-tls", raw("auto-tls"));
  for (const url of [...listenClientUrls, ...listenClientHttpUrls]) {
    if (url.protocol === "https:" && certFile === "" && keyFile === "" && !autoTls) {
      throw new ConfigError(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${
          url.href.replace(/\/$/, "")
        } with HTTPS scheme`,
      );
    }
  }
  if ([...listenClientUrls, ...listenClientHttpUrls].some((u) => u.protocol === "https:")) {
    bothOrNeither(keyFile, certFile);
  }
  return {
    name,
    dataDir,
    listenClientUrls,
    listenClientHttpUrls,
    listenMetricsUrls: parseUrls("listen-metrics-urls", raw("listen-metrics-urls")),
    advertiseClientUrls: parseUrls("advertise-client-urls", raw("advertise-client-urls")),
    certFile,
    keyFile,
    clientCertAuth: boolFlag("client-cert-auth", raw("client-cert-auth")),
    trustedCaFile: raw("trusted-ca-file"),
    autoTls,
    clientCrlFile: raw("client-crl-file"),
    clientCertAllowedHostname: raw("client-cert-allowed-hostname"),
    peerCertFile,
    peerKeyFile,
    peerClientCertAuth: boolFlag("peer-client-cert-auth", raw("peer-client-cert-auth")),
    peerTrustedCaFile: raw("peer-trusted-ca-file"),
    peerAutoTls,
    peerCrlFile: raw("peer-crl-file"),
    peerCertAllowedCn: raw("peer-cert-allowed-cn"),
    peerCertAllowedHostname: raw("peer-cert-allowed-hostname"),
    cipherSuites,
    listenPeerUrls,
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: raw("initial-cluster-token"),
    heartbeatIntervalMs: heartbeat,
    electionTimeoutMs: election,
    snapshotCount: uintFlag("snapshot-count", raw("snapshot-count")),
    quotaBackendBytes: numberFlag("quota-backend-bytes", raw("quota-backend-bytes")),
    maxRequestBytes: uintFlag("max-request-bytes", raw("max-request-bytes")),
    maxTxnOps: uintFlag("max-txn-ops", raw("max-txn-ops")),
    autoCompactionMode: mode,
    autoCompactionRetention: parseRetention(mode, raw("auto-compaction-retention")),
    logLevel,
    logger,
    logOutputs,
    warningApplyDurationMs: durationFlag(
      "experimental-warning-apply-duration",
      raw("experimental-warning-apply-duration"),
    ),
    httpWorkers,
    watchProgressNotifyIntervalMs: durationFlag(
      "experimental-watch-progress-notify-interval",
      raw("experimental-watch-progress-notify-interval"),
    ),
    corruptCheckMs: durationFlag(
      "experimental-corrupt-check-time",
      raw("experimental-corrupt-check-time"),
      true,
    ),
    authToken: parseAuthToken(raw("auth-token")),
    authTokenTtlSeconds: positiveUint("auth-token-ttl", raw("auth-token-ttl")),
    bcryptCost: uintFlag("bcrypt-cost", raw("bcrypt-cost")),
    givenFlags,
    walDir: raw("wal-dir") || `${dataDir}/member/wal`,
    preVote: boolFlag("pre-vote", raw("pre-vote")),
    initialCorruptCheck: boolFlag(
      "experimental-initial-corrupt-check",
      raw("experimental-initial-corrupt-check"),
    ),
    compat,
  };
}

/**
 * The flags accepted for compatibility, validated as etcd parses them.
 *
 * @throws {ConfigError} Go's `parse error` for a value of the wrong type,
 *   or why cairn cannot run with a value other than the one it supports.
 */
function compatValues(
  raw: (flag: FlagName) => string,
): Partial<Record<FlagName, string | number | boolean>> {
  const values: Partial<Record<FlagName, string | number | boolean>> = {};
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    if (!("compatOnly" in spec)) continue;
    const check = COMPAT_CHECKS[flag] ?? {};
    const text = raw(flag);
    let value: string | number | boolean = text;
    if (spec.type === "boolean") value = boolFlag(flag, text);
    else if (spec.type === "number") value = uintFlag(flag, text);
    else if (check.duration && !(check.empty && text === "")) durationFlag(flag, text, true);
    if (check.words !== undefined && !check.words.includes(text)) {
      throw new ConfigError(
        `invalid value "${text}" for flag -${flag}: expected one of ${check.words.join(", ")}`,
      );
    }
    if (check.onlyDefault !== undefined && value !== spec.default) {
      throw new ConfigError(check.onlyDefault);
    }
    values[flag] = value;
  }
  return values;
}

const INVALID_AUTH_OPTIONS = "auth: invalid auth options";

/**
 * --auth-token as etcd 3.4's NewTokenProvider reads it: the token type, then
 * comma-separated `name=value` options (each name once). `simple` takes no
 * options it uses; `jwt` takes `sign-method` (required), `pub-key`,
 * `priv-key` and `ttl` (a Go duration, default 5m). No file is read here.
 *
 * @throws {ConfigError} etcd's `auth: invalid auth options` for an option
 *   without exactly one `=`, a repeated option, an unknown token type (and
 *   the empty one, which etcd 3.4 takes for a token-less provider), a bad
 *   `ttl`, or a missing or unknown `sign-method` (the names are
 *   case-sensitive); `unsupported signing method: *jwt.signingMethodNone`
 *   for `sign-method=none`, as etcd.
 */
export function parseAuthToken(raw: string): AuthTokenConfig {
  const [type, ...rest] = raw.split(",");
  const options = new Map<string, string>();
  for (const option of rest) {
    const pair = option.split("=");
    if (pair.length !== 2 || options.has(pair[0])) throw new ConfigError(INVALID_AUTH_OPTIONS);
    options.set(pair[0], pair[1]);
  }
  if (type === "simple") return { type: "simple" };
  if (type !== "jwt") throw new ConfigError(INVALID_AUTH_OPTIONS);
  const ttl = options.get("ttl") ?? "";
  let ttlMs = DEFAULT_JWT_TTL_MS;
  if (ttl !== "") {
    const ms = parseGoDuration(ttl);
    if (ms === undefined) throw new ConfigError(INVALID_AUTH_OPTIONS);
    ttlMs = ms;
  }
  const signMethod = options.get("sign-method") ?? "";
  if (signMethod === "none") {
    throw new ConfigError("unsupported signing method: *jwt.signingMethodNone");
  }
  if (!isJwtSignMethod(signMethod)) throw new ConfigError(INVALID_AUTH_OPTIONS);
  const known = new Set(["sign-method", "pub-key", "priv-key", "ttl"]);
  return {
    type: "jwt",
    signMethod,
    pubKeyFile: options.get("pub-key") ?? "",
    privKeyFile: options.get("priv-key") ?? "",
    ttlMs,
    unknownOptions: [...options.keys()].filter((name) => !known.has(name)),
  };
}

/** Milliseconds per unit of a Go duration. */
const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: HOUR,
};

/**
 * A Go duration (time.ParseDuration: `5m`, `1h30m`, `1.5s`, `-10s`, `0`),
 * in ms; undefined when Go would refuse it.
 */
export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  while (rest.length > 0) {
    const m = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (m === null || (m[1] === "" && (m[2] ?? "") === "")) return undefined;
    total += Number(`${m[1] || "0"}.${m[2] || "0"}`) * GO_DURATION_UNITS[m[3]];
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

/**
 * The `jwt` tokens of this member: reads the key files of `config` and
 * builds {@linkcode JwtTokens} as etcd 3.4's token provider does at start.
 * `now` is the clock in ms (default `Date.now`).
 *
 * @throws {ConfigError} with etcd's text: `auth: invalid auth options` when
 *   a given key file cannot be read; `auth: missing key data` when no key is
 *   given; golang-jwt's key errors (`key is not a valid RSA private key`,
 *   `invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key`, …) for a
 *   file of the wrong kind.
 */
export async function loadJwtTokens(
  config: JwtAuthTokenConfig,
  now?: () => number,
): Promise<JwtTokens> {
  const read = async (path: string): Promise<Uint8Array | undefined> => {
    if (path === "") return undefined;
    try {
      return await Deno.readFile(path);
    } catch {
      throw new ConfigError(INVALID_AUTH_OPTIONS);
    }
  };
  const publicKey = await read(config.pubKeyFile);
  const privateKey = await read(config.privKeyFile);
  try {
    return await JwtTokens.create({
      signMethod: config.signMethod,
      publicKey,
      privateKey,
      ttlMs: config.ttlMs,
      now,
    });
  } catch (err) {
    if (err instanceof JwtKeyError) throw new ConfigError(err.message);
    throw err;
  }
}

/** An unsigned flag that must not be 0 (a TTL). */
function positiveUint(flag: string, raw: string): number {
  const n = uintFlag(flag, raw);
  if (n === 0) {
    throw new ConfigError(`invalid value "${raw}" for flag -${flag}: value out of range`);
  }
  return n;
}

/**
 * The value of every flag in `config`, by flag name, as start-up logs them
 * (URLs as strings, times in ms, sizes in bytes).
 */
export function flagValues(config: ServerConfig): Record<FlagName, unknown> {
  const hrefs = (urls: URL[]) => urls.map((u) => u.href);
  const values: Partial<Record<FlagName, unknown>> = {
    "name": config.name,
    "data-dir": config.dataDir,
    "listen-client-urls": hrefs(config.listenClientUrls),
    "listen-client-http-urls": hrefs(config.listenClientHttpUrls),
    "listen-metrics-urls": hrefs(config.listenMetricsUrls),
    "advertise-client-urls": hrefs(config.advertiseClientUrls),
    "cert-file": config.certFile,
    "key-file": config.keyFile,
    "client-cert-auth": config.clientCertAuth,
    "trusted-ca-file": config.trustedCaFile,
    "auto-tls": config.autoTls,
    "client-crl-file": config.clientCrlFile,
    "client-cert-allowed-hostname": config.clientCertAllowedHostname,
    "peer-cert-file": config.peerCertFile,
    "peer-key-file": config.peerKeyFile,
    "peer-client-cert-auth": config.peerClientCertAuth,
    "peer-trusted-ca-file": config.peerTrustedCaFile,
    "peer-auto-tls": config.peerAutoTls,
    "peer-crl-file": config.peerCrlFile,
    "peer-cert-allowed-cn": config.peerCertAllowedCn,
    "peer-cert-allowed-hostname": config.peerCertAllowedHostname,
    "cipher-suites": config.cipherSuites.map((id) => cipherSuiteById(id)?.name ?? String(id)),
    "listen-peer-urls": hrefs(config.listenPeerUrls),
    "initial-advertise-peer-urls": hrefs(config.initialAdvertisePeerUrls),
    "initial-cluster": [...config.initialCluster].flatMap(([name, urls]) =>
      urls.map((u) => `${name}=${u.href}`)
    ).join(","),
    "initial-cluster-state": config.initialClusterState,
    "initial-cluster-token": config.initialClusterToken,
    "heartbeat-interval": config.heartbeatIntervalMs,
    "election-timeout": config.electionTimeoutMs,
    "snapshot-count": config.snapshotCount,
    "quota-backend-bytes": config.quotaBackendBytes,
    "max-request-bytes": config.maxRequestBytes,
    "max-txn-ops": config.maxTxnOps,
    "auto-compaction-mode": config.autoCompactionMode,
    "auto-compaction-retention": config.autoCompactionRetention,
    "http-workers": config.httpWorkers,
    "experimental-watch-progress-notify-interval": config.watchProgressNotifyIntervalMs,
    "experimental-corrupt-check-time": config.corruptCheckMs,
    "experimental-warning-apply-duration": config.warningApplyDurationMs,
    "logger": config.logger,
    "log-outputs": config.logOutputs,
    "log-level": config.logLevel,
    "auth-token": config.authToken,
    "auth-token-ttl": config.authTokenTtlSeconds,
    "bcrypt-cost": config.bcryptCost,
    "config-file": config.configFile ?? "",
    "debug": config.logLevel === "debug",
    "wal-dir": config.walDir,
    "pre-vote": config.preVote,
    "experimental-initial-corrupt-check": config.initialCorruptCheck,
  };
  for (const [flag, value] of Object.entries(config.compat)) values[flag as FlagName] = value;
  // Every flag has its value (the compat ones in config.compat).
  for (const flag of Object.keys(FLAGS) as FlagName[]) {
    invariant(flag in values, `flag ${flag} has a value to log`);
  }
  return values as Record<FlagName, unknown>;
}
