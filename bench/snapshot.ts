/**
 * Snapshot save and restore throughput, etcd 3.4 against cairn on this
 * machine, same data: one single-member server of each, loaded with the
 * same keys (default 100,000 keys of 1 KiB values, in txns of 128 puts
 * over the JSON gateway, 8 at a time), then, `runs` times each:
 *
 * - save: `etcdctl snapshot save` against etcd, `ctl snapshot save` against
 *   cairn (and, as a cross-check, etcdctl against cairn over gRPC);
 * - restore: `etcdctl snapshot restore` of etcd's file, `ctl snapshot
 *   restore` of cairn's (and of etcd's: the migration), each into a new
 *   data dir.
 *
 * Then the latency of one sequential writer's puts while a save runs, and
 * for as long again without one (LMDB's and bbolt's read transactions let
 * writes go on during a save).
 *
 * Each figure is the command's wall time as a user runs it (process start
 * included: ~0.03 s for etcdctl, ~0.3 s for Deno), and MB/s is the
 * snapshot file's size over that time. The median of the runs is printed,
 * with the smallest and largest.
 *
 * Usage: deno run -A bench/snapshot.ts [keys, default 100000] [runs, default 3]
 * Prints a table; bench/README.md keeps the figures.
 *
 * @module
 */
import { startCairn, startEtcd } from "../tests/servers.ts";

const KEYS = Number(Deno.args[0] ?? 100_000);
const RUNS = Number(Deno.args[1] ?? 3);
const VALUE_BYTES = 1024;
const TXN_PUTS = 128;
const CONCURRENCY = 8;
const ROOT = new URL("../", import.meta.url).pathname;

const b64 = (s: string) => btoa(s);

/** Load `KEYS` keys of VALUE_BYTES through /v3/kv/txn, CONCURRENCY txns at a time. */
async function load(url: string): Promise<void> {
  const value = b64("v".repeat(VALUE_BYTES));
  let next = 0;
  const worker = async () => {
    while (next < KEYS) {
      const start = next;
      next = Math.min(KEYS, next + TXN_PUTS);
      const success = [];
      for (let i = start; i < next; i++) {
        success.push({ request_put: { key: b64(`key/${String(i).padStart(8, "0")}`), value } });
      }
      const res = await fetch(`${url}/v3/kv/txn`, {
        method: "POST",
        body: JSON.stringify({ success }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`load: ${res.status} ${text}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Run a command; its wall time in seconds. */
async function timed(cmd: string, args: string[], cwd: string): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env: { ETCDCTL_API: "3" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return seconds;
}

const ctl = [Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, "ctl"]] as const;

/**
 * Put latencies (ms) of one sequential writer while `during` runs, and of
 * the same writer for as long again with nothing else running: puts of 1 KiB
 * to keys outside the loaded ones, over the JSON gateway.
 */
async function putLatencies(
  url: string,
  during: () => Promise<unknown>,
): Promise<{ during: number[]; idle: number[] }> {
  const value = b64("w".repeat(VALUE_BYTES));
  const run = async (until: () => boolean) => {
    const out: number[] = [];
    for (let i = 0; !until(); i++) {
      const t = performance.now();
      const res = await fetch(`${url}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(`probe/${i % 100}`), value }),
      });
      await res.text();
      out.push(performance.now() - t);
    }
    return out;
  };
  let done = false;
  const started = performance.now();
  const [busy] = await Promise.all([run(() => done), during().finally(() => (done = true))]);
  const length = performance.now() - started;
  const idleStart = performance.now();
  const idle = await run(() => performance.now() - idleStart > length);
  return { during: busy, idle };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Row {
  what: string;
  bytes: number;
  seconds: number[];
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-bench-snapshot-" });
  const etcd = await startEtcd(`${dir}/etcd`);
  const cairn = await startCairn(`${dir}/cairn`);
  const rows: Row[] = [];
  const latencies: { what: string; during: number[]; idle: number[] }[] = [];
  try {
    console.error(`loading ${KEYS} keys of ${VALUE_BYTES} B into etcd and cairn…`);
    await load(etcd.url);
    await load(cairn.url);
    const measure = async (
      what: string,
      file: string,
      run: (i: number) => Promise<number>,
    ) => {
      const seconds: number[] = [];
      for (let i = 0; i < RUNS; i++) seconds.push(await run(i));
      rows.push({ what, bytes: (await Deno.stat(file)).size, seconds });
    };
    await measure("save: etcdctl → etcd", `${dir}/etcd.db`, async () => {
      await Deno.remove(`${dir}/etcd.db`).catch(() => {});
      return await timed(
        "etcdctl",
        ["--endpoints", etcd.endpoint, "snapshot", "save", "etcd.db"],
        dir,
      );
    });
    await measure("save: ctl → cairn (gateway)", `${dir}/cairn.db`, async () => {
      await Deno.remove(`${dir}/cairn.db`).catch(() => {});
      return await timed(ctl[0], [
        ...ctl[1],
        "--endpoints",
        cairn.endpoint,
        "snapshot",
        "save",
        "cairn.db",
      ], dir);
    });
    await measure("save: etcdctl → cairn (gRPC)", `${dir}/cairn-grpc.db`, async () => {
      await Deno.remove(`${dir}/cairn-grpc.db`).catch(() => {});
      return await timed(
        "etcdctl",
        ["--endpoints", cairn.endpoint, "snapshot", "save", "cairn-grpc.db"],
        dir,
      );
    });
    await measure("restore: etcdctl, etcd's file", `${dir}/etcd.db`, async (i) => {
      return await timed(
        "etcdctl",
        ["snapshot", "restore", "etcd.db", "--data-dir", `re${i}`],
        dir,
      );
    });
    await measure("restore: ctl, etcd's file (migration)", `${dir}/etcd.db`, async (i) => {
      return await timed(
        ctl[0],
        [...ctl[1], "snapshot", "restore", "etcd.db", "--data-dir", `rm${i}`],
        dir,
      );
    });
    await measure("restore: ctl, cairn's file", `${dir}/cairn.db`, async (i) => {
      return await timed(ctl[0], [
        ...ctl[1],
        "snapshot",
        "restore",
        "cairn.db",
        "--data-dir",
        `rc${i}`,
      ], dir);
    });
    latencies.push({
      what: "cairn, ctl snapshot save",
      ...await putLatencies(
        cairn.url,
        () =>
          timed(
            ctl[0],
            [...ctl[1], "--endpoints", cairn.endpoint, "snapshot", "save", "p.db"],
            dir,
          ),
      ),
    });
    latencies.push({
      what: "etcd, etcdctl snapshot save",
      ...await putLatencies(
        etcd.url,
        () => timed("etcdctl", ["--endpoints", etcd.endpoint, "snapshot", "save", "q.db"], dir),
      ),
    });
  } finally {
    await etcd.kill();
    await cairn.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const mb = (n: number) => (n / 1e6).toFixed(1);
  console.log(`${KEYS} keys of ${VALUE_BYTES} B, ${RUNS} runs each (median, min–max)\n`);
  console.log("| command | file MB | seconds | MB/s |");
  console.log("| --- | --- | --- | --- |");
  for (const r of rows) {
    const med = median(r.seconds);
    const lo = Math.min(...r.seconds);
    const hi = Math.max(...r.seconds);
    console.log(
      `| ${r.what} | ${mb(r.bytes)} | ${med.toFixed(2)} (${lo.toFixed(2)}–${hi.toFixed(2)}) | ${
        (r.bytes / 1e6 / med).toFixed(0)
      } |`,
    );
  }
  console.log("\nput latency (ms) of one sequential writer while a save runs, and without one\n");
  console.log("| server, save | puts | p50 | p99 | max | puts idle | p50 | p99 | max |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const l of latencies) {
    const f = (xs: number[]) =>
      `${xs.length} | ${percentile(xs, 50).toFixed(1)} | ${percentile(xs, 99).toFixed(1)} | ${
        Math.max(...xs).toFixed(1)
      }`;
    console.log(`| ${l.what} | ${f(l.during)} | ${f(l.idle)} |`);
  }
}

await main();
