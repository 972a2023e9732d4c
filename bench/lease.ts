/**
 * Lease benchmark, etcd 3.4 against cairn on this machine, same load, each
 * on a fresh store per phase:
 *
 * 1. Expiry lateness: 200 leases of 2 s (the minimum), one key each; a
 *    watch sees the keys' DELETE events. Lateness = the DELETE's arrival
 *    minus (the grant's answer + 2 s); negative would mean early.
 * 2. Keep-alives per second: 8 keep-alive streams, each a body of 5,000
 *    requests for one live lease; answers received per second.
 * 3. Mass expiry: N leases of max(30, N / 1000) s with a key each, granted as fast as the
 *    server takes them, while one client keeps putting another key; the put
 *    latency (p50, p99, max) during the expiry against before it, and how
 *    long until every key is gone.
 *
 * Usage: deno run -A bench/lease.ts [mass expiry lease count, default 20000] [etcd|cairn: only that one]
 *
 * @module
 */
import { freePort } from "../tests/servers.ts";

const MASS = Number(Deno.args[0] ?? 20_000);
/** TTL of the mass-expiry leases, in seconds: longer than granting them all takes. */
const MASS_TTL = Math.max(30, Math.ceil(MASS / 1000));
const ROOT = new URL("../", import.meta.url).pathname;
const b64 = (s: string) => btoa(s);

interface Server {
  url: string;
  stop(): Promise<void>;
}

async function start(which: "etcd" | "cairn", dir: string): Promise<Server> {
  const url = `http://127.0.0.1:${freePort()}`;
  const args = which === "etcd"
    ? [
      "--data-dir",
      dir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      `http://127.0.0.1:${freePort()}`,
    ]
    : ["run", "-A", `${ROOT}main.ts`, "--data-dir", dir, "--listen-client-urls", url];
  const child = new Deno.Command(which === "etcd" ? "etcd" : Deno.execPath(), {
    args,
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0;; i++) {
    try {
      if ((await (await fetch(`${url}/health`)).text()).includes("true")) break;
    } catch {
      // not yet
    }
    if (i > 300) throw new Error(`${which} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Watch a prefix; calls `onDelete(key)` with each DELETE's key as it arrives. */
function watchDeletes(url: string, prefix: string, onDelete: (key: string) => void) {
  const abort = new AbortController();
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const created = (async () => {
    const res = await fetch(`${url}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({
        create_request: { key: b64(prefix), range_end: b64(end), filters: ["NOPUT"] },
      }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    const { promise, resolve } = Promise.withResolvers<void>();
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const r = JSON.parse(buf.slice(0, nl)).result;
          buf = buf.slice(nl + 1);
          if (r.created) resolve();
          for (const ev of r.events ?? []) onDelete(atob(ev.kv.key));
        }
      }
    })().catch(() => {});
    await promise;
  })();
  return { created, close: () => abort.abort() };
}

async function lateness(
  url: string,
): Promise<{ p50: number; p99: number; min: number; max: number }> {
  const N = 200;
  const granted = new Map<string, number>();
  const late: number[] = [];
  const { promise: allGone, resolve } = Promise.withResolvers<void>();
  const w = watchDeletes(url, "e/", (key) => {
    late.push(performance.now() - (granted.get(key)! + 2000));
    if (late.length === N) resolve();
  });
  await w.created;
  await Promise.all(Array.from({ length: N }, async (_, i) => {
    const { ID } = await post(url, "/v3/lease/grant", { TTL: 2 });
    granted.set(`e/${i}`, performance.now());
    await post(url, "/v3/kv/put", { key: b64(`e/${i}`), value: b64("v"), lease: ID });
  }));
  await Promise.race([allGone, new Promise((r) => setTimeout(r, 15_000))]);
  w.close();
  late.sort((a, b) => a - b);
  return { p50: pct(late, 0.5), p99: pct(late, 0.99), min: late[0], max: late[late.length - 1] };
}

async function keepAlives(url: string): Promise<number> {
  const { ID } = await post(url, "/v3/lease/grant", { TTL: 60 });
  const body = JSON.stringify({ ID }).repeat(5000);
  const started = performance.now();
  const counts = await Promise.all(Array.from({ length: 8 }, async () => {
    const text = await (await fetch(`${url}/v3/lease/keepalive`, { method: "POST", body })).text();
    return text.split('"TTL"').length - 1;
  }));
  const total = counts.reduce((a, b) => a + b, 0);
  return total / ((performance.now() - started) / 1000);
}

interface Mass {
  before: { p50: number; p99: number; max: number };
  during: { p50: number; p99: number; max: number };
  drainSeconds: number;
}

async function massExpiry(url: string): Promise<Mass> {
  // Grant and attach as fast as the server takes them (32 clients).
  let next = 0;
  const grantedAt: number[] = [];
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < MASS) {
      const i = next++;
      const { ID } = await post(url, "/v3/lease/grant", { TTL: MASS_TTL });
      grantedAt.push(performance.now());
      await post(url, "/v3/kv/put", { key: b64(`m/${i}`), value: b64("v"), lease: ID });
    }
  }));
  const firstDue = Math.min(...grantedAt) + MASS_TTL * 1000;
  const lastDue = Math.max(...grantedAt) + MASS_TTL * 1000;
  const before: number[] = [];
  const during: number[] = [];
  let drained = NaN;
  const count = async () =>
    Number(
      (await post(url, "/v3/kv/range", {
        key: b64("m/"),
        range_end: b64("m0"),
        count_only: true,
      })).count ?? 0,
    );
  const deadline = lastDue + 30_000;
  let n = 0;
  while (performance.now() < deadline) {
    const t = performance.now();
    await post(url, "/v3/kv/put", { key: b64("writer"), value: b64(String(n++)) });
    const latency = performance.now() - t;
    if (t < firstDue) before.push(latency);
    else during.push(latency);
    if (t >= lastDue && n % 50 === 0 && await count() === 0) {
      drained = (performance.now() - lastDue) / 1000;
      break;
    }
  }
  const stats = (xs: number[]) => {
    xs.sort((a, b) => a - b);
    return { p50: pct(xs, 0.5), p99: pct(xs, 0.99), max: xs.length ? xs[xs.length - 1] : NaN };
  };
  return { before: stats(before), during: stats(during), drainSeconds: drained };
}

async function fresh<T>(which: "etcd" | "cairn", fn: (url: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `bench-lease-${which}-` });
  const server = await start(which, dir);
  try {
    return await fn(server.url);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const fmt = (n: number, d = 1) => n.toLocaleString("en-US", { maximumFractionDigits: d });
const only = Deno.args[1] as "etcd" | "cairn" | undefined;
for (const which of only ? [only] : ["etcd", "cairn"] as const) {
  const late = await fresh(which, lateness);
  const ka = await fresh(which, keepAlives);
  const mass = await fresh(which, massExpiry);
  console.log(
    `${which}: expiry lateness p50 ${fmt(late.p50)} ms, p99 ${fmt(late.p99)} ms ` +
      `(min ${fmt(late.min)}, max ${fmt(late.max)}); keep-alives ${fmt(ka, 0)}/s; ` +
      `${MASS} leases expiring: put latency before p50/p99/max ${fmt(mass.before.p50)}/${
        fmt(mass.before.p99)
      }/${fmt(mass.before.max)} ms, during ${fmt(mass.during.p50)}/${fmt(mass.during.p99)}/${
        fmt(mass.during.max)
      } ms; all keys gone ${fmt(mass.drainSeconds)} s after the last was due`,
  );
}
