/**
 * Test helper: runs a cairn server as a child process on a free loopback
 * port, as a user would (`main.ts` with etcd's flags).
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A cairn server child process. */
export interface CairnProcess {
  /** Base URL of the client listener, e.g. http://127.0.0.1:23790. */
  url: string;
  dataDir: string;
  child: Deno.ChildProcess;
  /** SIGKILL the process and wait for it. */
  kill9(): Promise<void>;
  /** SIGTERM the process and wait for a clean exit; returns the exit code. */
  stop(): Promise<number>;
}

/**
 * Start `main.ts` on `dataDir` and wait until GET /health answers.
 *
 * @throws {Error} when the server does not answer within `timeoutMs`.
 */
export async function startCairn(
  dataDir: string,
  extraArgs: string[] = [],
  timeoutMs = 30_000,
): Promise<CairnProcess> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      ...extraArgs,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      await stderr;
      throw new Error(`cairn did not become healthy on ${url} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    dataDir,
    child,
    async kill9() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await stderr;
    },
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      await stderr;
      return status.code;
    },
  };
}
