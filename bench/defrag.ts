/**
 * Defragmentation benchmark, etcd 3.4 against cairn on this machine, same
 * data: each server gets `MiB` of values (128 KiB each, over the JSON
 * gateway), then half the keys are deleted and the history compacted, so a
 * defragmentation has about half the file to give back. While
 * `POST /v3/maintenance/defragment` runs, one writer puts a small key in a
 * loop and one reader reads one; reported: how long the defragmentation
 * took, the file size before and after, and the longest put and read
 * during it (what a client waited, at worst, because of it).
 *
 * Usage: deno run -A bench/defrag.ts [MiB, default 1024]
 * Prints a table; bench/README.md keeps the figures.
 *
 * @module
 */
import { type ServerProcess, startCairn, startEtcd } from "../tests/servers.ts";

const MIB = Number(Deno.args[0] ?? 1024);
const VALUE_BYTES = 128 * 1024;
const KEYS = Math.ceil((MIB * 1024 * 1024) / VALUE_BYTES);
const LOADERS = 8;
const b64 = (s: string) => btoa(s);
const VALUE = btoa("v".repeat(VALUE_BYTES));

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

interface Row {
  loadSeconds: number;
  sizeBefore: number;
  sizeAfter: number;
  defragMs: number;
  maxPutMs: number;
  maxGetMs: number;
  puts: number;
  gets: number;
  /** Probe requests that failed during the defragmentation (e.g. etcd's request timeout). */
  failed: number;
}

async function run(server: ServerProcess): Promise<Row> {
  const url = server.url;
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: LOADERS }, async () => {
    for (let i = next++; i < KEYS; i = next++) {
      await post(url, "/v3/kv/put", { key: b64(`d/${String(i).padStart(6, "0")}`), value: VALUE });
    }
  }));
  const loadSeconds = (performance.now() - started) / 1000;
  // Every other key deleted, then the history compacted away.
  for (let i = 0; i < KEYS; i += 2) {
    await post(url, "/v3/kv/deleterange", { key: b64(`d/${String(i).padStart(6, "0")}`) });
  }
  const status = await post(url, "/v3/maintenance/status", {});
  const rev = (status.header as { revision: string }).revision;
  await post(url, "/v3/kv/compaction", { revision: rev, physical: true });
  const sizeBefore = Number((await post(url, "/v3/maintenance/status", {})).dbSize);

  let running = true;
  let maxPutMs = 0;
  let maxGetMs = 0;
  let puts = 0;
  let gets = 0;
  let failed = 0;
  // A failed probe counts with the time it took to fail.
  const probe = (path: string, body: unknown) =>
    post(url, path, body).then(() => true, () => false);
  const writer = (async () => {
    for (let i = 0; running; i++) {
      const t = performance.now();
      const ok = await probe("/v3/kv/put", { key: b64("probe"), value: b64(String(i)) });
      maxPutMs = Math.max(maxPutMs, performance.now() - t);
      if (ok) puts++;
      else failed++;
    }
  })();
  const reader = (async () => {
    while (running) {
      const t = performance.now();
      const ok = await probe("/v3/kv/range", { key: b64("probe") });
      maxGetMs = Math.max(maxGetMs, performance.now() - t);
      if (ok) gets++;
      else failed++;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const t = performance.now();
  await post(url, "/v3/maintenance/defragment", {});
  const defragMs = performance.now() - t;
  running = false;
  await Promise.all([writer, reader]);
  const sizeAfter = Number((await post(url, "/v3/maintenance/status", {})).dbSize);
  return { loadSeconds, sizeBefore, sizeAfter, defragMs, maxPutMs, maxGetMs, puts, gets, failed };
}

const rows: Record<string, Row> = {};
for (const which of ["etcd", "cairn"] as const) {
  const dir = await Deno.makeTempDir({ prefix: `bench-defrag-${which}-` });
  const server = which === "etcd"
    ? await startEtcd(dir, ["--quota-backend-bytes", String(8 * 1024 ** 3)])
    : await startCairn(dir, ["--quota-backend-bytes", String(8 * 1024 ** 3)]);
  try {
    rows[which] = await run(server);
  } finally {
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
const ms = (n: number) => `${n.toFixed(0)} ms`;
console.log(`${MIB} MiB in ${KEYS} values of 128 KiB; half deleted and compacted; then defragment`);
console.log("| | etcd 3.4 | cairn |");
console.log("|---|---|---|");
const e = rows.etcd, c = rows.cairn;
console.log(`| load (8 clients) | ${e.loadSeconds.toFixed(1)} s | ${c.loadSeconds.toFixed(1)} s |`);
console.log(
  `| file before → after | ${mb(e.sizeBefore)} → ${mb(e.sizeAfter)} | ${mb(c.sizeBefore)} → ${
    mb(c.sizeAfter)
  } |`,
);
console.log(`| defragment took | ${ms(e.defragMs)} | ${ms(c.defragMs)} |`);
console.log(`| longest put during it | ${ms(e.maxPutMs)} | ${ms(c.maxPutMs)} |`);
console.log(`| longest read during it | ${ms(e.maxGetMs)} | ${ms(c.maxGetMs)} |`);
console.log(`| puts / reads served during it | ${e.puts} / ${e.gets} | ${c.puts} / ${c.gets} |`);
console.log(`| probe requests failed during it | ${e.failed} | ${c.failed} |`);
