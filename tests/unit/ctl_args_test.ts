import { memoryIO } from "./ctl_io.ts";
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { FlagError, parseFlags } from "../../cli/flags.ts";
import { buildDel, buildGet, buildPut, DEL_FLAGS, GET_FLAGS, PUT_FLAGS } from "../../cli/ops.ts";
import { GLOBAL_FLAGS, runCtl } from "../../cli/ctl.ts";
import { prefixRangeEnd } from "../../client/mod.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

Deno.test("parseFlags follows pflag: interleaving, = forms, shorthands, --", () => {
  const specs = [...GLOBAL_FLAGS, ...GET_FLAGS];
  const p = parseFlags(
    ["k", "--prefix", "-wjson", "--limit=3", "--endpoints", "a:1,b:2", "--", "--rev"],
    specs,
  );
  assertEquals(p.args, ["k", "--rev"]);
  assertEquals(p.values.get("prefix"), true);
  assertEquals(p.values.get("write-out"), "json");
  assertEquals(p.values.get("limit"), 3n);
  assertEquals(p.values.get("endpoints"), ["a:1", "b:2"]);
  assertEquals(p.values.get("command-timeout"), 5000);
  assertEquals(parseFlags(["--prefix=false", "-w", "table"], specs).values.get("prefix"), false);
});

Deno.test("parseFlags errors read as pflag's", () => {
  const specs = [...GLOBAL_FLAGS, ...GET_FLAGS];
  assertThrows(() => parseFlags(["--bogus"], specs), new FlagError("unknown flag: --bogus"));
  assertThrows(
    () => parseFlags(["-x"], specs),
    new FlagError("unknown shorthand flag: 'x' in -x"),
  );
  assertThrows(() => parseFlags(["--limit"], specs), {
    message: "flag needs an argument: --limit",
  });
  assertThrows(() => parseFlags(["--limit", "abc"], specs), {
    message:
      'invalid argument "abc" for "--limit" flag: strconv.ParseInt: parsing "abc": invalid syntax',
  });
});

function flags(argv: string[], specs = GET_FLAGS) {
  return parseFlags(argv, specs);
}

Deno.test("buildGet applies prefix, from-key, sort and consistency as etcdctl", () => {
  let p = flags(["a", "--prefix", "--limit", "2", "--rev", "5", "--consistency", "s"]);
  assertEquals(buildGet(p.args, p.values).request, {
    key: b("a"),
    range_end: b("b"),
    limit: 2,
    revision: 5,
    serializable: true,
  });
  p = flags(["", "--prefix"]);
  assertEquals(buildGet(p.args, p.values).request, {
    key: new Uint8Array([0]),
    range_end: new Uint8Array([0]),
  });
  assertEquals(prefixRangeEnd(new Uint8Array([0x61, 0xff])), new Uint8Array([0x62]));
  assertEquals(prefixRangeEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]));
  p = flags(["a", "--sort-by", "modify", "--order", "descend", "--keys-only"]);
  assertEquals(buildGet(p.args, p.values).request, {
    key: b("a"),
    sort_order: "DESCEND",
    sort_target: "MOD",
    keys_only: true,
  });
  p = flags(["a", "--order", "ASCEND"]); // KEY + ASCEND collapses to NONE (clientv3)
  assertEquals(buildGet(p.args, p.values).request, { key: b("a") });
  p = flags(["a", "z"]);
  assertEquals(buildGet(p.args, p.values).request, { key: b("a"), range_end: b("z") });
});

Deno.test("buildGet, buildPut, buildDel reject bad arguments with etcdctl's codes", () => {
  const cases: [() => unknown, number, string][] = [
    [() => buildGet([], flags([]).values), 128, "get command needs one argument"],
    [() => buildGet(["a"], flags(["--prefix", "--from-key"]).values), 128, "`--prefix` and"],
    [() => buildGet(["a", "b"], flags(["--prefix"]).values), 128, "too many arguments"],
    [
      () => buildGet(["a"], flags(["--consistency", "x"]).values),
      4,
      'unknown consistency flag "x"',
    ],
    [() => buildGet(["a"], flags(["--order", "up"]).values), 4, "bad sort order up"],
    [() => buildPut([], flags([], PUT_FLAGS).values), 128, "put command needs 1 argument"],
    [() => buildPut(["a"], flags([], PUT_FLAGS).values), 128, "put command needs 1 argument"],
    [
      () => buildPut(["a", "b"], flags(["--ignore-value"], PUT_FLAGS).values),
      128,
      "put command needs only 1 argument when 'ignore-value' is set",
    ],
    [
      () => buildPut(["a", "b"], flags(["--lease", "zz"], PUT_FLAGS).values),
      128,
      'bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex',
    ],
    [() => buildDel(["a", "b", "c"], flags([], DEL_FLAGS).values), 128, "del command needs one"],
  ];
  for (const [fn, code, text] of cases) {
    assertThrows(fn, (e: unknown) => {
      const err = e as { exitCode: number; message: string };
      assertEquals(err.exitCode, code);
      assertEquals(err.message.startsWith(text), true, `${err.message} vs ${text}`);
      return true;
    });
  }
});

Deno.test("buildPut takes the value from stdin and the lease in hex", () => {
  const p = flags(["k", "--lease", "ff", "--prev-kv"], PUT_FLAGS);
  assertEquals(buildPut(p.args, p.values, b("from stdin")), {
    key: b("k"),
    value: b("from stdin"),
    lease: 255n,
    prev_kv: true,
  });
  const d = flags(["k", "--from-key", "--prev-kv"], DEL_FLAGS);
  assertEquals(buildDel(d.args, d.values), {
    key: b("k"),
    range_end: new Uint8Array([0]),
    prev_kv: true,
  });
});

Deno.test("runCtl reports argument errors like etcdctl without contacting a server", async () => {
  const cases: [string[], string, number, string][] = [
    [
      ["foo"],
      "",
      1,
      'Error: unknown command "foo" for "etcdctl"\n' +
      "Run 'etcdctl --help' for usage.\n" + 'Error: unknown command "foo" for "etcdctl"\n',
    ],
    [["get", "--bogus"], "", 1, "Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n"],
    [
      ["get"],
      "",
      128,
      "Error: get command needs one argument as key and an optional argument as range_end\n",
    ],
    [
      ["put", "k"],
      "",
      128,
      "Error: put command needs 1 argument and input from stdin or 2 arguments\n",
    ],
    [["compaction"], "", 128, "Error: compaction command needs 1 argument\n"],
    [["compaction", "x"], "", 1, 'Error: strconv.ParseInt: parsing "x": invalid syntax\n'],
    [["-w", "bogus", "get", "a"], "", 4, "Error: unsupported output format\n"],
    [["txn", "x"], "", 128, "Error: txn command does not accept argument\n"],
    [
      ["txn"],
      'mod("a") = 0\n',
      3,
      'Error: malformed comparison: mod("a") = 0; got mod("a") = ""\n',
    ],
    [["txn"], "\n\n", 3, "Error: EOF\n"],
    [["alarm", "list", "x"], "", 128, "Error: alarm list command accepts no arguments\n"],
    [["alarm", "disarm", "x"], "", 128, "Error: alarm disarm command accepts no arguments\n"],
    [
      ["defrag", "--data-dir", "/var/lib/etcd"],
      "",
      128,
      "Error: --data-dir is not supported by cairn ctl: defragment the running member " +
      "(it keeps serving meanwhile)\n",
    ],
    [["--cert", "", "get", "a"], "", 128, "Error: empty string is passed to --cert option\n"],
    [
      ["--cert", "/nonexistent/client.pem", "get", "a"],
      "",
      128,
      "Error: KeyFile and CertFile must both be present[key: , cert: /nonexistent/client.pem]\n",
    ],
    [
      ["--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem", "get", "a"],
      "",
      128,
      "Error: open /nonexistent/c.pem: no such file or directory\n",
    ],
    [
      ["endpoint", "hashkv", "--rev", "x"],
      "",
      1,
      'Error: invalid argument "x" for "--rev" flag: strconv.ParseInt: parsing "x": invalid syntax' +
      '\n\nError: invalid argument "x" for "--rev" flag: strconv.ParseInt: parsing "x": ' +
      "invalid syntax\n",
    ],
  ];
  for (const [args, stdin, code, stderr] of cases) {
    const m = memoryIO(stdin);
    assertEquals(await runCtl(args, m.io), code, args.join(" "));
    assertEquals(m.err(), stderr, args.join(" "));
  }
});

Deno.test("runCtl txn -i prompts before each section", async () => {
  const m = memoryIO("\nput a --bogus\n");
  assertEquals(await runCtl(["txn", "-i"], m.io), 3);
  assertEquals(m.out(), "compares:\nsuccess requests (get, put, del):\n");
  assertEquals(m.err().endsWith("Error: invalid txn request: put a --bogus\n"), true);
});

Deno.test("runCtl version prints etcdctl's two lines", async () => {
  const m = memoryIO();
  assertEquals(await runCtl(["version"], m.io), 0);
  assertEquals(m.out(), "etcdctl version: 3.4.0\nAPI version: 3.4\n");
});

Deno.test("runCtl times out on an unreachable endpoint with etcdctl's error", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens on it now, so connections are refused
  const m = memoryIO("", {
    ETCDCTL_ENDPOINTS: `127.0.0.1:${port}`,
    ETCDCTL_COMMAND_TIMEOUT: "300ms",
  });
  assertEquals(await runCtl(["get", "a"], m.io), 1);
  assertEquals(m.err(), "Error: context deadline exceeded\n");
  // Per-endpoint maintenance commands report the endpoint, as etcdctl.
  const d = memoryIO("", { ETCDCTL_COMMAND_TIMEOUT: "300ms" });
  assertEquals(await runCtl(["defrag", "--endpoints", `127.0.0.1:${port}`], d.io), 1);
  assertEquals(
    d.err(),
    `Failed to defragment etcd member[127.0.0.1:${port}] (context deadline exceeded)\n`,
  );
  const h = memoryIO("", { ETCDCTL_COMMAND_TIMEOUT: "300ms" });
  assertEquals(await runCtl(["endpoint", "hashkv", "--endpoints", `127.0.0.1:${port}`], h.io), 1);
  assertEquals(
    h.err(),
    `Failed to get the hash of endpoint 127.0.0.1:${port} (context deadline exceeded)\n` +
      "Error: context deadline exceeded\n",
  );
  assertEquals(h.out(), "");
});
