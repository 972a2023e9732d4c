import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  argify,
  parseCompare,
  parseRequestOp,
  readTxn,
  scanQuoted,
  StringLineReader,
} from "../../cli/txn_grammar.ts";
import { CtlError } from "../../cli/exit.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

function ctlError(fn: () => unknown): CtlError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CtlError) return e;
    throw e;
  }
  throw new Error("expected a CtlError");
}

Deno.test("scanQuoted reads Go string literals with escapes", () => {
  assertEquals(scanQuoted('"a\\nb\\x41\\u00e9\\101\\"" rest', 0), {
    value: b('a\nbA\u00e9A"'),
    end: 22,
  });
  assertEquals(scanQuoted("`raw\\n`", 0), { value: b("raw\\n"), end: 7 });
  assertEquals(scanQuoted('"\\xff"', 0)?.value, new Uint8Array([0xff]));
  assertEquals(scanQuoted('"unterminated', 0), null);
  assertEquals(scanQuoted('"bad \\q"', 0), null);
  assertEquals(scanQuoted("noquote", 0), null);
});

Deno.test("parseCompare maps every target and operator", () => {
  assertEquals(parseCompare('mod("key") > "0"'), {
    result: "GREATER",
    target: "MOD",
    key: b("key"),
    mod_revision: 0,
  });
  assertEquals(parseCompare('m("k") < "12"'), {
    result: "LESS",
    target: "MOD",
    key: b("k"),
    mod_revision: 12,
  });
  assertEquals(parseCompare('value("k") = "v w"'), {
    result: "EQUAL",
    target: "VALUE",
    key: b("k"),
    value: b("v w"),
  });
  assertEquals(parseCompare('val("k") != "x"').result, "NOT_EQUAL");
  assertEquals(parseCompare('version("k") = "3"').version, 3);
  assertEquals(parseCompare('ver("k") = "3"').target, "VERSION");
  assertEquals(parseCompare('create("k") = "7"').create_revision, 7);
  assertEquals(parseCompare('c("k") = "7"').target, "CREATE");
  assertEquals(parseCompare('lease("k") = "1f"'), {
    result: "EQUAL",
    target: "LEASE",
    key: b("k"),
    lease: 31n,
  });
});

Deno.test("parseCompare errors read as etcdctl's", () => {
  assertEquals(ctlError(() => parseCompare("bad")).message, "malformed comparison: bad");
  const unquoted = ctlError(() => parseCompare('mod("a") = 0'));
  assertEquals(unquoted.message, 'malformed comparison: mod("a") = 0; got mod("a") = ""');
  assertEquals(unquoted.exitCode, 3);
  assertEquals(
    ctlError(() => parseCompare('val("k1")>"x"')).message,
    'malformed comparison: val("k1")>"x"; got val("k1")  ""',
  );
  assertEquals(
    ctlError(() => parseCompare('foo("a") = "0"')).message,
    'malformed comparison: foo("a") = "0" (unknown target foo)',
  );
  assertEquals(
    ctlError(() => parseCompare('mod("a") = "x"')).message,
    'invalid txn compare request: mod("a") = "x"',
  );
  const panic = ctlError(() => parseCompare('mod("a") == "0"'));
  assertEquals([panic.exitCode, panic.message, panic.bare], [
    2,
    "panic: Unknown result op\n",
    true,
  ]);
});

Deno.test("argify splits quoted words as etcdctl", () => {
  assertEquals(argify('put k1 "new v"'), ["put", "k1", "new v"]);
  assertEquals(argify("put k 'a b'"), ["put", "k", "a b"]);
  assertEquals(argify('put "a\\tb" x'), ["put", "a\tb", "x"]);
  assertEquals(argify("  get   k  --prefix "), ["get", "k", "--prefix"]);
});

Deno.test("parseRequestOp builds put, get and del requests with their flags", () => {
  assertEquals(parseRequestOp("put k v --prev-kv --lease 1f"), {
    request_put: { key: b("k"), value: b("v"), lease: 31n, prev_kv: true },
  });
  assertEquals(parseRequestOp("get k --prefix --limit 2"), {
    request_range: { key: b("k"), range_end: b("l"), limit: 2 },
  });
  assertEquals(parseRequestOp("del a c --prev-kv"), {
    request_delete_range: { key: b("a"), range_end: b("c"), prev_kv: true },
  });
  assertEquals(parseRequestOp("g k --from-key"), {
    request_range: { key: b("k"), range_end: new Uint8Array([0]) },
  });
});

Deno.test("parseRequestOp rejects unknown commands and flags", () => {
  const unknown = ctlError(() => parseRequestOp("foo a"));
  assertEquals([unknown.exitCode, unknown.message], [3, "invalid txn request: foo a"]);
  const flag = ctlError(() => parseRequestOp("del a --bogus"));
  assertEquals(flag.message, "invalid txn request: del a --bogus");
  assertEquals(flag.usage?.startsWith("Usage:\n   del [options] <key> [range_end] [flags]"), true);
  assertEquals(ctlError(() => parseRequestOp("get")).message, "invalid txn compare request: get");
  const sort = ctlError(() => parseRequestOp("get a --sort-by bad"));
  assertEquals([sort.exitCode, sort.message], [4, "bad sort target bad"]);
});

Deno.test("readTxn reads three blank-line terminated sections and prompts", async () => {
  const prompts: string[] = [];
  const txn = await readTxn(
    new StringLineReader('mod("a") > "0"\n\nput a b\nget a\n\n  \n'),
    (p) => prompts.push(p),
  );
  assertEquals(prompts, [
    "compares:",
    "success requests (get, put, del):",
    "failure requests (get, put, del):",
  ]);
  assertEquals(txn.compare.length, 1);
  assertEquals(txn.success, [
    { request_put: { key: b("a"), value: b("b") } },
    { request_range: { key: b("a") } },
  ]);
  assertEquals(txn.failure, []);
});

Deno.test("readTxn fails with EOF when a section is not closed", async () => {
  let err: unknown;
  try {
    await readTxn(new StringLineReader('mod("a") > "0"\n\nput a b\n'), () => {});
  } catch (e) {
    err = e;
  }
  assertEquals(err instanceof CtlError && [err.exitCode, err.message], [3, "EOF"]);
  assertThrows(() => parseCompare(""), CtlError);
});
