/**
 * Real-process cluster harness: a 3- or 5-member cluster of real etcd 3.4 or
 * of cairn (`deno run -A main.ts`), started with the same etcd flags on free
 * loopback ports, each member on its own data dir, plus the faults the
 * cluster tests inject (SIGKILL, SIGSTOP/SIGCONT, restart) and the JSON
 * gateway calls they make. Every wait and every request is bounded in time,
 * every polling loop in count.
 *
 * What the harness needs from a member: POST /v3/maintenance/status answering
 * `header.member_id`, `leader` (the leader's member ID as a decimal string,
 * "0" or absent when it knows none) and `raftTerm`; POST /v3/kv/put and
 * /v3/kv/range with base64 keys and values (`serializable` honoured).
 *
 * @module
 */

import { ROOT } from "../servers.ts";

/** Which server the members run. */
export type ClusterKind = "etcd" | "cairn";

/** Time allowed for a whole cluster to start and elect a leader, in ms. */
export const START_TIMEOUT_MS = 60_000;
/** Times a cluster start is tried, on fresh ports each time, when a member finds a port taken. */
export const START_ATTEMPTS = 3;
/** How etcd (Go) and cairn (Deno) report a port in use, in a member's log. */
const PORT_TAKEN = /address already in use|AddrInUse/i;
/** Time allowed for {@linkcode Cluster.waitReady} by default, in ms. */
export const READY_TIMEOUT_MS = 30_000;
/** Time allowed for {@linkcode Cluster.leader} to find a leader by default, in ms. */
export const LEADER_TIMEOUT_MS = 15_000;
/** Time allowed for one status request while polling, in ms. */
export const STATUS_TIMEOUT_MS = 1_000;
/** Time allowed for one put or range by default, in ms. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** Pause between two polls, in ms. */
export const POLL_INTERVAL_MS = 50;
/** Time allowed for a signalled process to be reaped, in ms. */
export const EXIT_TIMEOUT_MS = 10_000;
/** Lines of a member's log quoted in an error. */
export const LOG_TAIL_LINES = 30;
/** Attempts of a member add that etcd refuses as `unhealthy cluster`, at most. */
export const MEMBER_ADD_ATTEMPTS = 20;
/** Pause between those attempts, in ms. */
export const MEMBER_ADD_RETRY_MS = 500;

/** The upper bound on polls of a wait of `timeoutMs` (every poll sleeps {@linkcode POLL_INTERVAL_MS}). */
function maxPolls(timeoutMs: number): number {
  return Math.ceil(timeoutMs / POLL_INTERVAL_MS) + 1;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Ports

/** Ports this process has handed out; never handed out twice. */
const handedOut = new Set<number>();

/**
 * `n` distinct free ports on 127.0.0.1: all bound at once (so they differ
 * from each other), none handed out before by this process, then released
 * for the members to bind. Another process may still take one in between;
 * {@linkcode startCluster} retries on fresh ports when that happens.
 */
export function allocatePorts(n: number): number[] {
  const listeners: Deno.Listener[] = [];
  const ports: number[] = [];
  try {
    // Each attempt binds a new port; the bound keeps a run of reused ports finite.
    for (let attempt = 0; ports.length < n && attempt < n * 20; attempt++) {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      listeners.push(l);
      const port = (l.addr as Deno.NetAddr).port;
      if (!handedOut.has(port)) ports.push(port);
    }
  } finally {
    for (const l of listeners) l.close();
  }
  if (ports.length < n) throw new Error(`found only ${ports.length} of ${n} free ports`);
  for (const p of ports) handedOut.add(p);
  return ports;
}

// ---------------------------------------------------------------------------
// JSON gateway calls

/** A request that did not get a 200 answer. */
export class RequestError extends Error {
  /** timeout: no answer in time; connection: refused or dropped; status: a non-200 answer. */
  readonly kind: "timeout" | "connection" | "status";
  /** The HTTP status, for kind "status". */
  readonly status: number | undefined;

  constructor(kind: "timeout" | "connection" | "status", message: string, status?: number) {
    super(message);
    this.name = "RequestError";
    this.kind = kind;
    this.status = status;
  }
}

/** POST `body` as JSON to `url + path`; the parsed answer, or a {@linkcode RequestError}. */
export async function postJson(
  url: string,
  path: string,
  body: unknown,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<Record<string, unknown>> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url + path, {
      method: "POST",
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    const text = await res.text();
    if (res.status !== 200) {
      throw new RequestError("status", `${path} on ${url}: ${res.status} ${text}`, res.status);
    }
    return JSON.parse(text);
  } catch (err) {
    if (err instanceof RequestError) throw err;
    if (abort.signal.aborted) {
      throw new RequestError("timeout", `${path} on ${url}: no answer in ${timeoutMs} ms`);
    }
    throw new RequestError("connection", `${path} on ${url}: ${err}`);
  } finally {
    clearTimeout(timer);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Standard base64 of raw bytes. */
function b64bytes(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Standard base64 of a string's UTF-8. */
export function b64(s: string): string {
  return b64bytes(encoder.encode(s));
}

/** The UTF-8 string a base64 value holds. */
export function unb64(s: string): string {
  return decoder.decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
}

/** The end of the range of keys starting with `prefix` (etcd's prefix range_end). */
function prefixEnd(prefix: string): string {
  const bytes = encoder.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i]++;
      return b64bytes(end);
    }
  }
  return b64bytes(new Uint8Array([0]));
}

/** Options of a read. */
export interface ReadOptions {
  /** A serializable (local) read instead of a linearizable one. */
  serializable?: boolean;
  /** Time allowed, in ms (default {@linkcode REQUEST_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** Put `key` = `value` through `member`; resolves with the revision of the write. */
export async function put(
  member: Member,
  key: string,
  value: string,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<number> {
  const body = await postJson(
    member.clientUrl,
    "/v3/kv/put",
    { key: b64(key), value: b64(value) },
    timeoutMs,
  );
  const header = body.header as { revision?: string } | undefined;
  return Number(header?.revision ?? 0);
}

/** The value of `key` read through `member`, or null if it is absent. */
export async function get(
  member: Member,
  key: string,
  options: ReadOptions = {},
): Promise<string | null> {
  const body = await postJson(
    member.clientUrl,
    "/v3/kv/range",
    { key: b64(key), serializable: options.serializable ?? false },
    options.timeoutMs ?? REQUEST_TIMEOUT_MS,
  );
  const kvs = body.kvs as { value?: string }[] | undefined;
  if (!kvs || kvs.length === 0) return null;
  return unb64(kvs[0].value ?? "");
}

/** Every key starting with `prefix` and its value, read through `member`. */
export async function getPrefix(
  member: Member,
  prefix: string,
  options: ReadOptions = {},
): Promise<Map<string, string>> {
  const body = await postJson(
    member.clientUrl,
    "/v3/kv/range",
    { key: b64(prefix), range_end: prefixEnd(prefix), serializable: options.serializable ?? false },
    options.timeoutMs ?? REQUEST_TIMEOUT_MS,
  );
  const kvs = (body.kvs ?? []) as { key: string; value?: string }[];
  return new Map(kvs.map((kv) => [unb64(kv.key), unb64(kv.value ?? "")]));
}

/** The fields of a member's Maintenance.Status answer the harness reads. */
export interface MemberStatus {
  /** This member's ID (decimal). */
  memberId: string;
  /** The leader's member ID as this member knows it (decimal), "0" for none. */
  leader: string;
  raftTerm: number;
  raftIndex: number;
}

/** `member`'s status (POST /v3/maintenance/status). */
export async function status(
  member: Member,
  timeoutMs: number = STATUS_TIMEOUT_MS,
): Promise<MemberStatus> {
  const body = await postJson(member.clientUrl, "/v3/maintenance/status", {}, timeoutMs);
  const header = body.header as { member_id?: string } | undefined;
  return {
    memberId: header?.member_id ?? "0",
    leader: (body.leader as string | undefined) ?? "0",
    raftTerm: Number(body.raftTerm ?? 0),
    raftIndex: Number(body.raftIndex ?? 0),
  };
}

// ---------------------------------------------------------------------------
// Members and the cluster

/** One member process. */
export interface Member {
  name: string;
  /** e.g. `http://127.0.0.1:41234`. */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  /** Its log (stdout and stderr, across restarts). */
  logFile: string;
  /** The running process's pid; undefined once killed. */
  pid: number | undefined;
  /** Its member ID (decimal), learned from its status; "" until then. */
  id: string;
  /** running, stopped (SIGSTOP) or killed (exited). */
  state: "running" | "stopped" | "killed";
  /**
   * For a member added to a running cluster: the --initial-cluster it
   * starts with (state `existing`); undefined for a bootstrap member.
   */
  joined?: string;
  /** Flags of this member alone, after the cluster's (e.g. its own certificate). */
  flags?: string[];
}

interface Proc {
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  kind: ClusterKind;
  /** Members at the start (1: a single member, grown with {@linkcode Cluster.join}). */
  size: 1 | 3 | 5;
  /** Extra flags given to every member (e.g. `--election-timeout`, `1000`). */
  flags?: string[];
  /** The peer URLs' scheme (default http); https needs the --peer-* flags in `flags`. */
  peerScheme?: "http" | "https";
  /** The client that reaches the members' peer URLs (the fault endpoints) over https. */
  peerClient?: Deno.HttpClient;
}

/** A running cluster; {@linkcode Cluster.close} ends it. */
export class Cluster {
  readonly kind: ClusterKind;
  readonly members: Member[];
  /** The directory holding every member's data dir and log. */
  readonly dir: string;
  readonly #flags: string[];
  readonly #token: string;
  readonly #procs = new Map<Member, Proc>();
  readonly #peerClient: Deno.HttpClient | undefined;

  constructor(
    kind: ClusterKind,
    members: Member[],
    dir: string,
    flags: string[],
    token: string,
    peerClient?: Deno.HttpClient,
  ) {
    this.kind = kind;
    this.members = members;
    this.dir = dir;
    this.#flags = flags;
    this.#token = token;
    this.#peerClient = peerClient;
  }

  /** The command line of `member` (the same at every start). */
  args(member: Member): { cmd: string; args: string[] } {
    const initialCluster = member.joined ??
      this.members.filter((m) => m.joined === undefined).map((m) => `${m.name}=${m.peerUrl}`)
        .join(",");
    const flags = [
      "--name",
      member.name,
      "--data-dir",
      member.dataDir,
      "--listen-client-urls",
      member.clientUrl,
      "--advertise-client-urls",
      member.clientUrl,
      "--listen-peer-urls",
      member.peerUrl,
      "--initial-advertise-peer-urls",
      member.peerUrl,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-state",
      member.joined === undefined ? "new" : "existing",
      "--initial-cluster-token",
      this.#token,
      ...this.#flags,
      ...(member.flags ?? []),
    ];
    return this.kind === "etcd"
      ? { cmd: "etcd", args: flags }
      : { cmd: Deno.execPath(), args: ["run", "-A", `${ROOT}main.ts`, ...flags] };
  }

  /**
   * Start `member`'s process (it must not be running). With an existing data
   * dir the server restarts from it; the initial-cluster flags are then
   * ignored (etcd's rule), so the command line is the same as at bootstrap.
   */
  spawn(member: Member): void {
    if (this.#procs.has(member)) throw new Error(`${member.name} is already running`);
    const { cmd, args } = this.args(member);
    // The shell only redirects output to the log, then becomes the server
    // (exec): the pid is the server's, so signals reach it directly.
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$CLUSTER_MEMBER_LOG" 2>&1', cmd, ...args],
      // cairn's peer port then takes the fault injection of isolate() and heal().
      env: { CLUSTER_MEMBER_LOG: member.logFile, CAIRN_FAULT_INJECTION: "1" },
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const proc: Proc = { child, status: child.status, exited: false };
    proc.status = child.status.then((s) => {
      proc.exited = true;
      return s;
    });
    this.#procs.set(member, proc);
    member.pid = child.pid;
    member.state = "running";
  }

  /** Whether `member`'s process has exited (or was never started). */
  exited(member: Member): boolean {
    const p = this.#procs.get(member);
    return p === undefined || p.exited;
  }

  /** Members whose process runs and is not stopped. */
  running(): Member[] {
    return this.members.filter((m) => m.state === "running");
  }

  /** The last {@linkcode LOG_TAIL_LINES} lines of `member`'s log. */
  logTail(member: Member): string {
    try {
      const lines = Deno.readTextFileSync(member.logFile).trimEnd().split("\n");
      return lines.slice(-LOG_TAIL_LINES).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Send `signal` to `member` (default SIGKILL) and, for a kill, wait until it has exited. */
  async kill(member: Member, signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    const p = this.#procs.get(member);
    if (!p) return;
    if (!p.exited) {
      try {
        p.child.kill(signal);
      } catch {
        // already gone
      }
      if (signal === "SIGTERM" && member.state === "stopped") p.child.kill("SIGCONT");
    }
    const timer = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, EXIT_TIMEOUT_MS);
    try {
      await p.status;
    } finally {
      clearTimeout(timer);
    }
    this.#procs.delete(member);
    member.pid = undefined;
    member.state = "killed";
  }

  /** SIGSTOP `member`: it keeps its sockets but runs no more until {@linkcode cont}. */
  stop(member: Member): void {
    const p = this.#procs.get(member);
    if (!p || p.exited) throw new Error(`${member.name} is not running`);
    p.child.kill("SIGSTOP");
    member.state = "stopped";
  }

  /** SIGCONT a member stopped by {@linkcode stop}. */
  cont(member: Member): void {
    const p = this.#procs.get(member);
    if (!p || p.exited) throw new Error(`${member.name} is not running`);
    p.child.kill("SIGCONT");
    member.state = "running";
  }

  /**
   * Start a killed `member` again on its data dir and ports, and wait until it
   * answers its status (it may still be catching up).
   */
  async restart(member: Member, timeoutMs: number = READY_TIMEOUT_MS): Promise<void> {
    if (this.#procs.has(member)) await this.kill(member);
    this.spawn(member);
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < maxPolls(timeoutMs); i++) {
      if (this.exited(member)) {
        throw new Error(`${member.name} exited on restart:\n${this.logTail(member)}`);
      }
      try {
        const s = await status(member);
        member.id = s.memberId;
        return;
      } catch {
        // not answering yet
      }
      if (Date.now() > deadline) break;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`${member.name} did not answer in ${timeoutMs} ms:\n${this.logTail(member)}`);
  }

  /**
   * Wait until every running member answers its status and all of them name
   * the same leader, which is one of them and says so itself. Stopped and
   * killed members are not waited for.
   */
  async waitReady(timeoutMs: number = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (let i = 0; i < maxPolls(timeoutMs); i++) {
      const members = this.running();
      const dead = members.find((m) => this.exited(m));
      if (dead) throw new Error(`${dead.name} exited:\n${this.logTail(dead)}`);
      const answers = await Promise.allSettled(members.map((m) => status(m)));
      const statuses: MemberStatus[] = [];
      answers.forEach((a, j) => {
        if (a.status === "fulfilled") {
          statuses.push(a.value);
          members[j].id = a.value.memberId;
        }
      });
      if (statuses.length === members.length) {
        const leaders = new Set(statuses.map((s) => s.leader));
        const [leader] = leaders;
        if (leaders.size === 1 && leader !== "0" && statuses.some((s) => s.memberId === leader)) {
          return;
        }
        last = `leaders named: ${[...leaders].join(", ")}`;
      } else {
        last = answers.filter((a) => a.status === "rejected")
          .map((a) => String((a as PromiseRejectedResult).reason)).join("; ");
      }
      if (Date.now() > deadline) break;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`cluster not ready in ${timeoutMs} ms (${last})`);
  }

  /**
   * The running member whose own status says it leads (the one with the
   * highest term if a deposed leader has not noticed yet); waits for one,
   * at most `timeoutMs`.
   */
  async leader(timeoutMs: number = LEADER_TIMEOUT_MS): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < maxPolls(timeoutMs); i++) {
      const members = this.running();
      const answers = await Promise.allSettled(members.map((m) => status(m)));
      let best: { member: Member; term: number } | undefined;
      answers.forEach((a, j) => {
        if (a.status !== "fulfilled") return;
        members[j].id = a.value.memberId;
        const { leader, memberId, raftTerm } = a.value;
        if (leader === memberId && leader !== "0" && (!best || raftTerm > best.term)) {
          best = { member: members[j], term: raftTerm };
        }
      });
      if (best) return best.member;
      if (Date.now() > deadline) break;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`no leader among the running members in ${timeoutMs} ms`);
  }

  /**
   * Add a member through `via` (etcd's MemberAdd, a learner when `learner`)
   * and start it with --initial-cluster-state existing; resolves once it
   * answers its status. The cluster's `members` then include it.
   */
  async join(via: Member, learner = false, flags?: string[]): Promise<Member> {
    const [clientPort, peerPort] = allocatePorts(2);
    const name = `m${this.members.length}`;
    const scheme = new URL(via.peerUrl).protocol;
    const peerUrl = `${scheme}//127.0.0.1:${peerPort}`;
    // etcd refuses a change until its members have been connected for a while.
    let added: Record<string, unknown> | undefined;
    for (let i = 0; added === undefined; i++) {
      try {
        added = await postJson(via.clientUrl, "/v3/cluster/member/add", {
          peerURLs: [peerUrl],
          isLearner: learner,
        });
      } catch (err) {
        if (i >= MEMBER_ADD_ATTEMPTS || !String(err).includes("unhealthy cluster")) throw err;
        await sleep(MEMBER_ADD_RETRY_MS);
      }
    }
    const members = added.members as { ID: string; name?: string; peerURLs: string[] }[];
    const newId = (added.member as { ID: string }).ID;
    const joined = members.map((m) => `${m.ID === newId ? name : m.name ?? ""}=${m.peerURLs[0]}`)
      .join(",");
    const member: Member = {
      name,
      clientUrl: `http://127.0.0.1:${clientPort}`,
      peerUrl,
      dataDir: `${this.dir}/${name}`,
      logFile: `${this.dir}/${name}.log`,
      pid: undefined,
      id: newId,
      state: "killed",
      joined,
      flags,
    };
    this.members.push(member);
    await this.restart(member);
    member.id = newId;
    return member;
  }

  /**
   * Cut `member` off from its peers (every Raft message to and from it is
   * dropped) through cairn's fault injection on its peer port; cairn only.
   */
  async isolate(member: Member): Promise<void> {
    await this.#fault(member, "isolate");
  }

  /** End {@linkcode Cluster.isolate} of `member`. */
  async heal(member: Member): Promise<void> {
    await this.#fault(member, "heal");
  }

  async #fault(member: Member, what: "isolate" | "heal"): Promise<void> {
    if (this.kind !== "cairn") throw new Error("fault injection is cairn's");
    const res = await fetch(`${member.peerUrl}/cairn/fault/${what}`, {
      ...(this.#peerClient === undefined ? {} : { client: this.#peerClient }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${what} ${member.name}: HTTP ${res.status}`);
  }

  /** The running members other than `member`. */
  others(member: Member): Member[] {
    return this.running().filter((m) => m !== member);
  }

  /** Kill every member and remove the cluster's directory. */
  async close(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => this.kill(m)));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Start a cluster of `size` members of `kind` with etcd's bootstrap flags
 * and `flags`, on fresh loopback ports, and wait until it has a leader. If
 * a member exits while starting because a port was taken by another process
 * between allocation and binding, the attempt is abandoned and the cluster
 * started again on new ports, at most {@linkcode START_ATTEMPTS} times.
 */
/**
 * `size` members `m0`, `m1`, … not started yet: free loopback client and
 * peer ports, data dirs and logs under `dir`.
 */
export function planMembers(
  dir: string,
  size: number,
  peerScheme: "http" | "https" = "http",
): Member[] {
  const ports = allocatePorts(2 * size);
  return Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `${peerScheme}://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: `${dir}/m${i}`,
    logFile: `${dir}/m${i}.log`,
    pid: undefined,
    id: "",
    state: "killed",
  }));
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const dir = await Deno.makeTempDir({ prefix: `cairn-cluster-${options.kind}-` });
    const members = planMembers(dir, options.size, options.peerScheme);
    const token = `cluster-${crypto.randomUUID().slice(0, 8)}`;
    const cluster = new Cluster(
      options.kind,
      members,
      dir,
      options.flags ?? [],
      token,
      options.peerClient,
    );
    try {
      for (const m of members) cluster.spawn(m);
      await cluster.waitReady(START_TIMEOUT_MS);
      return cluster;
    } catch (err) {
      const portTaken = members.some((m) =>
        cluster.exited(m) && PORT_TAKEN.test(cluster.logTail(m))
      );
      const logs = members.map((m) => `--- ${m.name}\n${cluster.logTail(m)}`).join("\n");
      lastError = new Error(`${options.kind} cluster did not start: ${err}\n${logs}`);
      await cluster.close();
      if (!portTaken) break; // not a port race: a retry would not help
    }
  }
  throw lastError;
}
