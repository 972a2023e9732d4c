/**
 * Test helper shared by the integration, differential and load tests: real
 * etcd 3.4 and cairn (`main.ts` with etcd's flags) as child processes on free
 * loopback ports, each on its own data dir.
 *
 * @module
 */
import "./watchdog.ts";

/** The repository root. */
export const ROOT: string = new URL("../", import.meta.url).pathname;

/** Whether `bin args` runs and exits 0. */
export async function runs(bin: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(bin, { args, stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

/** True when an `etcd` binary is on PATH (the differential tests need it). */
export const HAVE_ETCD: boolean = await runs("etcd", ["--version"]);

/**
 * `stderr` of a `deno run` child without Deno's own notices about itself
 * (waiting for another Deno process's lock on node_modules, downloading a
 * package on a first run), which are not the program's output.
 */
export function withoutDenoNotices(stderr: string): string {
  return stderr.replace(/^(Blocking waiting for file lock on .*|Download https?:\/\/.*)\n/gm, "");
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** How long a health probe of a starting server may take, in ms. */
const HEALTH_PROBE_TIMEOUT_MS = 5_000;
/** How long a server may take to exit after SIGTERM before it is killed, in ms. */
const STOP_TIMEOUT_MS = 30_000;

/** A server child process. */
export interface ServerProcess {
  /** Base URL of the client listener, e.g. `http://127.0.0.1:23790`. */
  url: string;
  /** The same as `host:port` (etcdctl's --endpoints form). */
  endpoint: string;
  child: Deno.ChildProcess;
  /** SIGKILL (kill -9) the process, if running, and wait for it. */
  kill(): Promise<void>;
  /**
   * SIGTERM the process and wait; resolves with its exit code.
   *
   * @throws {Error} when it had not exited STOP_TIMEOUT_MS later (it is
   *   killed then).
   */
  terminate(): Promise<number>;
}

async function spawn(
  what: string,
  cmd: string,
  args: string[],
  url: string,
  client?: Deno.HttpClient,
): Promise<ServerProcess> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const send = (sig: Deno.Signal) => {
    if (exited) return;
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  };
  const signal = async (sig: Deno.Signal) => {
    send(sig);
    if (sig === "SIGKILL") return (await status).code;
    // A server that does not stop on SIGTERM is killed, and its test fails
    // instead of hanging the run.
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      send("SIGKILL");
    }, STOP_TIMEOUT_MS);
    const code = (await status).code;
    clearTimeout(timer);
    if (late) {
      throw new Error(`${what} at ${url} did not exit within ${STOP_TIMEOUT_MS} ms of ${sig}`);
    }
    return code;
  };
  const server: ServerProcess = {
    url,
    endpoint: url.replace(/^https?:\/\//, ""),
    child,
    kill: async () => void await signal("SIGKILL"),
    terminate: () => signal("SIGTERM"),
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`, {
        signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS),
        ...(client === undefined ? {} : { client }),
      });
      const body = await res.text();
      if (res.ok && body.includes("true")) return server;
    } catch {
      // not listening yet
    }
    if (exited || Date.now() > deadline) {
      const code = await server.terminate();
      throw new Error(`${what} did not become healthy at ${url} (exit code ${code})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Start a server on freshly chosen ports; if it exits before it is healthy
 * (a chosen port was taken between choosing and binding), try new ports, up
 * to 3 times.
 */
async function withFreshPorts(start: () => Promise<ServerProcess>): Promise<ServerProcess> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/** Start etcd 3.4 as a one-member cluster with its data in `dataDir`. */
export function startEtcd(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  return withFreshPorts(() => spawnEtcd(dataDir, extraArgs));
}

function spawnEtcd(dataDir: string, extraArgs: string[]): Promise<ServerProcess> {
  return startEtcdAt(dataDir, `http://127.0.0.1:${freePort()}`, extraArgs);
}

/**
 * Start etcd 3.4 serving clients on `url` exactly, with its data in
 * `dataDir`, plus `extraArgs`; `client` (TLS settings) checks its health.
 */
export function startEtcdAt(
  dataDir: string,
  url: string,
  extraArgs: string[] = [],
  client?: Deno.HttpClient,
): Promise<ServerProcess> {
  const peer = `http://127.0.0.1:${freePort()}`;
  return spawn(
    "etcd",
    "etcd",
    [
      "--name",
      "default",
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `default=${peer}`,
      ...extraArgs,
    ],
    url,
    client,
  );
}

/** Start cairn (`main.ts`) with its data in `dataDir`, plus `extraArgs`. */
export function startCairn(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  return withFreshPorts(() => spawnCairn(dataDir, extraArgs));
}

/**
 * Start cairn serving clients on `url` exactly (a restart on the address a
 * client already knows), with its data in `dataDir`, plus `extraArgs`;
 * `client` (TLS settings) checks its health.
 */
export function startCairnAt(
  dataDir: string,
  url: string,
  extraArgs: string[] = [],
  client?: Deno.HttpClient,
): Promise<ServerProcess> {
  return spawn(
    "cairn",
    Deno.execPath(),
    [
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      ...cairnArgs(dataDir, url, extraArgs),
    ],
    url,
    client,
  );
}

/** A member's flags for data in `dataDir`, serving clients on `url`, plus `extra`. */
export function cairnArgs(dataDir: string, url: string, extra: string[] = []): string[] {
  return [
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
    ...extra,
  ];
}

function spawnCairn(dataDir: string, extraArgs: string[]): Promise<ServerProcess> {
  return startCairnAt(dataDir, `http://127.0.0.1:${freePort()}`, extraArgs);
}

/** What a cairn process that was expected to exit did. */
export interface Exited {
  /** Exit code; undefined if it was still running at the deadline (then it was killed). */
  code: number | undefined;
  /** Everything it wrote to stderr (without Deno's own notices). */
  stderr: string;
}

/**
 * Run cairn (`main.ts`) with `args` and wait, at most `timeoutMs`, for it to
 * exit on its own (a server that should refuse to start); a process still
 * running at the deadline is killed and reported with code undefined.
 */
export async function runCairnToExit(args: string[], timeoutMs = 20_000): Promise<Exited> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}main.ts`, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: timedOut ? undefined : out.code,
    stderr: withoutDenoNotices(new TextDecoder().decode(out.stderr)),
  };
}
