/**
 * A watchdog for every test of a file that imports it (tests/servers.ts
 * does, so every integration and differential test has it): a test still
 * running TEST_WATCHDOG_MS after it started gets its child processes
 * (servers, etcdctl, …) killed with SIGKILL, so a test that waits for a
 * server that never answers fails instead of holding up the whole run.
 *
 * @module
 */

/** How long one test may run before its child processes are killed, in ms. */
export const TEST_WATCHDOG_MS = 6 * 60_000;

let timer: ReturnType<typeof setTimeout> | undefined;

Deno.test.beforeEach(() => {
  const started = new Date().toISOString();
  const id = setTimeout(() => {
    const killed = killChildren();
    console.error(
      `watchdog: a test started at ${started} ran over ${TEST_WATCHDOG_MS} ms; ` +
        `killed its child processes ${JSON.stringify(killed)}`,
    );
  }, TEST_WATCHDOG_MS);
  // The watchdog alone never keeps a test alive.
  Deno.unrefTimer(id);
  timer = id;
});

Deno.test.afterEach(() => {
  clearTimeout(timer);
  timer = undefined;
});

/** SIGKILL every child process of this one (read from /proc); their PIDs. */
function killChildren(): number[] {
  const killed: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      // /proc/PID/stat: "PID (comm) state PPID …"; comm may hold spaces.
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== Deno.pid) continue;
      Deno.kill(Number(entry.name), "SIGKILL");
      killed.push(Number(entry.name));
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
