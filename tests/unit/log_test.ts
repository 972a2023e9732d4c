import assert from "node:assert/strict";
import {
  goDuration,
  hexId,
  isLogLevel,
  LOG_LEVELS,
  Logger,
  LogOutputError,
  LogOutputs,
} from "../../server/log.ts";
import { InvariantError } from "../../core/invariant.ts";

function capture(level?: (typeof LOG_LEVELS)[number]) {
  const lines: string[] = [];
  const logger = new Logger({
    level,
    write: (line) => lines.push(line),
    now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
  });
  return { logger, lines };
}

Deno.test("log: one JSON line per entry in etcd's layout, fields after msg", () => {
  const { logger, lines } = capture();
  logger.info("ready to serve client requests", {
    "client-urls": ["http://127.0.0.1:2379"],
    id: 12345678901234567890n,
    error: new Error("boom"),
    skipped: undefined,
  });
  assert.deepEqual(lines, [
    '{"level":"info","ts":"2026-01-02T03:04:05.678Z","msg":"ready to serve client requests",' +
    '"client-urls":["http://127.0.0.1:2379"],"id":"12345678901234567890","error":"boom"}\n',
  ]);
});

Deno.test("log: --log-level filters less severe entries; fatal is always written", () => {
  for (const [i, level] of LOG_LEVELS.entries()) {
    const { logger, lines } = capture(level);
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    logger.log("panic", "p");
    logger.fatal("f");
    const written = lines.map((l) => JSON.parse(l).level);
    assert.deepEqual(written, LOG_LEVELS.slice(i), level);
  }
  const { logger, lines } = capture("error");
  logger.level = "debug";
  logger.debug("now written");
  assert.equal(lines.length, 1);
  assert.equal(logger.level, "debug");
  assert.ok(logger.enabled("info"));
});

Deno.test("log: level names are etcd's; fields cannot replace level, ts or msg", () => {
  assert.ok(["debug", "info", "warn", "error", "panic", "fatal"].every(isLogLevel));
  assert.ok(!isLogLevel("warning") && !isLogLevel("INFO"));
  const { logger } = capture();
  assert.throws(() => logger.info("x", { msg: "y" }), InvariantError);
});

Deno.test("log: durations are Go's strings, as zap writes them", () => {
  assert.equal(goDuration(100), "100ms");
  assert.equal(goDuration(0.023666), "23.666µs");
  assert.equal(goDuration(5.346464), "5.346464ms");
  assert.equal(goDuration(1500), "1.5s");
  assert.equal(goDuration(90_000), "1m30s");
  assert.equal(hexId(0xa8535b46228a4dd2n), "a8535b46228a4dd2");
});

Deno.test("log: past 100 entries of one message in a second, one in 100 is written (zap's sampling)", () => {
  let t = Date.UTC(2026, 0, 2, 3, 4, 5, 0);
  const lines: string[] = [];
  const logger = new Logger({ write: (l) => lines.push(l), now: () => new Date(t) });
  for (let i = 0; i < 350; i++) logger.warn("same", { i });
  logger.warn("other");
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)).filter((e) => e.msg === "same").map((e) => e.i).slice(98),
    [98, 99, 199, 299],
  );
  assert.ok(lines.some((l) => JSON.parse(l).msg === "other"));
  // A new second starts a new count.
  t += 1000;
  lines.length = 0;
  for (let i = 0; i < 5; i++) logger.warn("same", { i });
  assert.equal(lines.length, 5);
});

Deno.test("log: outputs append whole lines to files; a file that cannot be opened is zap's error", () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-log-out-" });
  try {
    const file = `${dir}/cairn.log`;
    Deno.writeTextFileSync(file, "kept\n");
    const outputs = LogOutputs.open([file, `${dir}/second.log`]);
    assert.deepEqual(outputs.outputs, [file, `${dir}/second.log`]);
    const logger = new Logger({ now: () => new Date(Date.UTC(2026, 0, 2)) });
    logger.useOutputs(outputs);
    assert.equal(logger.outputs, outputs);
    logger.info("to a file", { n: 1 });
    outputs.close();
    const want = '{"level":"info","ts":"2026-01-02T00:00:00.000Z","msg":"to a file","n":1}\n';
    assert.equal(Deno.readTextFileSync(file), "kept\n" + want);
    assert.equal(Deno.readTextFileSync(`${dir}/second.log`), want);
    assert.throws(
      () => LogOutputs.open([`${dir}/missing/x.log`]),
      (err: Error) => {
        assert.ok(err instanceof LogOutputError);
        assert.equal(
          err.message,
          `open sink "${dir}/missing/x.log": open ${dir}/missing/x.log: no such file or directory`,
        );
        return true;
      },
    );
    // No outputs (etcd's /dev/null): nothing is written, nothing fails.
    const none = LogOutputs.open([]);
    none.write("dropped\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
