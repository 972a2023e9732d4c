import assert from "node:assert/strict";
import { cairnArgs, freePort, ROOT, runCairnToExit } from "../servers.ts";

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
async function runAndStop(args: string[]): Promise<{ code: number; entries: Entry[] }> {
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
    stdout: "null",
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
  } finally {
    child.kill("SIGTERM");
  }
  const out = await output;
  Deno.removeSync(dataDir, { recursive: true });
  const lines = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
  const entries = lines.map((line) => {
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
  return { code: out.code, entries };
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
  // Every flag is in effect: none is only accepted.
  assert.equal(inEffect["quota-backend-bytes"], 8589934592);
  assert.ok(!msgs.some((m) => m.includes("accepted for compatibility")));
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

Deno.test("logging: --log-level warn leaves out info entries", async () => {
  const { code, entries } = await runAndStop([
    "--log-level",
    "warn",
    "--quota-backend-bytes",
    "9000000000",
  ]);
  assert.equal(code, 0);
  assert.deepEqual(entries.map((e) => [e.level, e.msg, e["quota-size-bytes"]]), [
    ["warn", "quota exceeds the maximum value", 9000000000],
  ]);
});

Deno.test("logging: a bad --log-level is refused with a fatal entry", async () => {
  const res = await runCairnToExit(["--log-level", "bogus"]);
  assert.equal(res.code, 2);
  const entry = JSON.parse(res.stderr.trim());
  assert.equal(entry.level, "fatal");
  assert.equal(entry.error, 'unknown level "bogus"');
});
