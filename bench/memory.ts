/**
 * Memory against key count: loads the same keys into real etcd 3.4 and into
 * cairn through the JSON gateway (txns of 100 puts), then reads each
 * process's resident memory from /proc: RssAnon (heap: what grows with an
 * in-memory index) and RssFile (pages of mapped files, which the kernel can
 * reclaim). Usage: `deno run -A bench/memory.ts [keys, default 200000]`.
 */
import { freePort } from "../tests/servers.ts";

const KEYS = Number(Deno.args[0] ?? 200_000);
const BATCH = 100;
const ROOT = new URL("../", import.meta.url).pathname;
const b64 = (s: string) => btoa(s);
const value = b64("v".repeat(100));

function rss(pid: number): { anon: number; file: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

async function waitHealthy(url: string) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(`${url}/health`);
      await r.body?.cancel();
      if (r.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no health on ${url}`);
}

async function load(url: string) {
  let next = 0;
  const worker = async () => {
    while (next < KEYS) {
      const start = next;
      next += BATCH;
      const success = [];
      for (let i = start; i < Math.min(start + BATCH, KEYS); i++) {
        success.push({
          request_put: { key: b64(`mem/key/${i.toString().padStart(8, "0")}`), value },
        });
      }
      const res = await fetch(`${url}/v3/kv/txn`, {
        method: "POST",
        body: JSON.stringify({ success }),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`txn failed: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function measure(name: string, spawn: (url: string, dir: string) => Deno.ChildProcess) {
  const dir = Deno.makeTempDirSync({ prefix: `mem-${name}-` });
  const url = `http://127.0.0.1:${freePort()}`;
  const child = spawn(url, dir);
  try {
    await waitHealthy(url);
    const before = rss(child.pid);
    const t0 = performance.now();
    await load(url);
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const after = rss(child.pid);
    return { name, before, after, seconds };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
}

const etcd = await measure("etcd", (url, dir) => {
  const peer = `http://127.0.0.1:${freePort()}`;
  return new Deno.Command("etcd", {
    args: [
      "--name=m",
      `--data-dir=${dir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=m=${peer}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
});
const cairn = await measure("cairn", (url, dir) =>
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}main.ts`,
      `--data-dir=${dir}`,
      `--listen-client-urls=${url}`,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).spawn());

const f = (n: number) => n.toFixed(0);
console.log(
  `| ${KEYS} keys, 100 B values | RssAnon before → after (MiB) | RssFile after (MiB) | load time (s) |`,
);
console.log("|---|---|---|---|");
for (const r of [etcd, cairn]) {
  console.log(
    `| ${r.name} | ${f(r.before.anon)} → ${f(r.after.anon)} | ${f(r.after.file)} | ${
      r.seconds.toFixed(1)
    } |`,
  );
}
