import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  formatGoDuration,
  goJsonString,
  goQuote,
  humanizeBytes,
  parseGoDuration,
  parseGoInt64,
} from "../../cli/go_format.ts";
import {
  jsonDel,
  jsonRange,
  jsonStatus,
  jsonTxn,
  newPrinter,
  type Out,
  renderTable,
} from "../../cli/printer.ts";
import type {
  AlarmResponse,
  HashKVResponse,
  KeyValue,
  RangeResponse,
  ResponseHeader,
  StatusResponse,
  TxnResponse,
} from "../../core/api/types.ts";
import { CtlError } from "../../cli/exit.ts";
import { pbDel, pbRange, pbTxn } from "../../cli/protobuf.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const H: ResponseHeader = {
  cluster_id: 15118495548433857066n,
  member_id: 13668033151171901709n,
  revision: 3,
  raft_term: 2,
};

function kv(key: string, value: string, rev: number, version = 1): KeyValue {
  return {
    key: enc.encode(key),
    value: enc.encode(value),
    create_revision: rev,
    mod_revision: rev,
    version,
    lease: 0n,
  };
}

class Buf implements Out {
  chunks: Uint8Array[] = [];
  write(d: Uint8Array | string) {
    this.chunks.push(typeof d === "string" ? enc.encode(d) : d);
  }
  text() {
    return this.chunks.map((c) => dec.decode(c)).join("");
  }
}

Deno.test("formatGoDuration matches time.Duration.String", () => {
  assertEquals(formatGoDuration(0n), "0s");
  assertEquals(formatGoDuration(850n), "850ns");
  assertEquals(formatGoDuration(1_500n), "1.5µs");
  assertEquals(formatGoDuration(1_674_697n), "1.674697ms");
  assertEquals(formatGoDuration(2_000_000n), "2ms");
  assertEquals(formatGoDuration(2_500_000_000n), "2.5s");
  assertEquals(formatGoDuration(90_000_000_000n), "1m30s");
  assertEquals(formatGoDuration(3_600_000_000_000n), "1h0m0s");
});

Deno.test("parseGoDuration reads Go durations into milliseconds", () => {
  assertEquals(parseGoDuration("5s"), 5000);
  assertEquals(parseGoDuration("1m30s"), 90000);
  assertEquals(parseGoDuration("250ms"), 250);
  assertEquals(parseGoDuration("0"), 0);
  assertThrows(() => parseGoDuration("abc"), /time: invalid duration "abc"/);
  assertThrows(() => parseGoDuration("5"), /missing unit/);
});

Deno.test("parseGoInt64 has strconv's errors", () => {
  assertEquals(parseGoInt64("42"), 42n);
  assertEquals(parseGoInt64("ff", 16), 255n);
  assertThrows(() => parseGoInt64("abc"), {
    message: 'strconv.ParseInt: parsing "abc": invalid syntax',
  });
  assertThrows(() => parseGoInt64("9223372036854775808"), /value out of range/);
});

Deno.test("humanizeBytes matches go-humanize (SI)", () => {
  assertEquals(humanizeBytes(0), "0 B");
  assertEquals(humanizeBytes(9), "9 B");
  assertEquals(humanizeBytes(20480), "20 kB");
  assertEquals(humanizeBytes(1500), "1.5 kB");
  assertEquals(humanizeBytes(2_662_410), "2.7 MB");
  assertEquals(humanizeBytes(21500), "22 kB");
  assertEquals(humanizeBytes(32768), "33 kB");
});

Deno.test("goQuote and goJsonString escape as Go", () => {
  assertEquals(goQuote(enc.encode('a"b\n\té')), '"a\\"b\\n\\té"');
  assertEquals(goQuote(new Uint8Array([0xff, 0x00])), '"\\xff\\x00"');
  // Non-printable runes as unicode.IsPrint decides: C1 controls, line
  // separator, soft hyphen, private use; printable ones stay.
  assertEquals(
    goQuote(enc.encode("\u0085\u2028\u00ad\ue000✓\u{1F600}")),
    '"\\u0085\\u2028\\u00ad\\ue000✓\u{1F600}"',
  );
  assertEquals(goQuote(enc.encode("\u{E0001}")), '"\\U000e0001"');
  assertEquals(goJsonString("<a&b>"), '"\\u003ca\\u0026b\\u003e"');
});

Deno.test("json printer writes etcdctl's field order, numbers and base64", () => {
  const r: RangeResponse = { header: H, kvs: [kv("foo", "bar", 2)], more: true, count: 5 };
  assertEquals(
    jsonRange(r),
    '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,' +
      '"revision":3,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,' +
      '"mod_revision":2,"version":1,"value":"YmFy"}],"more":true,"count":5}',
  );
  // zero values are omitted
  assertEquals(
    jsonRange({ header: { ...H, raft_term: 0 }, kvs: [], more: false, count: 0 }),
    '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":3}}',
  );
  assertEquals(
    jsonDel({ header: { revision: 4 } as ResponseHeader, deleted: 1, prev_kvs: [] }),
    '{"header":{"revision":4},"deleted":1}',
  );
});

Deno.test("json printer wraps txn responses as Go's oneof", () => {
  const t: TxnResponse = {
    header: H,
    succeeded: true,
    responses: [
      { response_put: { header: { revision: 3 } as ResponseHeader } },
      {
        response_range: {
          header: { revision: 3 } as ResponseHeader,
          kvs: [{ ...kv("k", "", 3), lease: 7n }],
          more: false,
          count: 1,
        },
      },
    ],
  };
  assertEquals(
    jsonTxn(t).slice(jsonTxn(t).indexOf('"succeeded"')),
    '"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":3}}}},' +
      '{"Response":{"ResponseRange":{"header":{"revision":3},"kvs":[{"key":"aw==",' +
      '"create_revision":3,"mod_revision":3,"version":1,"lease":7}],"count":1}}}]}',
  );
});

const STATUS: StatusResponse = {
  header: H,
  version: "3.4.23",
  dbSize: 20480,
  leader: 13668033151171901709n,
  raftIndex: 28,
  raftTerm: 2,
  raftAppliedIndex: 28,
  errors: [],
  dbSizeInUse: 16384,
  isLearner: false,
};

Deno.test("endpoint status in simple, json and table form", () => {
  assertEquals(
    jsonStatus(STATUS).slice(jsonStatus(STATUS).indexOf('"version"')),
    '"version":"3.4.23","dbSize":20480,"leader":13668033151171901709,"raftIndex":28,' +
      '"raftTerm":2,"raftAppliedIndex":28,"dbSizeInUse":16384}',
  );
  const out = new Buf();
  newPrinter("simple", out, new Buf()).endpointStatus([{
    endpoint: "127.0.0.1:2379",
    status: STATUS,
  }]);
  assertEquals(
    out.text(),
    "127.0.0.1:2379, bdae9bbc11dd390d, 3.4.23, 20 kB, true, false, 2, 28, 28, \n",
  );
});

Deno.test("renderTable draws tablewriter's boxes", () => {
  assertEquals(
    renderTable(["endpoint", "health", "took", "error"], [[
      "127.0.0.1:23791",
      "true",
      "1.796969ms",
      "",
    ]]),
    [
      "+-----------------+--------+------------+-------+",
      "|    ENDPOINT     | HEALTH |    TOOK    | ERROR |",
      "+-----------------+--------+------------+-------+",
      "| 127.0.0.1:23791 |   true | 1.796969ms |       |",
      "+-----------------+--------+------------+-------+",
      "",
    ].join("\n"),
  );
});

Deno.test("simple printer prints raw bytes, txn sections, health on stderr", () => {
  const out = new Buf();
  const err = new Buf();
  const p = newPrinter("simple", out, err);
  p.txn({
    header: H,
    succeeded: false,
    responses: [
      { response_put: { header: H, prev_kv: kv("a", "1", 2) } },
      { response_delete_range: { header: H, deleted: 2, prev_kvs: [] } },
    ],
  });
  assertEquals(out.text(), "FAILURE\n\nOK\na\n1\n\n2\n");
  p.endpointHealth([{ endpoint: "e:1", health: false, took: "1s", error: "boom" }]);
  assertEquals(err.text(), "e:1 is unhealthy: failed to commit proposal: boom\n");
  const hex = new Buf();
  newPrinter("simple", hex, err, { hex: true }).get({
    header: H,
    kvs: [kv("a", "\x01", 2)],
    more: false,
    count: 1,
  });
  assertEquals(hex.text(), "\\x61\n\\x01\n");
});

Deno.test("unsupported output formats fail as etcdctl", () => {
  assertThrows(() => newPrinter("bogus", new Buf(), new Buf()), {
    message: "unsupported output format",
  });
  assertThrows(
    () => newPrinter("protobuf", new Buf(), new Buf()).endpointStatus([]),
    { message: "protobuf not supported as output format" },
  );
  const table = newPrinter("table", new Buf(), new Buf());
  assertThrows(
    () => table.get({ header: H, kvs: [], more: false, count: 0 }),
    (e: unknown) => e instanceof CtlError && e.exitCode === 4,
  );
});

Deno.test("protobuf output is the gogoproto wire encoding", () => {
  const h: ResponseHeader = { cluster_id: 1n, member_id: 2n, revision: 3, raft_term: 4 };
  const hdr = [0x0a, 0x08, 0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x20, 0x04];
  const kvBytes = [0x0a, 0x01, 0x61, 0x10, 0x02, 0x18, 0x02, 0x20, 0x01, 0x2a, 0x01, 0x62];
  assertEquals(
    pbRange({ header: h, kvs: [kv("a", "b", 2)], more: false, count: 1 }),
    new Uint8Array([...hdr, 0x12, 0x0c, ...kvBytes, 0x20, 0x01]),
  );
  // a negative int64 is a ten-byte varint; an empty (but present) header is written
  assertEquals(
    pbDel({
      header: {} as ResponseHeader,
      deleted: 1,
      prev_kvs: [{ ...kv("", "", 0, 0), lease: -1n }],
    }),
    new Uint8Array([0x0a, 0x00, 0x10, 0x01, 0x1a, 0x0b, 0x30, ...Array(9).fill(0xff), 0x01]),
  );
  assertEquals(
    pbTxn({
      header: h,
      succeeded: true,
      responses: [{ response_put: { header: { revision: 3 } as ResponseHeader } }],
    }),
    new Uint8Array([...hdr, 0x10, 0x01, 0x1a, 0x06, 0x12, 0x04, 0x0a, 0x02, 0x18, 0x03]),
  );
});

/** Each -w format's output of `print` (stdout as text, or protobuf bytes), or its error. */
function formats(print: (p: ReturnType<typeof newPrinter>) => void) {
  const result: Record<string, string | Uint8Array> = {};
  for (const w of ["simple", "json", "fields", "table", "protobuf"]) {
    const out = new Buf();
    try {
      print(newPrinter(w, out, new Buf()));
      const bytes = new Uint8Array(out.chunks.flatMap((c) => [...c]));
      result[w] = w === "protobuf" ? bytes : dec.decode(bytes);
    } catch (e) {
      result[w] = `exit ${(e as CtlError).exitCode}: ${(e as Error).message}`;
    }
  }
  return result;
}

// Expected outputs below are etcdctl 3.4.23's, captured against etcd 3.4.23.

Deno.test("alarm list and disarm print as etcdctl (fields: the alarms without a header)", () => {
  const alarms: AlarmResponse = {
    alarms: [
      { memberID: 12314098064151418531n, alarm: "NOSPACE" },
      { memberID: 1n, alarm: "CORRUPT" },
    ],
  };
  assertEquals(formats((p) => p.alarm(alarms)), {
    simple: "memberID:12314098064151418531 alarm:NOSPACE \nmemberID:1 alarm:CORRUPT \n",
    json: '{"alarms":[{"memberID":12314098064151418531,"alarm":1},{"memberID":1,"alarm":2}]}\n',
    fields: '"MemberID" : 12314098064151418531\n"AlarmType" : NOSPACE\n\n' +
      '"MemberID" : 1\n"AlarmType" : CORRUPT\n\n',
    table: "exit 4: table not supported as output format",
    protobuf: new Uint8Array([
      ...[0x12, 0x0d, 0x08, 0xa3, 0xad, 0xc8, 0xd8, 0xa4, 0xde, 0x9d, 0xf2, 0xaa, 0x01, 0x10, 0x01],
      ...[0x12, 0x04, 0x08, 0x01, 0x10, 0x02],
    ]),
  });
  assertEquals(formats((p) => p.alarm({ alarms: [] })), {
    simple: "",
    json: "{}\n",
    fields: "",
    table: "exit 4: table not supported as output format",
    protobuf: new Uint8Array(),
  });
});

Deno.test("endpoint hashkv prints as etcdctl in every format (protobuf refused)", () => {
  const hashKV: HashKVResponse = {
    header: {
      cluster_id: 15120710370423821374n,
      member_id: 12314098064151418531n,
      revision: 3,
      raft_term: 2,
    },
    hash: 1764463401,
    compact_revision: -1,
  };
  assertEquals(formats((p) => p.endpointHashKV([{ endpoint: "127.0.0.1:37379", hashKV }])), {
    simple: "127.0.0.1:37379, 1764463401\n",
    json: '[{"Endpoint":"127.0.0.1:37379","HashKV":{"header":{"cluster_id":15120710370423821374,' +
      '"member_id":12314098064151418531,"revision":3,"raft_term":2},"hash":1764463401,' +
      '"compact_revision":-1}}]\n',
    fields: '"ClusterID" : 15120710370423821374\n"MemberID" : 12314098064151418531\n' +
      '"Revision" : 3\n"RaftTerm" : 2\n"Endpoint" : "127.0.0.1:37379"\n"Hash" : 1764463401\n\n',
    table: "+-----------------+------------+\n" +
      "|    ENDPOINT     |    HASH    |\n" +
      "+-----------------+------------+\n" +
      "| 127.0.0.1:37379 | 1764463401 |\n" +
      "+-----------------+------------+\n",
    protobuf: "exit 4: protobuf not supported as output format",
  });
  assertEquals(formats((p) => p.endpointHashKV([])).json, "[]\n");
});
