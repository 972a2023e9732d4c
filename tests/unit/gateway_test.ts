/**
 * Unit tests of the JSON gateway in process (hono's `app.fetch`, over a fake
 * KVService or the real service layer on a store whose proposer refuses
 * every proposal): the codec both ways, Go-exact input errors, base64 and
 * JSON error positions, protobuf sizes and etcd's limits, routing, /health,
 * /version and streamed range responses. The expected texts are the ones
 * etcd 3.4.23 sends (observed with curl); the differential suite in
 * tests/compat checks the same against a live etcd.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { Errors, EtcdError } from "../../core/errors.ts";
import type {
  KeyValue,
  KVService,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
} from "../../core/api/types.ts";
import {
  fromJson,
  jsonName,
  keyValueJson,
  type MessageName,
  type MessageTypes,
  protoSize,
  responseHeaderJson,
  SCHEMA,
  stringifyGo,
  toJson,
} from "../../core/api/codec.ts";
import { decodeGoBase64, encodeBase64 } from "../../core/api/base64.ts";
import { parseGoJson } from "../../core/api/json.ts";
import { createGateway, rangeResponseBody } from "../../server/gateway/mod.ts";
import { EtcdServer, proposalSize } from "../../server/etcdserver/mod.ts";
import { openBackend } from "../../native/lmdb.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const header = (revision: number): ResponseHeader => ({
  cluster_id: 324952591200643719n,
  member_id: 3319814642761637952n,
  revision,
  raft_term: 2,
});
const kv = (key: string, rev: number, value = `v${rev}`): KeyValue => ({
  key: bytes(key),
  create_revision: rev,
  mod_revision: rev,
  version: 1,
  value: bytes(value),
  lease: 0n,
});

/** The message etcd's error would carry, or "ok". */
function decodeError(type: MessageName, body: string): string {
  try {
    fromJson(type, parseGoJson(body, "decoder"));
    return "ok";
  } catch (e) {
    assert(e instanceof EtcdError, `not an EtcdError: ${e}`);
    assertEquals([e.code, e.httpStatus], [3, 400]);
    return e.message;
  }
}

Deno.test("codec: toJson writes etcd's shape (names, int64 strings, base64, zeros omitted)", () => {
  const res: RangeResponse = {
    header: header(9006),
    kvs: [{ ...kv("/rp/a", 9004), mod_revision: 9005, version: 2, value: bytes("v2") }],
    more: false,
    count: 1,
  };
  assertEquals(
    JSON.stringify(toJson("RangeResponse", res)),
    '{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",' +
      '"revision":"9006","raft_term":"2"},"kvs":[{"key":"L3JwL2E=","create_revision":"9004",' +
      '"mod_revision":"9005","version":"2","value":"djI="}],"count":"1"}',
  );
  // A miss is just the header; nested txn headers carry only the revision.
  assertEquals(toJson("RangeResponse", { header: header(5), kvs: [], more: false, count: 0 }), {
    header: toJson("ResponseHeader", header(5)),
  });
  assertEquals(
    JSON.stringify(toJson("TxnResponse", {
      header: header(7),
      succeeded: false,
      responses: [{
        response_put: { header: { cluster_id: 0n, member_id: 0n, revision: 7, raft_term: 0 } },
      }],
    })),
    '{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",' +
      '"revision":"7","raft_term":"2"},"responses":[{"response_put":{"header":{"revision":"7"}}}]}',
  );
  // Status uses the proto's own camelCase names.
  const status = toJson("StatusResponse", {
    header: header(1),
    version: "3.4.0",
    dbSize: 20480,
    leader: 3319814642761637952n,
    raftIndex: 6,
    raftTerm: 2,
    raftAppliedIndex: 6,
    errors: [],
    dbSizeInUse: 16384,
    isLearner: false,
  });
  assertEquals(Object.keys(status), [
    "header",
    "version",
    "dbSize",
    "leader",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSizeInUse",
  ]);
  assertEquals(status.dbSize, "20480");
  // A set oneof member is written even when it holds the zero value.
  assertEquals(
    toJson("Compare", { result: "EQUAL", target: "VERSION", key: bytes("a"), version: 0 }),
    {
      key: "YQ==",
      version: "0",
    },
  );
});

/** A sample message with every field non-zero, for round trips. */
function sample(type: MessageName, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seenOneof = new Set<string>();
  for (const f of SCHEMA[type].fields) {
    if (f.oneof !== undefined) {
      if (seenOneof.has(f.oneof)) continue;
      seenOneof.add(f.oneof);
    }
    let v: unknown;
    if (f.message !== undefined) {
      if (depth > 1 && (f.message === "TxnRequest" || f.message === "TxnResponse")) continue;
      v = sample(f.message, depth + 1);
    } else if (f.enum !== undefined) v = f.enum.values[f.enum.values.length - 1];
    else {
      v = {
        bytes: bytes(`${f.name}\u0000\u00ff`),
        string: `${f.name}<&>`,
        bool: true,
        int32: -5,
        uint32: 7,
        int64: -(2 ** 53 - 1),
        uint64: 2 ** 53 - 1,
        int64n: -(2n ** 63n),
        uint64n: 2n ** 64n - 1n,
      }[f.scalar!];
    }
    out[f.name] = f.repeated ? [v, v] : v;
  }
  return out;
}

Deno.test("codec: every message survives toJson → JSON text → fromJson", () => {
  for (const type of Object.keys(SCHEMA) as MessageName[]) {
    const value = sample(type) as unknown as MessageTypes[typeof type];
    const text = stringifyGo(toJson(type, value));
    const back = fromJson(type, parseGoJson(text, "decoder"));
    assertEquals(back, value, `${type} round trip`);
    // lowerCamel input names decode the same.
    const camel = JSON.parse(text, function (this: unknown, _k, v) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [jsonName(k), x]));
      }
      return v;
    });
    assertEquals(fromJson(type, camel), value, `${type} from lowerCamel`);
  }
});

Deno.test("codec: fromJson fills proto zero values and ignores unknown fields", () => {
  assertEquals(fromJson("RangeRequest", { key: "YQ==", bogus: [1, 2] }), {
    key: bytes("a"),
    range_end: new Uint8Array(0),
    limit: 0,
    revision: 0,
    sort_order: "NONE",
    sort_target: "KEY",
    serializable: false,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
  });
  const txn = fromJson("TxnRequest", { compare: [{ key: "YQ==" }], success: [{ requestPut: {} }] });
  assertEquals(txn.compare[0].result, "EQUAL");
  assertEquals(txn.compare[0].target, "VERSION");
  assertEquals(txn.compare[0].version, undefined);
  assertEquals(txn.failure, []);
  assert("request_put" in txn.success[0]);
  // The camel name wins when both spellings are present (jsonpb's rule).
  assertEquals(fromJson("PutRequest", { key: "YQ==", prev_kv: false, prevKv: true }).prev_kv, true);
  // int64 as string or number; lease IDs keep all 64 bits.
  assertEquals(
    fromJson("PutRequest", { key: "YQ==", lease: "-9223372036854775808" }).lease,
    -(2n ** 63n),
  );
  assertEquals(fromJson("RangeRequest", { key: "YQ==", limit: 12, revision: " 7" }).revision, 7);
  // Numeric enum values are accepted.
  assertEquals(fromJson("RangeRequest", { key: "YQ==", sort_order: 2 }).sort_order, "DESCEND");
});

Deno.test("codec: bad input gets etcd 3.4's error text", () => {
  const cases: [MessageName, string, string][] = [
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":"FOO"}',
      'unknown value "FOO" for enum etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":"1"}',
      'unknown value "1" for enum etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":true}',
      "json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":1.5}',
      "json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.RangeRequest_SortOrder",
    ],
    ["RangeRequest", '{"key":"Y"}', "illegal base64 data at input byte 0"],
    ["RangeRequest", '{"key":"YQ"}', "illegal base64 data at input byte 0"],
    ["RangeRequest", '{"key":"YQ="}', "illegal base64 data at input byte 3"],
    ["RangeRequest", '{"key":"YQ==="}', "illegal base64 data at input byte 4"],
    ["RangeRequest", '{"key":"YQ-_"}', "illegal base64 data at input byte 2"],
    ["RangeRequest", '{"key":1}', "json: cannot unmarshal number into Go value of type []uint8"],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":"x"}',
      "invalid character 'x' looking for beginning of value",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":true}',
      "json: cannot unmarshal bool into Go value of type int64",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":1.5}',
      "json: cannot unmarshal number 1.5 into Go value of type int64",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":"1e2"}',
      "json: cannot unmarshal number 1e2 into Go value of type int64",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":99999999999999999999}',
      "json: cannot unmarshal number 99999999999999999999 into Go value of type int64",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","keys_only":"true"}',
      "json: cannot unmarshal string into Go value of type bool",
    ],
    [
      "RangeRequest",
      '{"key":"YQ==", "serializable": 1}',
      "json: cannot unmarshal number into Go value of type bool",
    ],
    ["RangeRequest", "{", "unexpected EOF"],
    [
      "RangeRequest",
      '{"key":"YQ==",}',
      "invalid character '}' looking for beginning of object key string",
    ],
    [
      "RangeRequest",
      "[]",
      "json: cannot unmarshal array into Go value of type map[string]json.RawMessage",
    ],
    [
      "RangeRequest",
      '"x"',
      "json: cannot unmarshal string into Go value of type map[string]json.RawMessage",
    ],
    [
      "RangeRequest",
      "5",
      "json: cannot unmarshal number into Go value of type map[string]json.RawMessage",
    ],
    [
      "PutRequest",
      '{"key":"YQ==", "lease": "abc"}',
      "invalid character 'a' looking for beginning of value",
    ],
    [
      "PutRequest",
      '{"key":"YQ==", "lease": 18446744073709551615}',
      "json: cannot unmarshal number 18446744073709551615 into Go value of type int64",
    ],
    [
      "TxnRequest",
      '{"success":{}}',
      "json: cannot unmarshal object into Go value of type []json.RawMessage",
    ],
    [
      "TxnRequest",
      '{"compare":[{"target":"NOPE"}]}',
      'unknown value "NOPE" for enum etcdserverpb.Compare_CompareTarget',
    ],
    // jsonpb reads enum names and quoted int64s from the raw (escaped) text.
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":"\\u0041SCEND"}',
      'unknown value "\\\\u0041SCEND" for enum etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","sort_order":"A\\"B"}',
      'unknown value "A\\\\\\"B" for enum etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      "RangeRequest",
      '{"key":"YQ==","limit":"\\u0031"}',
      "invalid character '\\\\' looking for beginning of value",
    ],
    ["RangeRequest", "\ufeff{}", "invalid character 'ï' looking for beginning of value"],
    [
      "RangeRequest",
      "[".repeat(10001) + "]".repeat(10001),
      "invalid character '[' exceeded max depth",
    ],
    [
      "RangeRequest",
      "[".repeat(10000) + "]".repeat(10000),
      "json: cannot unmarshal array into Go value of type map[string]json.RawMessage",
    ],
    // Accepted: trailing text after the first value, blank body, null.
    ["RangeRequest", '{"key":"YQ=="} xx', "ok"],
    ["RangeRequest", "", "ok"],
    ["RangeRequest", "null", "ok"],
    ["RangeRequest", '{"key":"YQ==\\n"}', "ok"],
    ["RangeRequest", '{"key":"YQ==","limit":-1,"sort_order":7}', "ok"],
  ];
  for (const [type, body, want] of cases) assertEquals(decodeError(type, body), want, body);
  // Fields are checked in declaration order, not in JSON order.
  assertEquals(
    decodeError("RangeRequest", '{"sort_order":"FOO","limit":"x"}'),
    "invalid character 'x' looking for beginning of value",
  );
});

Deno.test("json: Go's syntax errors in decoder and unmarshal modes", () => {
  const err = (text: string, mode: "decoder" | "unmarshal") => {
    try {
      parseGoJson(text, mode);
      return "ok";
    } catch (e) {
      return (e as Error).message;
    }
  };
  assertEquals(
    err("{]", "decoder"),
    "invalid character ']' looking for beginning of object key string",
  );
  assertEquals(err('{"a" 1}', "decoder"), "invalid character '1' after object key");
  assertEquals(
    err('{"a":1 "b":2}', "decoder"),
    "invalid character '\"' after object key:value pair",
  );
  assertEquals(err("[1 2]", "decoder"), "invalid character '2' after array element");
  assertEquals(err("[01]", "decoder"), "invalid character '1' after array element");
  assertEquals(
    err('{"a":tru}', "decoder"),
    "invalid character '}' in literal true (expecting 'e')",
  );
  assertEquals(err('["\\x"]', "decoder"), "invalid character 'x' in string escape code");
  assertEquals(err('["a\tb"]', "decoder"), "invalid character '\\t' in string literal");
  assertEquals(
    err("[1.]", "decoder"),
    "invalid character ']' after decimal point in numeric literal",
  );
  assertEquals(err("[-]", "decoder"), "invalid character ']' in numeric literal");
  assertEquals(
    err("{'a':1}", "decoder"),
    "invalid character '\\'' looking for beginning of object key string",
  );
  assertEquals(err("[1,", "decoder"), "unexpected EOF");
  assertEquals(err("   ", "decoder"), "ok");
  assertEquals(err("1 2", "decoder"), "ok");
  assertEquals(err("1 2", "unmarshal"), "invalid character '2' after top-level value");
  assertEquals(err("", "unmarshal"), "unexpected end of JSON input");
  assertEquals(err("é", "decoder"), "invalid character 'Ã' looking for beginning of value");
});

Deno.test("base64: Go's decoding and error offsets", () => {
  for (const n of [0, 1, 2, 3, 4, 5, 100, 70000]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
    assertEquals(decodeGoBase64(encodeBase64(data)), data);
  }
  assertEquals(encodeBase64(bytes("abc")), "YWJj");
  assertEquals(encodeBase64(bytes("ab")), "YWI=");
  assertEquals(encodeBase64(Uint8Array.of(0xfb, 0xff)), "+/8=");
  assertEquals(decodeGoBase64("YW\nJj\r\n"), bytes("abc"));
  assertEquals(decodeGoBase64("YQ=\n="), bytes("a"));
  assertEquals(decodeGoBase64("YQ"), 0);
  assertEquals(decodeGoBase64("YWJjZA"), 4);
  assertEquals(decodeGoBase64("YWJj*"), 4);
  assertEquals(decodeGoBase64("=YQ="), 0);
  assertEquals(decodeGoBase64("YQ=x"), 2);
  assertEquals(decodeGoBase64("YWI=YQ=="), 4);
  assertEquals(decodeGoBase64("éé"), 0);
});

Deno.test("sizes: protobuf sizes and proposal sizes match etcd's limits", () => {
  // etcd: a put of key "a" with a 2097146-byte value is a 2097153-byte message.
  const big = { key: bytes("a"), value: new Uint8Array(2097146) };
  assertEquals(protoSize("PutRequest", big), 2097153);
  // etcd (member 3319814642761637952): value 1572839 passes, 1572840 is too large.
  const member = 3319814642761637952n;
  const put = (n: number) => ({
    type: "put" as const,
    put: { key: bytes("a"), value: new Uint8Array(n) },
  });
  assertEquals(proposalSize(put(1572839), member), 1572864);
  assertEquals(proposalSize(put(1572840), member), 1572865);
  // A member whose low 16 bits are < 0x8000 has a 9-byte request ID.
  assertEquals(proposalSize(put(1572840), 0x1234n), 1572864);
  // Zero-valued oneof members still count.
  const txn: TxnRequest = {
    compare: [{ result: "EQUAL", target: "VERSION", key: bytes("k"), version: 0 }],
    success: [{ request_range: { key: bytes("k") } }],
    failure: [],
  };
  // compare: tag+len+(key 3 + version 2) = 7; success: tag+len+(tag+len+key 3) = 7.
  assertEquals(protoSize("TxnRequest", txn), 14);
});

/** A KVService whose methods a test can replace. */
function fakeService(overrides: Partial<KVService> = {}): KVService & { ranges: RangeRequest[] } {
  const ranges: RangeRequest[] = [];
  const unexpected = () => Promise.reject(new Error("unexpected call"));
  return {
    ranges,
    range: (req) => {
      ranges.push(req);
      return Promise.resolve({ header: header(3), kvs: [kv("a", 2)], more: false, count: 1 });
    },
    put: () => Promise.resolve({ header: header(4) }),
    deleteRange: unexpected,
    txn: () => Promise.resolve({ header: header(3), succeeded: true, responses: [] }),
    compact: unexpected,
    status: unexpected,
    ...overrides,
  };
}

async function call(
  app: { fetch: (r: Request) => Response | Promise<Response> },
  method: string,
  path: string,
  body?: string,
) {
  const res = await app.fetch(new Request(`http://cairn${path}`, { method, body }));
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

Deno.test("gateway: routes, etcd's 404/405 texts, errors and CORS", async () => {
  const svc = fakeService({
    put: () => Promise.reject(Errors.LeaseNotFound()),
    deleteRange: () => Promise.reject(new Error("disk on fire")),
  });
  const app = createGateway(svc, { cairnVersion: "9.9.9" });
  const r = await call(app, "POST", "/v3/kv/range", '{"key":"YQ==","limit":"2"}');
  assertEquals(r.status, 200);
  assertEquals(r.type, "application/json");
  assertEquals(JSON.parse(r.body).kvs[0].key, "YQ==");
  assertEquals(svc.ranges[0].limit, 2);
  assertEquals((await call(app, "POST", "/v3beta/kv/range", '{"key":"YQ=="}')).status, 200);

  assertEquals(await call(app, "POST", "/v3/kv/put", '{"key":"YQ==","lease":"5"}'), {
    status: 404,
    type: "application/json",
    body: '{"error":"etcdserver: requested lease not found",' +
      '"message":"etcdserver: requested lease not found","code":5}',
  });
  assertEquals(await call(app, "POST", "/v3/kv/deleterange", '{"key":"YQ=="}'), {
    status: 500,
    type: "application/json",
    body: '{"error":"disk on fire","message":"disk on fire","code":2}',
  });
  assertEquals(
    (await call(app, "POST", "/v3/kv/put", "{")).body,
    '{"error":"unexpected EOF","message":"unexpected EOF","code":3}',
  );
  // Go's HTML escaping in error texts.
  assertEquals(
    (await call(app, "POST", "/v3/kv/range", '{"key":"YQ==","sort_target":"<&>"}')).body,
    '{"error":"unknown value \\"\\u003c\\u0026\\u003e\\" for enum etcdserverpb.RangeRequest_SortTarget",' +
      '"message":"unknown value \\"\\u003c\\u0026\\u003e\\" for enum etcdserverpb.RangeRequest_SortTarget","code":3}',
  );

  const text = "text/plain; charset=utf-8";
  assertEquals(await call(app, "GET", "/v3/kv/range"), {
    status: 405,
    type: text,
    body: "Method Not Allowed\n",
  });
  assertEquals(await call(app, "PUT", "/v3beta/kv/txn", "{}"), {
    status: 405,
    type: text,
    body: "Method Not Allowed\n",
  });
  assertEquals(await call(app, "POST", "/v3/kv/nope", "{}"), {
    status: 404,
    type: text,
    body: "Not Found\n",
  });
  assertEquals(await call(app, "POST", "/v3/kv/range/", "{}"), {
    status: 404,
    type: text,
    body: "Not Found\n",
  });
  assertEquals(await call(app, "POST", "/v3alpha/kv/range", "{}"), {
    status: 404,
    type: text,
    body: "404 page not found\n",
  });
  assertEquals(await call(app, "POST", "/health", "{}"), {
    status: 405,
    type: text,
    body: "Method Not Allowed\n",
  });

  const res = await app.fetch(new Request("http://cairn/v3/kv/nope", { method: "OPTIONS" }));
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("access-control-allow-origin"), "*");
  await res.body?.cancel();
});

/**
 * The real service layer over an empty store, behind the gateway; its
 * proposer refuses every proposal, so a request that gets an answer was
 * answered before being proposed.
 */
async function withRefusingService(
  limits: { maxRequestBytes: number; maxTxnOps?: number },
  fn: (app: ReturnType<typeof createGateway>) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-gateway-" });
  const backend = openBackend(dir);
  const service = new EtcdServer(backend, {
    term: 2,
    appliedIndex: 0,
    propose: () => Promise.reject(new Error("proposer must not be called")),
    compacted: () => Promise.resolve(),
    linearize: () => undefined,
    linearizeRead: () => undefined,
    linearizeAuth: () => undefined,
    authChangeIndex: 0,
    cluster: () => Promise.reject(new Error("the cluster must not be asked")),
    renewLease: () => Promise.reject(new Error("leases must not be asked")),
    leaseTimeToLive: () => Promise.reject(new Error("leases must not be asked")),
    leaseIds: () => Promise.reject(new Error("leases must not be asked")),
    assignToken: () => Promise.reject(new Error("tokens must not be asked")),
    tokenInfo: () => Promise.reject(new Error("tokens must not be asked")),
  }, { clusterId: 1n, memberId: 2n, ...limits });
  try {
    await fn(
      createGateway(service, { cairnVersion: "0", maxRequestBytes: limits.maxRequestBytes }),
    );
  } finally {
    await backend.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("gateway: API checks and limits run before proposing, in etcd's order", async () => {
  await withRefusingService({ maxRequestBytes: 1000, maxTxnOps: 2 }, async (app) => {
    const msg = async (path: string, body: unknown) =>
      JSON.parse((await call(app, "POST", path, JSON.stringify(body))).body).message;
    const value = (n: number) => encodeBase64(new Uint8Array(n));
    assertEquals(await msg("/v3/kv/put", { value: value(10) }), "etcdserver: key is not provided");
    assertEquals(
      await msg("/v3/kv/put", { key: "YQ==", value: value(990) }),
      "etcdserver: request is too large",
    );
    // Over max + 512 KiB: gRPC's limit, with the message's protobuf size.
    assertEquals(
      await msg("/v3/kv/put", { key: "YQ==", value: value(525300) }),
      `grpc: received message larger than max (${3 + 1 + 3 + 525300} vs. ${1000 + 524288})`,
    );
    // Missing key is found before the proposal size (etcd's order).
    assertEquals(await msg("/v3/kv/put", { value: value(990) }), "etcdserver: key is not provided");
    const get = { request_range: { key: "YQ==" } };
    assertEquals(
      await msg("/v3/kv/txn", { success: [get, get, get] }),
      "etcdserver: too many operations in txn request",
    );
    const put = { request_put: { key: "YQ==" } };
    assertEquals(
      await msg("/v3/kv/txn", { success: [put, put] }),
      "etcdserver: duplicate key given in txn request",
    );
    assertEquals(
      await msg("/v3/kv/put", { key: "YQ==", value: "v", ignore_value: true }),
      "illegal base64 data at input byte 0",
    );
    assertEquals(
      await msg("/v3/kv/put", { key: "YQ==", value: "dg==", ignore_value: true }),
      "etcdserver: value is provided",
    );
    // A read-only txn is not a proposal: no request-too-large for it.
    const bigGet = { request_range: { key: "YQ==", range_end: value(990) } };
    const ro = await call(app, "POST", "/v3/kv/txn", JSON.stringify({ success: [bigGet] }));
    assertEquals([ro.status, JSON.parse(ro.body).succeeded], [200, true]);
    const bigPut = { request_put: { key: "YQ==", value: value(990) } };
    assertEquals(
      await msg("/v3/kv/txn", { success: [bigPut] }),
      "etcdserver: request is too large",
    );
    // A txn holding a nested txn is proposed (etcd's isTxnReadonly), even a read-only one.
    assertEquals(
      await msg("/v3/kv/txn", { success: [{ request_txn: { success: [bigGet] } }] }),
      "etcdserver: request is too large",
    );
  });
});

Deno.test("gateway: oversized bodies are refused while reading; deep nesting is too many ops", async () => {
  await withRefusingService({ maxRequestBytes: 1000 }, async (app) => {
    const grpcMax = 1000 + 524288;
    const huge = " ".repeat(4 * grpcMax + 1) + "{}";
    // Declared length over the cap: refused before reading, with that length.
    const declared = await call(app, "POST", "/v3/kv/range", huge);
    assertEquals(declared.status, 429);
    assertEquals(
      JSON.parse(declared.body).message,
      `grpc: received message larger than max (${huge.length} vs. ${grpcMax})`,
    );
    // Chunked (no length): refused once the running total passes the cap.
    const chunk = enc.encode(" ".repeat(65536));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 5 * grpcMax) return c.close();
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    const res = await app.fetch(
      new Request(
        "http://cairn/v3/kv/range",
        { method: "POST", body, duplex: "half" } as RequestInit,
      ),
    );
    assertEquals(res.status, 429);
    assert((await res.text()).includes("grpc: received message larger than max"));
    // Nesting too deep for the JS stack is etcd's too-many-operations error.
    let op: unknown = { request_put: { key: "YQ==" } };
    for (let i = 0; i < 1500; i++) op = { request_txn: { success: [op] } };
    const deep = await call(app, "POST", "/v3/kv/txn", JSON.stringify({ success: [op] }));
    assertEquals([deep.status, JSON.parse(deep.body).message], [
      400,
      "etcdserver: too many operations in txn request",
    ]);
  });
});

Deno.test("gateway: /health reads through the service; /version names the API", async () => {
  const ok = createGateway(fakeService(), { cairnVersion: "1.2.3" });
  assertEquals(await call(ok, "GET", "/health"), {
    status: 200,
    type: "text/plain; charset=utf-8",
    body: '{"health":"true"}',
  });
  const svc = fakeService({ range: () => Promise.reject(Errors.NoLeader()) });
  const bad = createGateway(svc, { cairnVersion: "1.2.3" });
  assertEquals((await call(bad, "GET", "/health")).body, '{"health":"false"}');
  assertEquals((await call(bad, "GET", "/health")).status, 503);
  // A read that never answers times out into "false".
  let release = () => {};
  const hung = fakeService({
    range: () => new Promise<RangeResponse>((_, reject) => release = () => reject(new Error("x"))),
  });
  const slow = createGateway(hung, { cairnVersion: "1.2.3", healthTimeoutMs: 10 });
  assertEquals((await call(slow, "GET", "/health")).status, 503);
  release();
  assertEquals((await call(ok, "HEAD", "/health")).status, 405);
  assertEquals(await call(ok, "GET", "/version"), {
    status: 200,
    type: "application/json",
    body: '{"etcdserver":"3.4.0","etcdcluster":"3.4.0","cairn":"1.2.3"}',
  });
});

Deno.test("codec: the direct KeyValue/header writers equal toJson + JSON.stringify", () => {
  for (let i = 0; i < 64; i++) {
    const kv: KeyValue = {
      key: i & 1 ? bytes(`k${i}`) : new Uint8Array(0),
      create_revision: i & 2 ? i * 1000 + 7 : 0,
      mod_revision: i & 4 ? 2 ** 53 - i : 0,
      version: i & 8 ? i : 0,
      value: i & 16
        ? Uint8Array.from({ length: i * 3 }, (_, j) => (j * 37 + i) & 0xff)
        : new Uint8Array(0),
      lease: i & 32 ? (i % 3 === 0 ? -(2n ** 63n) : 2n ** 62n + BigInt(i)) : 0n,
    };
    assertEquals(keyValueJson(kv), JSON.stringify(toJson("KeyValue", kv)), `kv ${i}`);
    const h: ResponseHeader = {
      cluster_id: i & 1 ? 2n ** 64n - 1n : 0n,
      member_id: i & 2 ? BigInt(i) : 0n,
      revision: i & 4 ? i * 99 : 0,
      raft_term: i & 8 ? i : 0,
    };
    assertEquals(responseHeaderJson(h), JSON.stringify(toJson("ResponseHeader", h)), `header ${i}`);
  }
});

Deno.test("gateway: large ranges stream the same bytes as one JSON.stringify", async () => {
  for (const n of [0, 1, 2, 600, 5000]) {
    const res: RangeResponse = {
      header: header(n + 1),
      kvs: Array.from({ length: n }, (_, i) => kv(`key/${i}`, i + 2, "x".repeat(i % 50))),
      more: n % 2 === 0,
      count: n === 2 ? 0 : n * 2,
    };
    const want = JSON.stringify(toJson("RangeResponse", res));
    const body = rangeResponseBody(res);
    const got = typeof body === "string" ? body : await new Response(body).text();
    assertEquals(got, want, `n=${n}`);
    if (n > 1000) assert(typeof body !== "string", "a large range is streamed");
  }
  const big = Array.from({ length: 3000 }, (_, i) => kv(`k${i}`, i + 2));
  const app = createGateway(
    fakeService({
      range: () => Promise.resolve({ header: header(9), kvs: big, more: false, count: 3000 }),
    }),
    { cairnVersion: "0" },
  );
  const r = await call(app, "POST", "/v3/kv/range", '{"key":"AA==","range_end":"AA=="}');
  assertEquals(JSON.parse(r.body).kvs.length, 3000);
  throws(() => toJson("KeyValue", { ...kv("a", 1), key: "a" as unknown as Uint8Array }), TypeError);
});
