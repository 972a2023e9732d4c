/**
 * Helpers of the etcdctl differential suite (etcdctl_diff_test.ts, and
 * ctl_maintenance_test.ts, which runs cairn's ctl on one side): commands
 * run with a hard timeout, long-running etcdctl processes read line by line,
 * single-member servers started with etcd's flags, a schema-less decoder of
 * `-w protobuf` output, the masks of what legitimately differs between etcd
 * 3.4 and cairn, and a line diff for the report.
 *
 * Every process started here is bounded in time (an AbortSignal on the
 * command) and killed in a `finally`.
 *
 * @module
 */

import { allocatePorts } from "./cluster_harness.ts";
import { ROOT, withoutDenoNotices } from "../servers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Time allowed for one etcdctl command, in ms (etcdctl's own dial + command timeouts are 7 s). */
export const COMMAND_TIMEOUT_MS = 20_000;
/** Longest life of a long-running etcdctl (watch, lock holder, elect), in ms. */
export const PROCESS_LIFETIME_MS = 30_000;
/** Time allowed for a signalled process to exit before it is killed, in ms. */
export const EXIT_TIMEOUT_MS = 5_000;
/** Time allowed for a single-member server to answer /health, in ms. */
export const SERVER_START_TIMEOUT_MS = 60_000;
/** Pause between two polls, in ms. */
const POLL_MS = 20;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Send `signal` to `child`, ignoring a process that has already exited. */
function signalQuietly(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

// ---------------------------------------------------------------------------
// Commands

/** What a command did. */
export interface Run {
  /** Exit code (128 + signal number when killed). */
  code: number;
  /** Raw stdout (`-w protobuf` is binary). */
  stdout: Uint8Array;
  stderr: string;
  /** Whether the hard timeout killed it. */
  timedOut: boolean;
}

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  /** Written to stdin, then stdin is closed; stdin is /dev/null without it. */
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Hard timeout in ms (default {@linkcode COMMAND_TIMEOUT_MS}); the process is killed then. */
  timeoutMs?: number;
  /** Start from an empty environment (then only `env`). */
  clearEnv?: boolean;
}

/**
 * Run `cmd args` to completion, at most `timeoutMs` (the process is killed
 * at the deadline and reported with `timedOut`).
 *
 * @example
 * ```ts
 * const r = await runCommand("etcdctl", ["version"], { timeoutMs: 5_000 });
 * ```
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<Run> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? COMMAND_TIMEOUT_MS);
  const child = new Deno.Command(cmd, {
    args,
    env: options.env,
    clearEnv: options.clearEnv,
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      // A process that exits without reading its input closes the pipe: not an error here.
      await writer.write(encoder.encode(options.stdin)).catch(() => {});
      await writer.close().catch(() => {});
    }
    const out = await child.output();
    return {
      code: out.code,
      stdout: out.stdout,
      stderr: withoutDenoNotices(decoder.decode(out.stderr)),
      timedOut: signal.aborted,
    };
  } finally {
    signalQuietly(child, "SIGKILL");
  }
}

/**
 * The whole environment every etcdctl runs with: nothing else, so no stray
 * `ETCDCTL_*` or `ETCD_*` variable (etcdctl reads and warns about them)
 * changes a run.
 */
export const ETCDCTL_ENV: Record<string, string> = {
  ETCDCTL_API: "3",
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
};

/** Run etcdctl 3.4 with `args` (global flags included). */
export function etcdctl(args: string[], options: RunOptions = {}): Promise<Run> {
  return runCommand("etcdctl", args, {
    ...options,
    env: { ...ETCDCTL_ENV, ...options.env },
    clearEnv: true,
  });
}

/**
 * cairn's `ctl` as the `ctl` task of deno.json runs it (`deno run <its
 * permissions> main.ts ctl`), with the repository's config and main.ts by
 * absolute path, so it runs from any directory.
 */
export const CTL_COMMAND: readonly string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const words = String(config.tasks.ctl).trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") throw new Error("unexpected ctl task");
  const rest = words.slice(2).map((w) => (w === "main.ts" ? `${ROOT}main.ts` : w));
  return [Deno.execPath(), "run", "--config", `${ROOT}deno.json`, ...rest];
})();

/**
 * The environment cairn's ctl runs with: etcdctl's ({@linkcode ETCDCTL_ENV})
 * plus what Deno needs to find its cache.
 */
const CTL_ENV: Record<string, string> = Object.fromEntries(
  ["HOME", "DENO_DIR", "XDG_CACHE_HOME"].flatMap((k) => {
    const v = Deno.env.get(k);
    return v === undefined ? [] : [[k, v]];
  }),
);

/**
 * Run the CLI `cli` (etcdctl when undefined, else a command line such as
 * {@linkcode CTL_COMMAND}) with `args`, in etcdctl's clean environment.
 */
export function runCli(
  cli: readonly string[] | undefined,
  args: string[],
  options: RunOptions = {},
): Promise<Run> {
  if (cli === undefined) return etcdctl(args, options);
  return runCommand(cli[0], [...cli.slice(1), ...args], {
    ...options,
    env: { ...ETCDCTL_ENV, ...CTL_ENV, ...options.env },
    clearEnv: true,
  });
}

/**
 * A long-running process (etcdctl watch, lock, elect) whose stdout is read
 * line by line while it runs. It is killed after {@linkcode PROCESS_LIFETIME_MS}
 * whatever happens; {@linkcode Proc.stop} ends it earlier.
 */
export class Proc {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #reading: Promise<unknown>;
  /** Its exit status once it has exited on its own or been stopped. */
  exited: Deno.CommandStatus | undefined;

  constructor(
    cmd: string,
    args: string[],
    options: { env?: Record<string, string>; cwd?: string },
  ) {
    this.#child = new Deno.Command(cmd, {
      args,
      env: options.env,
      clearEnv: options.env !== undefined,
      cwd: options.cwd ?? ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(PROCESS_LIFETIME_MS),
    }).spawn();
    const read = async (stream: ReadableStream<Uint8Array>, into: "out" | "err") => {
      const textDecoder = new TextDecoder();
      for await (const chunk of stream) {
        const text = textDecoder.decode(chunk, { stream: true });
        if (into === "out") this.#stdout += text;
        else this.#stderr += text;
      }
    };
    this.#reading = Promise.allSettled([
      read(this.#child.stdout, "out"),
      read(this.#child.stderr, "err"),
    ]);
    this.#status = this.#child.status.then((s) => {
      this.exited = s;
      return s;
    });
  }

  /** The complete lines it has written to stdout so far. */
  lines(): string[] {
    const lines = this.#stdout.split("\n");
    lines.pop(); // the incomplete tail (or "" after the last newline)
    return lines;
  }

  /** Everything it has written to stderr so far. */
  get stderr(): string {
    return withoutDenoNotices(this.#stderr);
  }

  /**
   * Wait until it has written `n` complete lines, has exited, or `timeoutMs`
   * has passed; resolves with the first `n` lines (fewer if it stopped short).
   */
  async waitLines(n: number, timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines().length < n && this.exited === undefined && Date.now() < deadline) {
      await sleep(POLL_MS);
    }
    // An exited process may still have output in the pipes.
    if (this.exited !== undefined) await this.#reading;
    return this.lines().slice(0, n);
  }

  /**
   * Wait for it to exit on its own, at most `timeoutMs`; then stop it with
   * SIGKILL. Resolves with the exit status.
   */
  async waitExit(timeoutMs: number): Promise<Deno.CommandStatus> {
    const deadline = Date.now() + timeoutMs;
    while (this.exited === undefined && Date.now() < deadline) await sleep(POLL_MS);
    return await this.stop("SIGKILL");
  }

  /**
   * Send `signal` (default SIGINT, on which etcdctl lock and elect give up
   * their lock or leadership) and wait for the exit; SIGKILL after
   * {@linkcode EXIT_TIMEOUT_MS}. Resolves with the exit status.
   */
  async stop(signal: Deno.Signal = "SIGINT"): Promise<Deno.CommandStatus> {
    if (this.exited === undefined) signalQuietly(this.#child, signal);
    const timer = setTimeout(() => signalQuietly(this.#child, "SIGKILL"), EXIT_TIMEOUT_MS);
    try {
      const status = await this.#status;
      await this.#reading;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------
// Servers

/** Which server a side runs. */
export type ServerKind = "etcd" | "cairn";

/**
 * The peer URL every single member advertises, the same on both sides, so
 * that etcd and cairn compute the same member and cluster IDs (from the
 * advertised peer URLs and the cluster token). A single member never dials
 * its own peer URL, so nothing has to listen there; each server listens for
 * peers on a free port of its own.
 */
export const ADVERTISED_PEER_URL = "http://127.0.0.1:2380";
/** The cluster token both single members start with. */
export const CLUSTER_TOKEN = "etcdctl-diff";

/** A single-member server on loopback. */
export interface Server {
  kind: ServerKind;
  /** `127.0.0.1:PORT` of its client URL (etcdctl's --endpoints form). */
  endpoint: string;
  /** `127.0.0.1:PORT` it listens on for peers. */
  peerListen: string;
  /** A fresh temp dir: its data dir and log are inside, and etcdctl runs there. */
  dir: string;
  /** SIGKILL it and remove its dir. */
  close(): Promise<void>;
}

/** How etcd (Go) and cairn (Deno) report a port in use, in a server's log. */
const PORT_TAKEN = /address already in use|AddrInUse/i;

/**
 * Start a one-member cluster of `kind` with etcd's bootstrap flags (name
 * `default`, peer URL {@linkcode ADVERTISED_PEER_URL}, token
 * {@linkcode CLUSTER_TOKEN}) on free loopback ports and a fresh data dir,
 * plus `extraFlags` (etcd's flags, e.g. `--quota-backend-bytes`); resolves
 * once GET /health answers true. Retried on new ports, at most 3 times, when
 * a port was taken between choosing and binding.
 */
export async function startServer(
  kind: ServerKind,
  extraFlags: readonly string[] = [],
): Promise<Server> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const dir = await Deno.makeTempDir({ prefix: `cairn-etcdctl-diff-${kind}-` });
    const [clientPort, peerPort] = allocatePorts(2);
    const endpoint = `127.0.0.1:${clientPort}`;
    const flags = [
      ...["--name", "default", "--data-dir", `${dir}/data`],
      ...["--listen-client-urls", `http://${endpoint}`],
      ...["--advertise-client-urls", `http://${endpoint}`],
      ...["--listen-peer-urls", `http://127.0.0.1:${peerPort}`],
      ...["--initial-advertise-peer-urls", ADVERTISED_PEER_URL],
      ...["--initial-cluster", `default=${ADVERTISED_PEER_URL}`],
      ...["--initial-cluster-state", "new", "--initial-cluster-token", CLUSTER_TOKEN],
      ...extraFlags,
    ];
    const [cmd, args] = kind === "etcd"
      ? ["etcd", flags]
      : [Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, ...flags]];
    const log = `${dir}/server.log`;
    // The shell only redirects output to the log, then becomes the server (exec).
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$SERVER_LOG" 2>&1', cmd, ...args],
      env: { SERVER_LOG: log },
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then(() => void (exited = true));
    const close = async () => {
      signalQuietly(child, "SIGKILL");
      await status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    try {
      await waitHealthy(endpoint, () => exited);
      return { kind, endpoint, peerListen: `127.0.0.1:${peerPort}`, dir, close };
    } catch (err) {
      const tail = Deno.readTextFileSync(log).trimEnd().split("\n").slice(-20).join("\n");
      lastError = new Error(`${kind} did not start at ${endpoint}: ${err}\n${tail}`);
      await close();
      if (!PORT_TAKEN.test(tail)) break;
    }
  }
  throw lastError;
}

/** Resolve once `endpoint` answers GET /health with true; reject on exit or timeout. */
async function waitHealthy(endpoint: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("exited");
    try {
      const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      const body = await res.text();
      if (res.ok && body.includes("true")) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`no healthy answer in ${SERVER_START_TIMEOUT_MS} ms`);
}

// ---------------------------------------------------------------------------
// -w protobuf

/**
 * A schema-less text form of protobuf bytes (etcdctl's `-w protobuf` writes
 * the response message's encoding): one `path: value` line per scalar, the
 * path being the field numbers from the root (`1.4: 2` is header.raft_term).
 * A length-delimited field is shown as a string when it is printable ASCII,
 * else as a nested message when it parses as one, else as hex. Field order is
 * kept, so the comparison still sees the encoder's order. Undecodable input
 * is shown as hex.
 */
export function protoText(bytes: Uint8Array): string {
  const lines: string[] = [];
  if (!decodeMessage(bytes, "", lines)) return `(not protobuf) ${hex(bytes)}`;
  return lines.map((l) => l + "\n").join("");
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Appends `bytes`' fields to `out`; false (and `out` untouched) if they are not a message. */
function decodeMessage(bytes: Uint8Array, prefix: string, out: string[]): boolean {
  const lines: string[] = [];
  let pos = 0;
  const varint = (): bigint | undefined => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined) return false;
    const field = tag >> 3n;
    const wire = Number(tag & 7n);
    if (field < 1n) return false;
    const path = prefix === "" ? `${field}` : `${prefix}.${field}`;
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return false;
      lines.push(`${path}: ${v}`);
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (pos + n > bytes.length) return false;
      lines.push(`${path}: 0x${hex(bytes.subarray(pos, pos + n))}`);
      pos += n;
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || pos + Number(len) > bytes.length) return false;
      const body = bytes.subarray(pos, pos + Number(len));
      pos += Number(len);
      if (body.every((b) => b >= 0x20 && b < 0x7f)) {
        lines.push(`${path}: ${JSON.stringify(decoder.decode(body))}`);
      } else if (!decodeMessage(body, path, lines)) {
        lines.push(`${path}: 0x${hex(body)}`);
      }
    } else {
      return false;
    }
  }
  out.push(...lines);
  return true;
}

// ---------------------------------------------------------------------------
// Masks

/**
 * What one side's outputs are masked with. Everything else must be equal
 * byte for byte.
 */
export interface Masks {
  /** Exact strings (endpoints, peer addresses, temp dirs) shown as a placeholder. */
  literals: Map<string, string>;
  /**
   * Member and cluster IDs shown as names: used only where the two sides'
   * IDs legitimately differ (the 3-member clusters, whose peer URLs are
   * different ports and whose token is random).
   */
  ids: Map<bigint, string>;
  /** Lease IDs in the order this side first printed them: `<lease1>`, `<lease2>`, … */
  leases: bigint[];
  /** Names of locks and elections: their keys end in the holder's lease ID. */
  lockNames: Set<string>;
  /**
   * A 3-member cluster: raft terms are masked (elections legitimately
   * differ), and so is the member that answered (a response header's
   * member_id: etcdctl's balancer picks one of the endpoints).
   */
  cluster: boolean;
  /**
   * Leave clientv3's retry warnings (`{"level":"warn",…}` lines on stderr)
   * out: for a comparison with cairn's ctl, which is no clientv3 and logs
   * nothing (the error lines that follow them stay compared).
   */
  dropClientWarnings?: boolean;
}

/** Fresh masks with only `literals`. */
export function newMasks(literals: [string, string][] = []): Masks {
  return {
    literals: new Map(literals),
    ids: new Map(),
    leases: [],
    lockNames: new Set(),
    cluster: false,
  };
}

/** The command words of etcdctl args (before the first flag) and the -w format. */
export function parseArgs(args: string[]): { words: string[]; format: string } {
  const words: string[] = [];
  let format = "simple";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-w" || a === "--write-out") format = args[++i] ?? format;
    else if (a.startsWith("--write-out=") || a.startsWith("-w=")) format = a.split("=")[1];
    else if (a === "--") break;
    else if (a.startsWith("-")) continue;
    else if (words.length < 2) words.push(a);
  }
  return { words, format };
}

/** The placeholder of a lease ID on this side; registers it when `register`. */
function leaseName(masks: Masks, id: bigint, register: boolean): string {
  if (id === 0n) return "0";
  let i = masks.leases.indexOf(id);
  if (i < 0) {
    if (!register) return "<lease?>";
    masks.leases.push(id);
    i = masks.leases.length - 1;
  }
  return `<lease${i + 1}>`;
}

/**
 * Lease IDs are random (etcd derives them from the member ID and the clock),
 * so each is shown as `<leaseN>`, N its order of first appearance on its
 * side. They are only recognised where a lease ID is printed (never as a bare
 * number anywhere), so a server with small lease IDs is masked just as well.
 */
function maskLeases(text: string, words: string[], format: string, masks: Masks): string {
  const dec = (register: boolean) => (_: string, pre: string, id: string) =>
    `${pre}${leaseName(masks, BigInt(id), register)}`;
  const hexId = (register: boolean) => (_: string, pre: string, id: string) =>
    `${pre}${leaseName(masks, BigInt(`0x${id}`), register)}`;
  let t = text;
  // The lease a key is attached to, in get/put/del/watch/txn outputs.
  t = t.replace(/("lease":|"Lease" : |"PrevLease" : )(\d+)/g, dec(true));
  if (format === "protobuf" && ["get", "put", "del", "watch"].includes(words[0])) {
    // KeyValue.lease (field 6) in RangeResponse.kvs, PutResponse.prev_kv (2),
    // DeleteRangeResponse.prev_kvs (3), WatchResponse.events (11) kv (2) / prev_kv (3).
    t = t.replace(/^((?:2|3|11\.2|11\.3)\.6: )(\d+)$/gm, dec(true));
  }
  if (words[0] === "lease") {
    const list = words[1] === "list";
    t = t.replace(/(\blease )([0-9a-f]+)\b/g, hexId(true));
    // `lease list` prints known leases (in no defined order): not registered by it.
    if (list && format === "simple") t = t.replace(/^()([0-9a-f]+)$/gm, hexId(false));
    t = t.replace(/("ID":|"id":|"ID" : )(\d+)/g, dec(!list));
    // (-w protobuf of lease commands prints only the response header: no lease ID.)
  }
  // Lock and election keys: `<name>/<lease ID in hex>`.
  for (const name of masks.lockNames) {
    const re = new RegExp(`(\\b${name.replace(/[^\w]/g, "\\$&")}/)([0-9a-f]+)\\b`, "g");
    t = t.replace(re, hexId(true));
  }
  return t;
}

/**
 * Member and cluster IDs (decimal and hex) shown by name. `Member %16x …
 * cluster %16x` messages pad a short hex ID with spaces: the padding goes
 * with the ID.
 */
function maskIds(text: string, ids: Map<bigint, string>): string {
  // Longest first, so a hex form never matches inside a decimal one.
  const forms = [...ids].flatMap(([id, name]) => [
    [id.toString(), name],
    [id.toString(16), name],
  ]).sort((a, b) => b[0].length - a[0].length);
  let t = text;
  for (const [form, name] of forms) {
    t = t.replace(new RegExp(`(Member|cluster) +${form}(?![0-9a-f])`, "g"), `$1 ${name}`)
      .replace(new RegExp(`(?<![0-9a-f])${form}(?![0-9a-f])`, "g"), name);
  }
  return t;
}

/** Cells of the columns named `names` in every table of `text` shown as `*`. */
function maskColumns(text: string, names: Set<string>): string {
  let masked: number[] = [];
  let header = true;
  return text.split("\n").map((line) => {
    if (line.startsWith("+")) return line;
    if (!line.startsWith("|")) {
      header = true;
      return line;
    }
    const cells = line.split("|");
    if (header) {
      header = false;
      masked = cells.flatMap((c, i) => names.has(c.trim()) ? [i] : []);
      return line;
    }
    for (const i of masked) cells[i] = " * ";
    return cells.join("|");
  }).join("\n");
}

/**
 * Tables drawn without their padding: a column's width follows its widest
 * cell, which a masked cell (a duration, a size) no longer shows.
 */
function squeezeTables(text: string): string {
  return text.split("\n").map((line) => {
    if (/^\+[-+]+\+$/.test(line)) return line.replace(/-+/g, "-");
    if (line.startsWith("|")) return line.split("|").map((c) => c.trim()).join("|");
    return line;
  }).join("\n");
}

/**
 * `text` (an etcdctl output, or a transcript of several) with what
 * legitimately differs between two servers masked, for the etcdctl command
 * `args`. Each mask says why it is there.
 */
export function maskText(text: string, args: string[], masks: Masks): string {
  const { words, format } = parseArgs(args);
  const cmd = words.join(" ");
  let t = text;

  // Ports are free ports chosen per server; temp dirs are per server.
  const literals = [...masks.literals].sort((a, b) => b[0].length - a[0].length);
  for (const [from, to] of literals) t = t.replaceAll(from, to);
  t = maskIds(t, masks.ids);
  t = maskLeases(t, words, format, masks);

  if (masks.dropClientWarnings) t = t.replace(/^\{"level":"warn".*\n/gm, "");
  // clientv3's log lines (JSON on stderr: the retry interceptor's warnings,
  // snapshot save's progress): the time, the client's random ID in its
  // target, and snapshot's size and duration. Their message, caller and the
  // gRPC code and error text they quote stay compared.
  t = t.replace(/^\{"level":.*$/gm, (line) =>
    line.replace(/"ts":("[^"]*"|[\d.e+-]+)/, '"ts":"*"')
      .replace(/endpoint:\/\/client-[0-9a-f-]+\//, "endpoint://client-*/")
      .replace(/"took":[\d.e+-]+/, '"took":*')
      .replace(/"size":"[^"]*"/, '"size":"*"'));

  // The server's version: etcd says 3.4.<patch>, cairn the 3.4 API version it speaks.
  t = t.replace(/\b3\.4\.\d+\b/g, "3.4.x");

  if (cmd === "endpoint status") {
    // The database size (bbolt file vs LMDB environment) and the raft log
    // index (etcd appends internal entries, e.g. its cluster version, that
    // cairn need not have) are the server's own.
    t = t.replace(/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":\d+/g, '"$1":*')
      .replace(/"(DBSize|RaftIndex|RaftAppliedIndex)" : \d+/g, '"$1" : *');
    if (format === "simple") {
      t = t.replace(
        /^(.+?), (.+?), (.+?), (.+?), (.+?), (.+?), (.+?), (\d+), (\d+), /gm,
        (...m) => {
          const f = m.slice(1, 10) as string[];
          f[3] = "*";
          f[7] = "*";
          f[8] = "*";
          if (masks.cluster) f[6] = "*";
          return f.join(", ") + ", ";
        },
      );
    }
    t = maskColumns(t, new Set(["DB SIZE", "RAFT INDEX", "RAFT APPLIED INDEX"]));
  }
  if (cmd === "endpoint health") {
    // How long the health check's proposal took.
    t = t.replace(/took = \S+/g, "took = *").replace(/"took":"[^"]*"/g, '"took":"*"')
      .replace(/"Took" : \S+/g, '"Took" : *');
    t = maskColumns(t, new Set(["TOOK"]));
  }
  if (cmd === "endpoint hashkv") {
    // The hash covers the backend's own encoding of the keyspace.
    t = t.replace(/"hash":\d+/g, '"hash":*').replace(/"Hash" : \d+/g, '"Hash" : *');
    if (format === "simple") t = t.replace(/^(.+), \d+$/gm, "$1, *");
    t = maskColumns(t, new Set(["HASH"]));
  }
  if (cmd === "lease timetolive") {
    // Seconds left depend on when the request ran (granted TTL stays compared).
    t = t.replace(/remaining\(-?\d+s\)/g, "remaining(*s)").replace(/"ttl":-?\d+/g, '"ttl":*')
      .replace(/"TTL" : -?\d+/g, '"TTL" : *');
  }
  if (masks.cluster) {
    // Raft terms count elections, which differ between two clusters.
    t = t.replace(/"(raft_term|raftTerm)":\d+/g, '"$1":*').replace(
      /"RaftTerm" : \d+/g,
      '"RaftTerm" : *',
    );
    // The member that answered, in a response header (not for endpoint
    // commands: each of their requests goes to the endpoint it names).
    if (words[0] !== "endpoint") {
      t = t.replace(/"member_id":[^,}]+/g, '"member_id":*').replace(
        /"MemberID" : .*/g,
        '"MemberID" : *',
      );
      if (format === "protobuf") t = t.replace(/^1\.2: .*$/gm, "1.2: *");
    }
    if (format === "protobuf") t = t.replace(/^1\.4: .*$/gm, "1.4: *");
    t = maskColumns(t, new Set(["RAFT TERM"]));
  }
  if (format === "table") t = squeezeTables(t);
  return t;
}

/**
 * Output whose order is not defined, put in a canonical order: lines sorted,
 * JSON arrays sorted, ETCD_INITIAL_CLUSTER's entries sorted. For outputs
 * ordered by random IDs (members, leases) or by completion (health checks).
 */
export function canonicalOrder(text: string): string {
  const lines = text.split("\n").map((line) => {
    const m = /^ETCD_INITIAL_CLUSTER="(.*)"$/.exec(line);
    if (m) return `ETCD_INITIAL_CLUSTER="${m[1].split(",").sort().join(",")}"`;
    line = line.replace(
      /attached keys\(\[(.*)\]\)/,
      (_, keys: string) => `attached keys([${keys.split(" ").sort().join(" ")}])`,
    );
    if (!line.startsWith("{") && !line.startsWith("[")) return line;
    try {
      // Masked IDs are bare <names>, and 64-bit IDs lose digits as JS
      // numbers: quote both so the line parses exactly.
      const quoted = line.replace(/([:[,])(<[\w?-]+>|\*|-?\d{16,})(?=[,}\]])/g, '$1"$2"');
      const json = JSON.parse(quoted);
      return JSON.stringify(sortArrays(json));
    } catch {
      return line;
    }
  });
  return lines.sort().join("\n");
}

function sortArrays(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(sortArrays).sort((a, b) => {
      const [x, y] = [JSON.stringify(a), JSON.stringify(b)];
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortArrays(x)]));
  }
  return v;
}

// ---------------------------------------------------------------------------
// Report

/**
 * A line diff of `want` and `got` (longest common subsequence): unchanged
 * lines prefixed with two spaces, `want`'s with `- `, `got`'s with `+ `.
 * Long runs of unchanged lines are cut to 2 lines of context, and the whole
 * to {@linkcode MAX_DIFF_LINES} lines.
 */
export function lineDiff(want: string, got: string): string {
  const a = want.split("\n");
  const b = got.split("\n");
  const lcs: number[][] = Array.from(
    { length: a.length + 1 },
    () => new Array(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: { same: boolean; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ same: true, text: `  ${a[i]}` });
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push({ same: false, text: `+ ${b[j++]}` });
    } else {
      out.push({ same: false, text: `- ${a[i++]}` });
    }
  }
  const near = (k: number) => out.slice(Math.max(0, k - 2), k + 3).some((l) => !l.same);
  const shown: string[] = [];
  out.forEach((l, k) => {
    if (near(k)) shown.push(l.text);
    else if (shown.at(-1) !== "  …") shown.push("  …");
  });
  if (shown.length > MAX_DIFF_LINES) {
    const more = shown.length - MAX_DIFF_LINES;
    shown.splice(MAX_DIFF_LINES, more, `  … (${more} more lines)`);
  }
  return shown.join("\n");
}

/** Lines of one command's diff in a report, at most. */
export const MAX_DIFF_LINES = 40;

// ---------------------------------------------------------------------------
// Sides and the comparison

/** One side of the comparison: where its etcdctl connects and how its outputs are masked. */
export interface Side {
  /** Shown in the report: `etcd`, `cairn`, `etcd (second)`. */
  label: string;
  /** etcdctl's --endpoints unless a command names others. */
  endpoints: string;
  /** The directory etcdctl runs in (its snapshot files land there). */
  dir: string;
  masks: Masks;
  /**
   * Values of `{name}` in arguments and stdin; `{leaseN}` is also known: the
   * Nth lease ID this side printed, in hex.
   */
  vars: Map<string, string>;
  /** The CLI this side runs: etcdctl when undefined, or e.g. {@linkcode CTL_COMMAND}. */
  cli?: readonly string[];
}

/** `{name}` in `text` replaced by the side's value (`{leaseN}`: its Nth lease, in hex). */
export function resolve(text: string, side: Side): string {
  return text.replace(/\{([\w:-]+)\}/g, (m, name: string) => {
    const lease = /^lease(\d+)$/.exec(name);
    if (lease) return side.masks.leases[Number(lease[1]) - 1]?.toString(16) ?? m;
    return side.vars.get(name) ?? m;
  });
}

/** Options of {@linkcode Diff.ctl}. */
export interface CtlOptions {
  /** etcdctl's stdin (txn's grammar, put's value); `{name}`s are resolved. */
  stdin?: string;
  /** --endpoints instead of the side's own; `{name}`s are resolved. */
  endpoints?: string;
  /** Compare the outputs in {@linkcode canonicalOrder} (their order is not defined). */
  sorted?: boolean;
  /** Hard timeout of each side's command, in ms. */
  timeoutMs?: number;
  /**
   * Run a side's command again (every 500 ms, at most 20 times) while its
   * stderr matches: for a refusal that depends on timing, not on the
   * request. Only the last run is compared.
   */
  retryWhile?: RegExp;
  /**
   * Called with each side's run before it is masked: to learn a value it
   * printed (a fresh member ID) that later commands use and masks hide.
   */
  learn?: (side: Side, run: Run) => void;
}

/** Thrown by {@linkcode Diff} once a group has {@linkcode MAX_DIFFERENCES} differences. */
export class TooManyDifferences extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TooManyDifferences";
  }
}

/** ETCDCTL_DIFF_VERBOSE=1 prints every masked transcript of the reference side. */
const VERBOSE = Deno.env.get("ETCDCTL_DIFF_VERBOSE") === "1";

/** Differences collected in one group before it stops (each later command might wait on timeouts). */
export const MAX_DIFFERENCES = 5;

/** The masked transcript of one etcdctl run. */
export function transcript(run: Run, args: string[], side: Side, sorted = false): string {
  const { format } = parseArgs(args);
  const raw = format === "protobuf" && run.code === 0
    ? protoText(run.stdout)
    : decoder.decode(run.stdout);
  let stdout = maskText(raw, args, side.masks);
  if (sorted) stdout = canonicalOrder(stdout);
  const stderr = maskText(run.stderr, args, side.masks);
  const exit = run.timedOut ? "killed at the timeout" : `exit ${run.code}`;
  return `${exit}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
}

/**
 * The same etcdctl commands against a reference side (etcd) and a subject
 * (cairn), compared after masking; differences are collected and reported by
 * {@linkcode Diff.finish}.
 */
export class Diff {
  readonly ref: Side;
  readonly sub: Side;
  readonly differences: string[] = [];

  constructor(ref: Side, sub: Side) {
    this.ref = ref;
    this.sub = sub;
  }

  /**
   * Run `etcdctl --endpoints … args` (or the side's own CLI) on both sides at once and compare exit
   * code, stdout and stderr after masking. `args` is a list, or a string
   * split on spaces. Resolves with both runs (reference first).
   */
  async ctl(args: string | string[], options: CtlOptions = {}): Promise<[Run, Run]> {
    const list = typeof args === "string" ? args.split(/\s+/).filter((a) => a !== "") : args;
    const one = async (side: Side) => {
      const resolved = list.map((a) => resolve(a, side));
      const endpoints = resolve(options.endpoints ?? side.endpoints, side);
      for (let attempt = 1;; attempt++) {
        const run = await runCli(side.cli, ["--endpoints", endpoints, ...resolved], {
          cwd: side.dir,
          stdin: options.stdin === undefined ? undefined : resolve(options.stdin, side),
          timeoutMs: options.timeoutMs,
        });
        if (!options.retryWhile?.test(run.stderr) || attempt >= 20) return run;
        await sleep(500);
      }
    };
    const [want, got] = await Promise.all([one(this.ref), one(this.sub)]);
    options.learn?.(this.ref, want);
    options.learn?.(this.sub, got);
    const shown = list.map((a) => (a === "" || /\s/.test(a) ? JSON.stringify(a) : a));
    const label = `etcdctl ${shown.join(" ")}` +
      (options.stdin === undefined ? "" : ` <<< ${JSON.stringify(options.stdin)}`);
    this.compare(
      label,
      transcript(want, list, this.ref, options.sorted),
      transcript(got, list, this.sub, options.sorted),
    );
    return [want, got];
  }

  /**
   * Run `fn` on both sides at once (a scenario with long-running processes);
   * each returns a transcript, masked as outputs of `args` and compared.
   */
  async flow(label: string, args: string[], fn: (side: Side) => Promise<string>): Promise<void> {
    const [want, got] = await Promise.all([fn(this.ref), fn(this.sub)]);
    this.compare(label, maskText(want, args, this.ref.masks), maskText(got, args, this.sub.masks));
  }

  /** Record a difference between `want` (reference) and `got` (subject), if any. */
  compare(label: string, want: string, got: string): void {
    if (VERBOSE) console.log(`$ ${label}\n${want}\n`);
    if (want === got) return;
    this.differences.push(`$ ${label}\n${lineDiff(want, got)}`);
    if (this.differences.length >= MAX_DIFFERENCES) {
      throw new TooManyDifferences(`stopped after ${MAX_DIFFERENCES} differences`);
    }
  }

  /** Throw a report of the differences, if any. */
  finish(): void {
    if (this.differences.length === 0) return;
    throw new Error(
      `etcdctl's output differs between ${this.ref.label} (-) and ${this.sub.label} (+) ` +
        `in ${this.differences.length} command(s)` +
        (this.differences.length >= MAX_DIFFERENCES ? " (stopped there)" : "") +
        `:\n\n${this.differences.join("\n\n")}`,
    );
  }
}

/**
 * Start `etcdctl args` on `side` as a long-running process (watch, lock
 * holder, elect); the caller stops it in a `finally`.
 */
export function spawnEtcdctl(side: Side, args: string[], endpoints?: string): Proc {
  return new Proc("etcdctl", [
    "--endpoints",
    resolve(endpoints ?? side.endpoints, side),
    ...args.map((a) => resolve(a, side)),
  ], { env: ETCDCTL_ENV, cwd: side.dir });
}
