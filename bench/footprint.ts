/**
 * Storage footprint: loads the same N keys into real etcd 3.4 and into cairn
 * through the JSON gateway (8 concurrent clients, txns of 100 puts), stops
 * both with SIGTERM, and reports `du` of each data dir, then where the bytes
 * are: etcd's bbolt file and WAL; cairn's data.mdb (pages per LMDB table,
 * free pages) and WAL segments (preallocated files, counted at full size).
 *
 * Usage: `deno run -A bench/footprint.ts [keys=200000] [valueBytes=1024] [order]`:
 * keys are written in ascending blocks of 100 (each client takes the next
 * block), or with `random` as the third argument in a shuffled order (a
 * seeded permutation, the same for both servers).
 */
import { environmentStats } from "../native/lmdb.ts";
import { type ServerProcess, startCairn, startEtcd } from "../tests/servers.ts";

const KEYS = Number(Deno.args[0] ?? 200_000);
const VALUE_BYTES = Number(Deno.args[1] ?? 1024);
const BATCH = 100;
const CLIENTS = 8;
const RANDOM = Deno.args[2] === "random";

/** Key i of the load: `order[i]`, a permutation of 0..KEYS-1 when random. */
const order = Array.from({ length: KEYS }, (_, i) => i);
if (RANDOM) {
  let seed = 42;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = KEYS - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
}

const b64 = (bytes: Uint8Array) => {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};
// Printable, varied bytes: neither store compresses, so the content does not
// change the sizes, but a value of one repeated byte would hide nothing either.
const value = b64(Uint8Array.from({ length: VALUE_BYTES }, (_, i) => 33 + (i * 7) % 90));
const keyOf = (i: number) =>
  new TextEncoder().encode(`footprint/key/${String(i).padStart(8, "0")}`);

async function load(url: string): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const client = async () => {
    while (next < KEYS) {
      const start = next;
      next += BATCH;
      const success = [];
      for (let i = start; i < Math.min(start + BATCH, KEYS); i++) {
        success.push({ request_put: { key: b64(keyOf(order[i])), value } });
      }
      const res = await fetch(`${url}/v3/kv/txn`, {
        method: "POST",
        body: JSON.stringify({ success }),
      });
      const body = await res.text();
      if (!res.ok) throw new Error(`txn failed: ${res.status} ${body}`);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  // Every key is there, with the value's length.
  const res = await fetch(`${url}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(keyOf(0)), range_end: b64(keyOf(KEYS)), count_only: true }),
  });
  const { count } = await res.json();
  if (Number(count) !== KEYS) throw new Error(`expected ${KEYS} keys, found ${count}`);
  return (performance.now() - t0) / 1000;
}

/** `du -s` of `path`: bytes allocated on disk, and apparent bytes (`du -sb`). */
async function du(path: string): Promise<{ disk: number; apparent: number }> {
  const run = async (flag: string) => {
    const out = await new Deno.Command("du", { args: ["-s", flag, path] }).output();
    if (!out.success) throw new Error(`du ${flag} ${path} failed`);
    return Number(new TextDecoder().decode(out.stdout).split(/\s/)[0]);
  };
  return { disk: await run("-B1"), apparent: await run("-b") };
}

async function run(
  name: string,
  start: (dir: string) => Promise<ServerProcess>,
  breakdown: (dir: string) => Promise<string[]>,
) {
  const dir = Deno.makeTempDirSync({ prefix: `footprint-${name}-` });
  try {
    const server = await start(dir);
    let seconds: number;
    try {
      seconds = await load(server.url);
    } finally {
      // etcd ends on SIGTERM with the signal's status (143) after its clean stop.
      const code = await server.terminate();
      if (code !== 0 && code !== 143) console.error(`${name} exited with code ${code}`);
    }
    return { name, seconds, size: await du(dir), lines: await breakdown(dir) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const MiB = 1024 * 1024;
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

async function files(dir: string): Promise<{ name: string; size: number }[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out.push({ name: e.name, size: (await Deno.stat(`${dir}/${e.name}`)).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function etcdBreakdown(dir: string): Promise<string[]> {
  const db = (await Deno.stat(`${dir}/member/snap/db`)).size;
  const wal = await files(`${dir}/member/wal`);
  const walBytes = wal.reduce((n, f) => n + f.size, 0);
  return [
    `bbolt member/snap/db: ${mib(db)}`,
    `WAL member/wal: ${wal.length} files, ${mib(walBytes)}`,
  ];
}

async function cairnBreakdown(dir: string): Promise<string[]> {
  const member = `${dir}/member`;
  const mdb = (await Deno.stat(`${member}/data.mdb`)).size;
  const s = await environmentStats(member);
  const lines = [
    `data.mdb: ${mib(mdb)} file, ${mib(s.pagesTotal * s.pageSize)} up to the last page in use ` +
    `(${s.pageSize} B pages)`,
  ];
  for (const [name, t] of Object.entries(s.tables)) {
    const pages = t.branch + t.leaf + t.overflow;
    lines.push(
      `  ${name}: ${t.entries} records, ${mib(pages * s.pageSize)} ` +
        `(${t.leaf} leaf, ${t.branch} branch, ${t.overflow} overflow pages)`,
    );
  }
  lines.push(`  LMDB internal trees: ${s.internal} pages`);
  lines.push(`  free (reusable) + 2 meta: ${s.free} pages, ${mib(s.free * s.pageSize)}`);
  const wal = await files(`${member}/wal`);
  const walBytes = wal.reduce((n, f) => n + f.size, 0);
  lines.push(`WAL member/wal: ${wal.length} files, ${mib(walBytes)} (preallocated, full size)`);
  return lines;
}

console.log(
  `${KEYS} keys of ${VALUE_BYTES} B values, txns of ${BATCH} puts, ${CLIENTS} clients, ` +
    `${RANDOM ? "random" : "ascending"} key order`,
);
const results = [
  await run("etcd", startEtcd, etcdBreakdown),
  await run("cairn", (dir) => startCairn(dir), cairnBreakdown),
];
console.log("\n| server | du (disk) | du -b (apparent) | load time |");
console.log("| ------ | --------- | ---------------- | --------- |");
for (const r of results) {
  console.log(
    `| ${r.name} | ${mib(r.size.disk)} | ${mib(r.size.apparent)} | ${r.seconds.toFixed(1)} s |`,
  );
}
for (const r of results) console.log(`\n${r.name}:\n${r.lines.join("\n")}`);
const [etcd, cairn] = results;
console.log(`\ncairn / etcd (du): ${(cairn.size.disk / etcd.size.disk).toFixed(2)}`);
