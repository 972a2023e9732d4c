import assert from "node:assert/strict";
import { isLogLevel, LOG_LEVELS, Logger } from "../../server/log.ts";
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
