/**
 * `ctl watch` without a server: etcdctl 3.4's argument errors and
 * interactive-mode messages, and its printers' text for watch responses
 * (captured from etcdctl 3.4.23 against etcd 3.4.23).
 */
import { memoryIO } from "./ctl_io.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runCtl } from "../../cli/ctl.ts";
import { jsonWatch, newPrinter, type WatchView } from "../../cli/printer.ts";
import { pbWatch } from "../../cli/protobuf.ts";
import type { Event } from "../../core/api/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("ctl watch reports etcdctl's argument errors without contacting a server", async () => {
  // An endpoint nothing listens on: none of these may get as far as connecting.
  const ep = ["--endpoints", "127.0.0.1:1"];
  const cases: [string[], Record<string, string>, number, string][] = [
    [["watch"], {}, 128, "Error: bad number of arguments\n"],
    [["watch", "--prefix"], {}, 128, "Error: bad number of arguments\n"],
    [
      ["watch", "a", "--"],
      {},
      128,
      "Error: bad number of arguments (found separator --, but no commands)\n",
    ],
    [
      ["watch", "a", "b", "--prefix"],
      {},
      128,
      "Error: `range_end` and `--prefix` are mutually exclusive\n",
    ],
    [
      ["watch"],
      { ETCDCTL_WATCH_RANGE_END: "z" },
      128,
      'Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END="z"\n',
    ],
    [
      ["watch", "a"],
      { ETCDCTL_WATCH_KEY: "k" },
      128,
      "Error: bad number of arguments (found conflicting environment key)\n",
    ],
    [
      ["watch", "a", "--", "echo", "x"],
      { ETCDCTL_WATCH_KEY: "k" },
      128,
      "Error: bad number of arguments (found conflicting environment key)\n",
    ],
  ];
  for (const [args, env, code, stderr] of cases) {
    const m = memoryIO("", env);
    assertEquals(await runCtl([...ep, ...args], m.io), code, args.join(" "));
    assertEquals(m.err(), stderr, args.join(" "));
  }
});

Deno.test("ctl watch -i answers bad lines as etcdctl and exits 3 at the end of input", async () => {
  const m = memoryIO("\nfoo\nwatch\nwatch a b --prefix\n");
  assertEquals(await runCtl(["--endpoints", "127.0.0.1:1", "watch", "-i"], m.io), 3);
  assertEquals(
    m.err(),
    "Invalid command:  (watch and progress supported)\n" +
      "Invalid command foo (only support watch)\n" +
      "Invalid command watch (command type or key is not provided)\n" +
      "Invalid command watch a b --prefix (`range_end` and `--prefix` are mutually exclusive)\n" +
      "Error: Error reading watch request line: EOF\n",
  );
  const bad = memoryIO("watch a --bogus\n");
  assertEquals(await runCtl(["--endpoints", "127.0.0.1:1", "watch", "-i"], bad.io), 128);
  assertEquals(bad.err(), "Error: unknown flag: --bogus\n");
});

const HEADER = {
  cluster_id: 15118495548433857066n,
  member_id: 13668033151171901709n,
  raft_term: 2,
};
const kv = (key: string, value: string, create: number, mod: number, version: number) => ({
  key: enc.encode(key),
  value: enc.encode(value),
  create_revision: create,
  mod_revision: mod,
  version,
  lease: 0n,
});
const DELETE: Event = {
  type: "DELETE",
  kv: kv("a", "", 0, 5, 0),
  prev_kv: kv("a", "2", 2, 3, 2),
};
const RESPONSE: WatchView = {
  header: { ...HEADER, revision: 5 },
  events: [DELETE],
  compactRevision: 0,
  canceled: false,
  created: false,
};

Deno.test("watch responses print as etcdctl 3.4 prints them", () => {
  assertEquals(
    jsonWatch(RESPONSE),
    '{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,' +
      '"revision":5,"raft_term":2},"Events":[{"type":1,"kv":{"key":"YQ==","mod_revision":5},' +
      '"prev_kv":{"key":"YQ==","create_revision":2,"mod_revision":3,"version":2,"value":"Mg=="}}],' +
      '"CompactRevision":0,"Canceled":false,"Created":false}',
  );
  assertEquals(
    jsonWatch({
      header: { ...HEADER, revision: 0 },
      events: [],
      compactRevision: 5,
      canceled: true,
      created: false,
    }),
    '{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,' +
      '"raft_term":2},"Events":[],"CompactRevision":5,"Canceled":true,"Created":false}',
  );
  const out: string[] = [];
  const sink = {
    write: (d: string | Uint8Array) => out.push(typeof d === "string" ? d : dec.decode(d)),
  };
  newPrinter("simple", sink, sink).watch(RESPONSE);
  assertEquals(out.join(""), "DELETE\na\n2\na\n\n");
  out.length = 0;
  newPrinter("simple", sink, sink, { hex: true }).watch(RESPONSE);
  assertEquals(out.join(""), "DELETE\n\\x61\n\\x32\n\\x61\n\n");
  out.length = 0;
  newPrinter("fields", sink, sink).watch({
    ...RESPONSE,
    events: [{ ...DELETE, prev_kv: undefined }],
  });
  assertEquals(
    out.join(""),
    '"ClusterID" : 15118495548433857066\n"MemberID" : 13668033151171901709\n"Revision" : 5\n' +
      '"RaftTerm" : 2\n"Type" : DELETE\n"Key" : "a"\n"CreateRevision" : 0\n"ModRevision" : 5\n' +
      '"Version" : 0\n"Value" : ""\n"Lease" : 0\n',
  );
  // The DELETE event's bytes as etcdctl -w protobuf wrote them: type 1, then the kv.
  const pb = pbWatch({ ...RESPONSE, events: [{ ...DELETE, prev_kv: undefined }] });
  assertEquals([...pb.slice(-11)], [
    0x5a,
    0x09,
    0x08,
    0x01,
    0x12,
    0x05,
    0x0a,
    0x01,
    0x61,
    0x18,
    0x05,
  ]);
});
