import assert from "node:assert/strict";
import { cairnArgs, freePort, ROOT, runCairnToExit, withoutDenoNotices } from "../servers.ts";

interface Entry {
  level: string;
  ts: string;
  msg: string;
  [field: string]: unknown;
}

/**
 * Run cairn until it is healthy, SIGTERM it, and return its stderr as log
 * entries (every line must be one JSON entry).
 */
async function runAndStop(
  args: string[],
  whileUp?: (url: string) => Promise<void>,
): Promise<{ code: number; entries: Entry[]; stdout: string }> {
  const dataDir = Deno.makeTempDirSync({ prefix: "cairn-log-" });
  const url = `http://127.0.0.1:${freePort()}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      ...cairnArgs(dataDir, url, args),
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const res = await fetch(`${url}/health`);
        if ((await res.text()).includes("true")) break;
      } catch {
        // not listening yet
      }
      assert.ok(Date.now() < deadline, "cairn did not become healthy");
      await new Promise((r) => setTimeout(r, 50));
    }
    await whileUp?.(url);
  } finally {
    child.kill("SIGTERM");
  }
  const out = await output;
  Deno.removeSync(dataDir, { recursive: true });
  const entries = parseEntries(withoutDenoNotices(new TextDecoder().decode(out.stderr)));
  return { code: out.code, entries, stdout: new TextDecoder().decode(out.stdout) };
}

/** Log lines as entries; every line must be one JSON entry with level, ts and msg. */
function parseEntries(text: string): Entry[] {
  const lines = text.split("\n").filter((l) => l !== "");
  return lines.map((line) => {
    let entry: Entry;
    try {
      entry = JSON.parse(line);
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
    assert.equal(typeof entry.level, "string", line);
    assert.match(entry.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
    assert.equal(typeof entry.msg, "string", line);
    return entry;
  });
}

Deno.test("logging: JSON lines on stderr; the flags in effect, the quota", async () => {
  const { code, entries } = await runAndStop(["--quota-backend-bytes", "8589934592"]);
  assert.equal(code, 0);
  const msgs = entries.map((e) => `${e.level} ${e.msg}`);
  for (
    const want of [
      "info starting cairn",
      "info flags in effect",
      "info enabled backend quota",
      "info ready to serve client requests",
      "info received signal; shutting down",
      "info stopped cairn",
    ]
  ) {
    assert.ok(msgs.includes(want), `missing "${want}" in:\n${msgs.join("\n")}`);
  }
  const inEffect = entries.find((e) => e.msg === "flags in effect")!;
  assert.equal(inEffect["max-txn-ops"], 128);
  assert.equal(inEffect["log-level"], "info");
  assert.equal(typeof inEffect["data-dir"], "string");
  assert.equal(inEffect["quota-backend-bytes"], 8589934592);
  // etcd's flags cairn only accepts are listed apart, with their values;
  // none was given, so none is warned of.
  const compat = entries.find((e) => e.msg === "flags accepted for compatibility, not in effect")!;
  assert.equal(compat["max-wals"], 5);
  assert.equal(compat["strict-reconfig-check"], true);
  assert.ok(!("max-wals" in inEffect));
  assert.ok(!msgs.includes("warn flag accepted for compatibility, not in effect"));
  const quota = entries.find((e) => e.msg === "enabled backend quota")!;
  assert.deepEqual([quota["quota-name"], quota["quota-size-bytes"]], ["v3-applier", 8589934592]);
  for (const flag of ["listen-peer-urls", "advertise-client-urls", "initial-cluster-state"]) {
    assert.ok(flag in inEffect, flag);
  }
  // The Raft tick and log compaction run on these.
  assert.equal(inEffect["snapshot-count"], 100000);
  assert.equal(inEffect["heartbeat-interval"], 100);
  assert.equal(inEffect["election-timeout"], 1000);
});

Deno.test("logging: --log-level warn leaves out info entries; a flag only accepted is warned of", async () => {
  const { code, entries } = await runAndStop([
    "--log-level",
    "warn",
    "--quota-backend-bytes",
    "9000000000",
    "--max-wals",
    "3",
  ]);
  assert.equal(code, 0);
  assert.deepEqual(entries.map((e) => [e.level, e.msg, e["quota-size-bytes"] ?? e.flag]), [
    ["warn", "flag accepted for compatibility, not in effect", "max-wals"],
    ["warn", "quota exceeds the maximum value", 9000000000],
  ]);
  assert.equal(entries[0].value, 3);
});

Deno.test("logging: a bad --log-level is refused with a fatal entry", async () => {
  const res = await runCairnToExit(["--log-level", "bogus"]);
  assert.equal(res.code, 2);
  const entry = JSON.parse(res.stderr.trim());
  assert.equal(entry.level, "fatal");
  assert.equal(entry.error, 'unknown level "bogus"');
});

Deno.test("logging: --log-outputs to a file and stdout; start-up, election and compaction entries", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-log-outputs-" });
  const file = `${dir}/cairn.log`;
  try {
    const { code, entries: onStderr, stdout } = await runAndStop(
      ["--log-outputs", `stdout,${file}`],
      async (url) => {
        const b64 = (s: string) => btoa(s);
        for (const value of ["a", "b"]) {
          const res = await fetch(`${url}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: b64("k"), value: b64(value) }),
          });
          assert.equal(res.status, 200);
        }
        const res = await fetch(`${url}/v3/kv/compaction`, {
          method: "POST",
          body: JSON.stringify({ revision: "2", physical: true }),
        });
        assert.equal(res.status, 200, await res.text());
      },
    );
    assert.equal(code, 0);
    assert.deepEqual(onStderr, []);
    const fromFile = parseEntries(Deno.readTextFileSync(file));
    assert.deepEqual(parseEntries(stdout), fromFile);
    const find = (re: RegExp) => {
      const e = fromFile.find((e) => re.test(e.msg));
      assert.ok(e, `no entry matching ${re} in:\n${fromFile.map((e) => e.msg).join("\n")}`);
      return e;
    };
    const local = find(/^starting local member$/);
    const me = local["local-member-id"] as string;
    assert.match(me, /^[0-9a-f]+$/);
    assert.match(local["cluster-id"] as string, /^[0-9a-f]+$/);
    // etcd-raft's words for a single voter's election.
    find(new RegExp(`^${me} became follower at term \\d+$`));
    find(new RegExp(`^${me} is starting a new election at term \\d+$`));
    const leader = find(new RegExp(`^${me} became leader at term \\d+$`));
    assert.equal(leader.level, "info");
    find(new RegExp(`^raft.node: ${me} elected leader ${me} at term \\d+$`));
    const compaction = find(/^finished scheduled compaction$/);
    assert.equal(compaction["compact-revision"], 2);
    assert.match(compaction.took as string, /^\d+(\.\d+)?(ns|µs|ms|s)$/);
    const inEffect = find(/^flags in effect$/);
    assert.deepEqual(inEffect["log-outputs"], [file, "stdout"].sort());
    assert.equal(inEffect.logger, "zap");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("logging: --logger=capnslog warns as etcd 3.4 does; a log file that cannot be opened is refused", async () => {
  const res = await runCairnToExit(["--logger", "capnslog", "--log-outputs", "/tmp/x.log"]);
  assert.equal(res.code, 2);
  const [warning, fatal] = res.stderr.trim().split("\n");
  assert.equal(
    warning,
    "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead",
  );
  assert.equal(
    JSON.parse(fatal).error,
    'unknown log-output "/tmp/x.log" (only supports "default", "stderr", "stdout")',
  );
  const missing = await runCairnToExit(["--log-outputs", "/nonexistent-dir/cairn.log"]);
  assert.equal(missing.code, 2);
  const entry = JSON.parse(missing.stderr.trim());
  assert.equal(entry.level, "fatal");
  assert.equal(
    entry.error,
    'open sink "/nonexistent-dir/cairn.log": open /nonexistent-dir/cairn.log: no such file or directory',
  );
});
