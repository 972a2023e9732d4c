/**
 * What auth and TLS cost on the request path, etcd 3.4 against cairn on this
 * machine: the load of bench/load.sh (bench/wrk.lua, one wrk thread, 64
 * connections, durable puts of 256-byte values over 1,000 keys, then
 * single-key linearizable ranges, through the JSON gateway) against a fresh
 * single member in each configuration:
 *
 * - `plain`: http client URL, auth disabled (the baseline);
 * - `auth`: auth enabled with `simple` tokens (the default `--auth-token`);
 *   the load is sent by a non-root user whose one role holds READWRITE on
 *   the prefix `bench/` (the keys wrk.lua writes), its token from
 *   /v3/auth/authenticate in the `Authorization` header;
 * - `tls`: an https client URL (--cert-file/--key-file, no client
 *   certificates), auth disabled;
 * - `jwt`: as `auth`, with `--auth-token jwt,…` (RS256 keys made with
 *   openssl); a server that does not start with it is reported as not
 *   serving JWT tokens.
 *
 * Each round runs every configuration on etcd and on cairn in turn (the
 * order of the two alternating between rounds), so the rounds show the
 * machine's noise; a configuration's ratio is to the `plain` rate of the
 * same server in the same round. Server CPU per request is the server
 * process's CPU time (all threads, /proc) over the run divided by the
 * requests wrk counted; "other work" is the CPU the rest of the machine used
 * meanwhile (/proc/stat, less the server and wrk, whose CPU /usr/bin/time
 * reports). Before loading, each member is checked: a put
 * and a range of one key succeed (with the token when auth is on) and, with
 * auth on, a put without the token is refused.
 *
 * Usage:
 *
 *     deno run -A bench/auth.ts [--seconds 10] [--rounds 3] [--no-jwt] [--no-readme]
 *
 * Prints a table and rewrites the `auth.ts` section of bench/README.md
 * (unless `--no-readme`). Exits 1 if a run had errors (non-2xx answers or
 * socket errors).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCa, makeCert, tlsClient } from "../tests/certs.ts";
import { freePort, type ServerProcess, startCairnAt, startEtcdAt } from "../tests/servers.ts";
import { rewriteReadmeSection } from "./readme.ts";

/** wrk connections of a measured run. */
const CONNECTIONS = 64;
/** Seconds of the warm-up put load (8 connections) that creates the keys the ranges read. */
const WARMUP_SECONDS = 2;
/** Time allowed for a wrk run beyond its duration, in ms. */
const WRK_GRACE_MS = 20_000;
/** Time a server is given to exit after SIGTERM, in ms. */
const STOP_GRACE_MS = 10_000;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;
/** Prefix the benchmark user may read and write; bench/wrk.lua's keys are under it. */
const PREFIX = "bench/";
/** A key bench/wrk.lua writes. */
const PROBE_KEY = "bench/key1";

const SERVERS = ["etcd", "cairn"] as const;
type ServerKind = typeof SERVERS[number];
const CONFIGS = ["plain", "auth", "tls", "jwt"] as const;
type Config = typeof CONFIGS[number];
type Mode = "put" | "get";

/** How each configuration is named in the table. */
const CONFIG_LABEL: Record<Config, string> = {
  plain: "plain http, auth off",
  auth: "auth on, simple token",
  tls: "https (TLS), auth off",
  jwt: "auth on, jwt token (RS256)",
};
const MODE_LABEL: Record<Mode, string> = {
  put: "durable put, 256 B value, 1000 keys",
  get: "single-key range (linearizable)",
};

/** One measured wrk run. */
interface Run {
  rps: number;
  requests: number;
  /** Non-2xx answers plus socket errors. */
  errors: number;
  /** Server CPU (all threads) per request, in µs. */
  cpuUs: number;
  /** CPU the rest of the machine used beside server and wrk, in % of one core. */
  otherPercent: number;
}

/** The outcome of one configuration on one server in one round. */
type Outcome = { put: Run; get: Run } | { notServed: string };

/** Files the configurations need, made once. */
interface Material {
  cert: string;
  key: string;
  client: Deno.HttpClient;
  jwtPublic: string;
  jwtPrivate: string;
}

const encoder = new TextEncoder();
const b64 = (s: string) => btoa(String.fromCharCode(...encoder.encode(s)));
/** The range_end that makes `prefix` a prefix (its last byte plus one). */
const prefixEnd = (prefix: string) =>
  prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

/** CPU seconds (user + system, all threads) `pid` has used; NaN if unreadable. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) in parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds, all cores, the machine has been busy (user, nice, system, irq, softirq), from /proc/stat. */
function machineBusySeconds(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Run wrk (bench/wrk.lua) against `url`; `pid` is the server's, for its CPU time. */
async function wrk(
  url: string,
  mode: Mode,
  conns: number,
  seconds: number,
  token: string,
  pid: number,
): Promise<Run> {
  const cpu0 = cpuSeconds(pid);
  const machine0 = machineBusySeconds();
  // /usr/bin/time reports wrk's own CPU on stderr, to tell other work on the machine apart.
  const child = new Deno.Command("/usr/bin/time", {
    args: [
      "-f",
      "wrk-cpu %U %S",
      "wrk",
      "-t1",
      `-c${conns}`,
      `-d${seconds}s`,
      "-s",
      new URL("./wrk.lua", import.meta.url).pathname,
      url,
      "--",
      mode,
      token,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), seconds * 1000 + WRK_GRACE_MS);
  const out = await child.output();
  clearTimeout(timer);
  const cpu1 = cpuSeconds(pid);
  const machine1 = machineBusySeconds();
  const text = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrk failed: ${stderr}`);
  const wrkCpu = /wrk-cpu ([\d.]+) ([\d.]+)/.exec(stderr);
  const wrkSeconds = wrkCpu ? Number(wrkCpu[1]) + Number(wrkCpu[2]) : NaN;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    rps,
    requests,
    errors: non2xx + socketErrors,
    cpuUs: (cpu1 - cpu0) / requests * 1e6,
    otherPercent: Math.max(0, (machine1 - machine0 - (cpu1 - cpu0) - wrkSeconds) / seconds * 100),
  };
}

/** POST `body` to the gateway at `url + path`; the answer's status and JSON. */
async function post(
  url: string,
  path: string,
  body: unknown,
  client: Deno.HttpClient | undefined,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: token }),
    },
    body: JSON.stringify(body),
    ...(client === undefined ? {} : { client }),
  });
  return { status: res.status, json: await res.json() };
}

/** POST that must succeed. */
async function call(url: string, path: string, body: unknown, token?: string): Promise<unknown> {
  const { status, json } = await post(url, path, body, undefined, token);
  if (status !== 200 || "error" in json) {
    throw new Error(`${path}: ${status} ${JSON.stringify(json)}`);
  }
  return json;
}

/**
 * Root, a user `bench` whose role `bench-rw` holds READWRITE on
 * {@linkcode PREFIX}, auth enabled; returns `bench`'s token.
 */
async function enableAuth(url: string): Promise<string> {
  await call(url, "/v3/auth/user/add", { name: "root", password: "root-pw" });
  await call(url, "/v3/auth/role/add", { name: "root" });
  await call(url, "/v3/auth/user/grant", { user: "root", role: "root" });
  await call(url, "/v3/auth/user/add", { name: "bench", password: "bench-pw" });
  await call(url, "/v3/auth/role/add", { name: "bench-rw" });
  await call(url, "/v3/auth/role/grant", {
    name: "bench-rw",
    perm: { permType: "READWRITE", key: b64(PREFIX), range_end: b64(prefixEnd(PREFIX)) },
  });
  await call(url, "/v3/auth/user/grant", { user: "bench", role: "bench-rw" });
  await call(url, "/v3/auth/enable", {});
  const answer = await call(url, "/v3/auth/authenticate", { name: "bench", password: "bench-pw" });
  const token = (answer as { token?: unknown }).token;
  if (typeof token !== "string" || token === "") throw new Error("authenticate: no token");
  return token;
}

/**
 * Before the load: a put of {@linkcode PROBE_KEY} with `token` succeeds and a
 * range with it finds the key; with auth on, a put without a token is
 * refused.
 */
async function check(
  url: string,
  token: string,
  client: Deno.HttpClient | undefined,
): Promise<void> {
  const auth = token === "" ? undefined : token;
  const value = { key: b64(PROBE_KEY), value: b64("x") };
  const put = await post(url, "/v3/kv/put", value, client, auth);
  if (put.status !== 200 || "error" in put.json) {
    throw new Error(`put of ${PROBE_KEY}: ${put.status} ${JSON.stringify(put.json)}`);
  }
  const range = await post(url, "/v3/kv/range", { key: b64(PROBE_KEY) }, client, auth);
  if (range.status !== 200 || range.json.count !== "1") {
    throw new Error(`range of ${PROBE_KEY}: ${range.status} ${JSON.stringify(range.json)}`);
  }
  if (auth === undefined) return;
  const denied = await post(url, "/v3/kv/put", value, client);
  if (denied.status === 200) throw new Error("a put without a token was accepted with auth on");
}

/** Start `kind` in configuration `config` on fresh ports and data; undefined if it will not start. */
async function start(
  kind: ServerKind,
  config: Config,
  dir: string,
  m: Material,
): Promise<ServerProcess | undefined> {
  const tls = config === "tls";
  const args = tls ? ["--cert-file", m.cert, "--key-file", m.key] : [];
  if (config === "jwt") {
    args.push(
      "--auth-token",
      `jwt,pub-key=${m.jwtPublic},priv-key=${m.jwtPrivate},sign-method=RS256`,
    );
  }
  const client = tls ? m.client : undefined;
  // A port chosen free may be taken before the server binds it: new ports, up to 3 times.
  for (let attempt = 1; attempt <= (config === "jwt" ? 1 : 3); attempt++) {
    const url = `${tls ? "https" : "http"}://127.0.0.1:${freePort()}`;
    try {
      return kind === "etcd"
        ? await startEtcdAt(dir, url, args, client)
        : await startCairnAt(dir, url, args, client);
    } catch {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  return undefined;
}

/** SIGTERM `server`, SIGKILL if it is still running after {@linkcode STOP_GRACE_MS}. */
async function stop(server: ServerProcess): Promise<void> {
  const timer = setTimeout(() => server.kill(), STOP_GRACE_MS);
  await server.terminate();
  clearTimeout(timer);
}

/** One configuration on one server: fresh member, setup, warm-up, check, puts, ranges. */
async function measure(
  kind: ServerKind,
  config: Config,
  dir: string,
  m: Material,
  seconds: number,
): Promise<Outcome> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const server = await start(kind, config, dir, m);
  if (server === undefined) {
    if (config === "jwt") return { notServed: "does not start with --auth-token jwt" };
    throw new Error(`${kind} did not start for ${config}`);
  }
  try {
    const token = config === "auth" || config === "jwt" ? await enableAuth(server.url) : "";
    const pid = server.child.pid;
    await check(server.url, token, config === "tls" ? m.client : undefined);
    await wrk(server.url, "put", 8, WARMUP_SECONDS, token, pid); // creates the keys
    const put = await wrk(server.url, "put", CONNECTIONS, seconds, token, pid);
    const get = await wrk(server.url, "get", CONNECTIONS, seconds, token, pid);
    return { put, get };
  } finally {
    await stop(server);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** RS256 keys for etcd's jwt token provider, PEM files in `dir`. */
async function makeJwtKeys(dir: string): Promise<{ pub: string; priv: string }> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null" }).output();
    if (!out.success) throw new Error(`openssl ${args.join(" ")} failed`);
  };
  await run(["genrsa", "-out", "jwt.key", "2048"]);
  await run(["rsa", "-in", "jwt.key", "-pubout", "-out", "jwt.pub"]);
  return { pub: `${dir}/jwt.pub`, priv: `${dir}/jwt.key` };
}

/** The server certificate (signed by a CA of its own), its client, and the JWT keys, in `dir`. */
async function material(dir: string): Promise<Material> {
  const ca = await makeCa(dir, "ca");
  const cert = await makeCert(dir, ca, "server");
  const jwt = await makeJwtKeys(dir);
  return {
    cert: cert.cert,
    key: cert.key,
    client: tlsClient(ca),
    jwtPublic: jwt.pub,
    jwtPrivate: jwt.priv,
  };
}

async function etcdVersion(): Promise<string> {
  try {
    const out = await new Deno.Command("etcd", { args: ["--version"], stdout: "piped" }).output();
    return /etcd Version: (\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "3.4";
  } catch {
    return "3.4";
  }
}

const thousands = (x: number) => Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—";
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The table: per workload and configuration, each round's rate and ratio to `plain`. */
function table(
  results: Record<ServerKind, Record<Config, Outcome[]>>,
  configs: readonly Config[],
  version: string,
  seconds: number,
): string {
  const rounds = results.etcd.plain.length;
  const cells = (kind: ServerKind, config: Config, mode: Mode): string[] => {
    const outcomes = results[kind][config];
    const first = outcomes.find((o) => "notServed" in o);
    if (first !== undefined) return ["not served", "", ""];
    const runs = outcomes.map((o) => (o as { put: Run; get: Run })[mode]);
    const base = results[kind].plain.map((o) => (o as { put: Run; get: Run })[mode]);
    const rates = runs.map((r) => thousands(r.rps) + (r.errors > 0 ? ` (${r.errors} errors)` : ""));
    const ratios = runs.map((r, i) => (r.rps / base[i].rps).toFixed(2));
    return [
      rates.join(" / "),
      config === "plain" ? "1" : ratios.join(" / "),
      thousands(median(runs.map((r) => r.cpuUs))),
    ];
  };
  const head = `| ${CONNECTIONS} connections, wrk -t1, ${seconds} s, rounds ${
    Array.from({ length: rounds }, (_, i) => i + 1).join(" / ")
  } | etcd ${version} req/s | ÷ plain | server µs CPU / req | cairn req/s | ÷ plain | server µs CPU / req |`;
  const rows = (["put", "get"] as const).flatMap((mode) =>
    configs.map((config) =>
      `| ${MODE_LABEL[mode]}: ${CONFIG_LABEL[config]} | ${
        [...cells("etcd", config, mode), ...cells("cairn", config, mode)].join(" | ")
      } |`
    )
  );
  return [head, "|---|---|---|---|---|---|---|", ...rows].join("\n");
}

/** A sentence on the CPU other work used beside server and wrk, per round and server. */
function otherWork(
  results: Record<ServerKind, Record<Config, Outcome[]>>,
  rounds: number,
): string {
  const perRound = Array.from({ length: rounds }, (_, i) => {
    const spans = SERVERS.map((kind) => {
      const xs = Object.values(results[kind]).flatMap((outcomes) => {
        const o = outcomes[i];
        return o === undefined || "notServed" in o ? [] : [o.put.otherPercent, o.get.otherPercent];
      }).filter(Number.isFinite);
      if (xs.length === 0) return `${kind} —`;
      return `${kind} ${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    });
    return `round ${i + 1}: ${spans.join(", ")}`;
  });
  return `Other work on the machine during the runs (CPU beside the server and wrk, % of one core, lowest–highest of the round's runs): ${
    perRound.join("; ")
  }.`;
}

const USAGE =
  "usage: deno run -A bench/auth.ts [--seconds 10] [--rounds 3] [--no-jwt] [--no-readme]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "3" },
      "no-jwt": { type: "boolean", default: false },
      "no-readme": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(seconds) || seconds < 1 || !Number.isInteger(rounds) || rounds < 1) {
    console.error(USAGE);
    return 2;
  }
  const configs = CONFIGS.filter((c) => c !== "jwt" || !values["no-jwt"]);
  const dir = await Deno.makeTempDir({ prefix: "cairn-auth-bench-" });
  const m = await material(dir);
  try {
    const results = {
      etcd: Object.fromEntries(CONFIGS.map((c) => [c, [] as Outcome[]])),
      cairn: Object.fromEntries(CONFIGS.map((c) => [c, [] as Outcome[]])),
    } as Record<ServerKind, Record<Config, Outcome[]>>;
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? SERVERS : [...SERVERS].reverse();
      for (const config of configs) {
        for (const kind of order) {
          const outcome = await measure(kind, config, `${dir}/data`, m, seconds);
          results[kind][config].push(outcome);
          const text = "notServed" in outcome
            ? outcome.notServed
            : (["put", "get"] as const).map((mode) => {
              const r = outcome[mode];
              return `${mode} ${thousands(r.rps)}/s (${thousands(r.cpuUs)} µs/req, other work ${
                thousands(r.otherPercent)
              } %)`;
            }).join(", ");
          console.error(`round ${round}, ${kind}, ${config}: ${text}`);
        }
      }
    }
    const text = table(results, configs, await etcdVersion(), seconds) + "\n\n" +
      otherWork(results, rounds);
    const date = new Date().toISOString().slice(0, 10);
    const cmd = `deno run -A bench/auth.ts --seconds ${seconds} --rounds ${rounds}${
      values["no-jwt"] ? " --no-jwt" : ""
    }`;
    const report = `Measured ${date} by \`${cmd}\` on this machine (2 cores):\n\n${text}`;
    console.log(report);
    if (!values["no-readme"]) await rewriteReadmeSection("auth.ts", report);
    const failed = Object.values(results).some((byConfig) =>
      Object.values(byConfig).some((outcomes) =>
        outcomes.some((o) => !("notServed" in o) && (o.put.errors > 0 || o.get.errors > 0))
      )
    );
    return failed ? 1 : 0;
  } finally {
    m.client.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
