/**
 * Watch benchmark, etcd 3.4 against cairn on this machine, same load:
 *
 * 1. Fan-out: 1,000 watch streams on one prefix; writers put keys under it
 *    (a steady rate, then as fast as 16 writers go). Reports the events
 *    delivered per second (all streams together) and the delay from a put's
 *    answer to its event's arrival (p50/p99, sampled on every 10th stream).
 * 2. Idle watchers: put throughput (wrk, 64 connections) with 1,000 idle
 *    watch streams open on another prefix, against none (the mean of a run
 *    before and one after), and the server's memory per idle watcher.
 *
 * Usage: deno run -A bench/watch.ts [seconds per run, default 5] [steady puts/s, default 50]
 * Prints a table; bench/README.md keeps the figures.
 *
 * @module
 */
import { freePort } from "../tests/servers.ts";

const SECONDS = Number(Deno.args[0] ?? 5);
const WATCHERS = 1000;
const STEADY_RATE = Number(Deno.args[1] ?? 50); // puts per second
const FAST_WRITERS = 16;
const ROOT = new URL("../", import.meta.url).pathname;

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** CPU seconds (user + system) a process has used so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 (1-based), in clock ticks (100/s);
  // cutime/cstime (16, 17) are children that exited.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${url}/health`);
      if ((await res.text()).includes("true")) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no health at ${url}`);
}

async function start(which: "etcd" | "cairn", dir: string): Promise<Server> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const cmd = which === "etcd"
    ? new Deno.Command("etcd", {
      args: [
        "--data-dir",
        dir,
        "--listen-client-urls",
        url,
        "--advertise-client-urls",
        url,
        "--listen-peer-urls",
        `http://127.0.0.1:${freePort()}`,
      ],
      stdout: "null",
      stderr: "null",
    })
    : new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "--data-dir", dir, "--listen-client-urls", url],
      stdout: "null",
      stderr: "null",
    });
  const child = cmd.spawn();
  await waitHealthy(url);
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

const b64 = (s: string) => btoa(s);
const MARK = '"mod_revision":"';

/**
 * A watch stream over a raw TCP connection (HTTP/1.1 by hand, chunked
 * decoding on bytes): far cheaper per chunk than fetch, so that with a
 * thousand streams the client is not what is measured. It counts events and,
 * if sampled, records each event's arrival time by revision.
 */
class Watcher {
  events = 0;
  readonly arrivals: Map<number, number> | undefined;
  #conn: Deno.TcpConn | undefined;
  created: Promise<void>;

  constructor(url: string, prefix: string, sampled: boolean) {
    this.arrivals = sampled ? new Map() : undefined;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.created = promise;
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const { hostname, port } = new URL(url);
    const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(end) } });
    (async () => {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      this.#conn = conn;
      await conn.write(new TextEncoder().encode(
        `POST /v3/watch HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\n\r\n${body}`,
      ));
      const latin1 = new TextDecoder("latin1");
      const buf = new Uint8Array(256 * 1024);
      // Raw bytes not parsed yet (headers, chunk sizes, data), as latin1 text.
      let raw = "";
      let inBody = false;
      let chunkLeft = 0; // data bytes left in the current chunk
      let data = ""; // chunk data not scanned yet
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        raw += latin1.decode(buf.subarray(0, n));
        const now = performance.now();
        if (!inBody) {
          const at = raw.indexOf("\r\n\r\n");
          if (at < 0) continue;
          raw = raw.slice(at + 4);
          inBody = true;
        }
        for (;;) {
          if (chunkLeft > 0) {
            const take = Math.min(chunkLeft, raw.length);
            data += raw.slice(0, take);
            raw = raw.slice(take);
            chunkLeft -= take;
            if (chunkLeft > 0) break;
            continue;
          }
          // A chunk header: [\r\n]size\r\n
          const m = /^(?:\r\n)?([0-9a-fA-F]+)\r\n/.exec(raw);
          if (m === null) break;
          raw = raw.slice(m[0].length);
          chunkLeft = parseInt(m[1], 16);
          if (chunkLeft === 0) return;
        }
        let i = 0;
        for (;;) {
          const at = data.indexOf(MARK, i);
          if (at < 0) break;
          const endAt = data.indexOf('"', at + MARK.length);
          if (endAt < 0) break;
          // Each event has one kv with one mod_revision (no prev_kv asked).
          this.events++;
          this.arrivals?.set(Number(data.slice(at + MARK.length, endAt)), now);
          i = endAt;
        }
        if (data.includes('"created":true')) resolve();
        data = data.slice(Math.max(i, data.lastIndexOf("\n") + 1));
      }
    })().catch(() => {});
  }

  close(): void {
    try {
      this.#conn?.close();
    } catch {
      // closed already
    }
  }
}

/** Wait until every watcher is created (at most 60 s: a bench that hangs says so). */
async function allCreated(watchers: Watcher[]): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("watchers not created within 60 s")), 60_000);
  });
  try {
    await Promise.race([Promise.all(watchers.map((w) => w.created)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function put(url: string, key: string, answered: Map<number, number>): Promise<void> {
  const res = await fetch(`${url}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key), value: b64("v".repeat(64)) }),
  });
  const body = await res.json();
  answered.set(Number(body.header.revision), performance.now());
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

interface FanOut {
  /** CPU seconds of the server process during the run. */
  serverCpu: number;
  /** CPU seconds of this (client) process during the run. */
  clientCpu: number;
  puts: number;
  delivered: number;
  rate: number;
  p50: number;
  p99: number;
}

/** Writers put for SECONDS (rate-limited or not) while WATCHERS streams watch. */
async function fanOut(server: Server, steady: boolean): Promise<FanOut> {
  const url = server.url;
  const cpu0 = [cpuSeconds(server.pid), cpuSeconds(Deno.pid)];
  const watchers = Array.from({ length: WATCHERS }, (_, i) => new Watcher(url, "w/", i % 10 === 0));
  await allCreated(watchers);
  const answered = new Map<number, number>();
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  let puts = 0;
  if (steady) {
    const inflight: Promise<void>[] = [];
    for (let n = 0; performance.now() < deadline; n++) {
      const due = started + (n * 1000) / STEADY_RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      inflight.push(put(url, `w/${n % 1000}`, answered));
      puts++;
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(Array.from({ length: FAST_WRITERS }, async (_, w) => {
      for (let n = 0; performance.now() < deadline; n++) {
        await put(url, `w/${(n * FAST_WRITERS + w) % 1000}`, answered);
        puts++;
      }
    }));
  }
  const writeEnd = performance.now();
  // Let delivery finish (at most 10 s more).
  const expected = puts * WATCHERS;
  const drainDeadline = writeEnd + 10_000;
  let delivered = 0;
  for (;;) {
    delivered = watchers.reduce((n, w) => n + w.events, 0);
    if (delivered >= expected || performance.now() > drainDeadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const elapsed = (performance.now() - started) / 1000;
  const delays: number[] = [];
  for (const w of watchers) {
    for (const [rev, at] of w.arrivals ?? []) {
      const t = answered.get(rev);
      if (t !== undefined) delays.push(at - t);
    }
  }
  delays.sort((a, b) => a - b);
  for (const w of watchers) w.close();
  return {
    serverCpu: cpuSeconds(server.pid) - cpu0[0],
    clientCpu: cpuSeconds(Deno.pid) - cpu0[1],
    puts,
    delivered,
    rate: delivered / elapsed,
    p50: percentile(delays, 0.5),
    p99: percentile(delays, 0.99),
  };
}

async function wrkPuts(url: string): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c64", `-d${SECONDS}s`, "-s", `${ROOT}bench/wrk.lua`, url, "--", "put"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const m = /Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout));
  return m ? Number(m[1]) : NaN;
}

/** Resident memory of a process in bytes (Linux /proc). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) * 1024 : NaN;
}

interface IdleCost {
  /** Puts per second without watchers. */
  none: number;
  /** Puts per second with WATCHERS idle watch streams. */
  idle: number;
  /** Server RSS growth per idle watcher (its stream included), in bytes. */
  bytesPerWatcher: number;
}

async function idleCost(server: Server): Promise<IdleCost> {
  const url = server.url;
  const none = await wrkPuts(url);
  await new Promise((r) => setTimeout(r, 500));
  const before = rssBytes(server.pid);
  const watchers = Array.from({ length: WATCHERS }, () => new Watcher(url, "idle/", false));
  await allCreated(watchers);
  await new Promise((r) => setTimeout(r, 500));
  const after = rssBytes(server.pid);
  const idle = await wrkPuts(url);
  for (const w of watchers) w.close();
  // Once more without: the store grew meanwhile, so "none" is the mean of
  // the runs before and after.
  await new Promise((r) => setTimeout(r, 500));
  const noneAfter = await wrkPuts(url);
  return { none: (none + noneAfter) / 2, idle, bytesPerWatcher: (after - before) / WATCHERS };
}

const results: Record<string, { steady: FanOut; fast: FanOut } & IdleCost> = {};
/** Run `fn` on a fresh server of `which` (each phase starts from an empty store). */
async function fresh<T>(which: "etcd" | "cairn", fn: (server: Server) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `bench-watch-${which}-` });
  const server = await start(which, dir);
  try {
    return await fn(server);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
for (const which of ["etcd", "cairn"] as const) {
  const steady = await fresh(which, (s) => fanOut(s, true));
  const fast = await fresh(which, (s) => fanOut(s, false));
  results[which] = { steady, fast, ...await fresh(which, idleCost) };
}

const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d });
const e = results.etcd;
const c = results.cairn;
console.log(`watch benchmark: ${WATCHERS} watchers, ${SECONDS} s per run`);
for (
  const [name, key] of [["steady " + STEADY_RATE + " puts/s", "steady"], [
    FAST_WRITERS + " writers, unthrottled",
    "fast",
  ]] as const
) {
  const a = e[key];
  const b = c[key];
  console.log(
    `${name}: events/s etcd ${fmt(a.rate)} (${fmt(a.delivered)}/${fmt(a.puts * WATCHERS)}), ` +
      `cairn ${fmt(b.rate)} (${fmt(b.delivered)}/${fmt(b.puts * WATCHERS)}), ratio ${
        fmt(b.rate / a.rate, 2)
      }; delay p50 etcd ${fmt(a.p50, 1)} ms cairn ${fmt(b.p50, 1)} ms, p99 etcd ${
        fmt(a.p99, 1)
      } ms cairn ${fmt(b.p99, 1)} ms; CPU s server/client etcd ${fmt(a.serverCpu, 1)}/${
        fmt(a.clientCpu, 1)
      } cairn ${fmt(b.serverCpu, 1)}/${fmt(b.clientCpu, 1)}`,
  );
}
console.log(
  `puts/s with ${WATCHERS} idle watchers: etcd ${fmt(e.idle)} of ${fmt(e.none)} (${
    fmt(e.idle / e.none, 2)
  }), cairn ${fmt(c.idle)} of ${fmt(c.none)} (${fmt(c.idle / c.none, 2)})`,
);
console.log(
  `server memory per idle watcher (RSS growth / ${WATCHERS}): etcd ${
    fmt(e.bytesPerWatcher / 1024, 1)
  } KiB, cairn ${fmt(c.bytesPerWatcher / 1024, 1)} KiB`,
);
