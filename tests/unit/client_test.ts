import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { Client, ConnectionError, EtcdError, retryDelay } from "../../client/mod.ts";
import { isConnectFailure } from "../../client/http.ts";
import {
  CLIENT_MAX_ATTEMPTS,
  CLIENT_RETRY_MAX_MS,
  CLIENT_RETRY_MIN_MS,
} from "../../core/limits.ts";

const enc = new TextEncoder();

interface Call {
  url: string;
  method: string;
  body: unknown;
}

type Reply = Response | Error | "hang";

/** A fetch that records calls and answers from a per-URL-prefix script. */
function fakeFetch(script: (url: string, n: number) => Reply) {
  const calls: Call[] = [];
  const f = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    calls.push({
      url,
      method: init?.method ?? "GET",
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const r = script(url, calls.length);
    if (r === "hang") {
      return new Promise((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal!.reason));
      });
    }
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
  return { fetch: f as typeof fetch, calls };
}

const HEADER = { cluster_id: "1", member_id: "2", revision: "7", raft_term: "3" };
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const refused = () =>
  new TypeError(
    "error sending request for url (http://a/): client error (Connect): tcp connect error: Connection refused (os error 111)",
  );
const reset = () => new TypeError("error sending request: connection reset by peer");
const unavailable = (message: string) => json({ error: message, message, code: 14 }, 503);

Deno.test("put encodes the request as gateway JSON and decodes the response with defaults", async () => {
  const { fetch, calls } = fakeFetch(() =>
    json({
      header: HEADER,
      prev_kv: {
        key: "aw==",
        create_revision: "5",
        mod_revision: "6",
        version: "2",
        value: "dg==",
      },
    })
  );
  const client = new Client({ endpoints: ["a:2379"], fetch });
  const res = await client.put("k", "v2", { prev_kv: true, lease: 255n });
  assertEquals(calls, [{
    url: "http://a:2379/v3/kv/put",
    method: "POST",
    body: { key: "aw==", value: "djI=", lease: "255", prev_kv: true },
  }]);
  assertEquals(res.header, { cluster_id: 1n, member_id: 2n, revision: 7, raft_term: 3 });
  assertEquals(res.prev_kv, {
    key: enc.encode("k"),
    create_revision: 5,
    mod_revision: 6,
    version: 2,
    value: enc.encode("v"),
    lease: 0n,
  });
});

Deno.test("get with prefix sends range_end; an empty answer has zero values", async () => {
  const { fetch, calls } = fakeFetch(() => json({ header: HEADER }));
  const client = new Client({ endpoints: ["http://a"], fetch });
  const res = await client.get("ab", { prefix: true, limit: 3 });
  assertEquals(calls[0].body, { key: "YWI=", range_end: "YWM=", limit: "3" });
  assertEquals([res.kvs, res.count, res.more], [[], 0, false]);
  await client.delete(enc.encode("x"), { fromKey: true, prev_kv: true });
  assertEquals(calls[1], {
    url: "http://a/v3/kv/deleterange",
    method: "POST",
    body: { key: "eA==", range_end: "AA==", prev_kv: true },
  });
});

Deno.test("gateway errors reject as EtcdError with etcd's message, code and status", async () => {
  const msg = "etcdserver: mvcc: required revision has been compacted";
  const { fetch } = fakeFetch(() => json({ error: msg, message: msg, code: 11 }, 400));
  const client = new Client({ endpoints: ["http://a"], fetch });
  const err = await client.range({ key: enc.encode("k"), revision: 1 }).catch((e) => e);
  assertEquals(err instanceof EtcdError, true);
  assertEquals([err.message, err.code, err.httpStatus], [msg, 11, 400]);
});

Deno.test("a refused connection fails over, and the client then prefers the endpoint that worked", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.startsWith("http://a") ? refused() : json({ header: HEADER })
  );
  const client = new Client({ endpoints: ["http://a", "http://b"], fetch });
  await client.put("k", "v");
  await client.put("k", "v");
  assertEquals(calls.map((c) => c.url), [
    "http://a/v3/kv/put",
    "http://b/v3/kv/put",
    "http://b/v3/kv/put",
  ]);
});

Deno.test("a write is not retried after an ambiguous failure; a read is", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.startsWith("http://a") ? reset() : json({ header: HEADER })
  );
  const client = new Client({ endpoints: ["http://a", "http://b"], fetch });
  const err = await client.put("k", "v").catch((e) => e);
  assertEquals(err instanceof ConnectionError && !err.notExecuted, true);
  assertEquals(calls.length, 1);
  // The next call starts past the endpoint that failed.
  await client.put("k", "v");
  assertEquals(calls.map((c) => c.url).slice(1), ["http://b/v3/kv/put"]);
  // A read (linearizable or serializable) and a read-only txn move on after the same failure.
  const reader = () => new Client({ endpoints: ["http://a", "http://b"], fetch });
  await reader().get("k");
  await reader().get("k", { serializable: true });
  await reader().txn({
    compare: [],
    success: [{ request_range: { key: enc.encode("k") } }],
    failure: [],
  });
  assertEquals(calls.map((c) => c.url).slice(2), [
    "http://a/v3/kv/range",
    "http://b/v3/kv/range",
    "http://a/v3/kv/range",
    "http://b/v3/kv/range",
    "http://a/v3/kv/txn",
    "http://b/v3/kv/txn",
  ]);
});

Deno.test("503 no leader and leader changed move a write on; request timed out and server stopped do not", async () => {
  for (const message of ["etcdserver: no leader", "etcdserver: leader changed"]) {
    const { fetch, calls } = fakeFetch((url) =>
      url.startsWith("http://a") ? unavailable(message) : json({ header: HEADER })
    );
    const client = new Client({ endpoints: ["http://a", "http://b"], fetch });
    await client.deleteRange({ key: enc.encode("k") });
    await new Client({ endpoints: ["http://a", "http://b"], fetch }).txn({
      compare: [],
      success: [{ request_put: { key: enc.encode("k"), value: enc.encode("v") } }],
      failure: [],
    });
    assertEquals(calls.map((c) => c.url), [
      "http://a/v3/kv/deleterange",
      "http://b/v3/kv/deleterange",
      "http://a/v3/kv/txn",
      "http://b/v3/kv/txn",
    ], message);
  }

  for (
    const message of [
      "etcdserver: request timed out",
      "etcdserver: request timed out, possibly due to previous leader failure",
      "etcdserver: server stopped",
    ]
  ) {
    const { fetch, calls } = fakeFetch((url) =>
      url.startsWith("http://a") ? unavailable(message) : json({ header: HEADER })
    );
    const client = () => new Client({ endpoints: ["http://a", "http://b"], fetch });
    const err = await client().put("k", "v").catch((e) => e);
    assertEquals([err.message, err.code, err.httpStatus], [message, 14, 503]);
    assertEquals(calls.length, 1);
    await client().status();
    assertEquals(calls.map((c) => c.url).slice(1), [
      "http://a/v3/maintenance/status",
      "http://b/v3/maintenance/status",
    ]);
  }
});

Deno.test("retries are bounded: CLIENT_MAX_ATTEMPTS attempts over the endpoints in turn", async () => {
  const { fetch, calls } = fakeFetch(() => refused());
  const client = new Client({ endpoints: ["http://a", "http://b", "http://c"], fetch });
  const err = await client.put("k", "v").catch((e) => e);
  assertEquals(err instanceof ConnectionError && err.notExecuted, true);
  assertEquals(
    calls.map((c) => c.url),
    Array.from(
      { length: CLIENT_MAX_ATTEMPTS },
      (_, i) => `http://${"abc"[i % 3]}/v3/kv/put`,
    ),
  );
  // A failure that allows no retry ends the call at once.
  const bad = fakeFetch(() =>
    json({
      error: "etcdserver: key is not provided",
      message: "etcdserver: key is not provided",
      code: 3,
    }, 400)
  );
  await assertRejects(
    new Client({ endpoints: ["http://a", "http://b"], fetch: bad.fetch }).get(""),
    { message: "etcdserver: key is not provided", code: 3 },
  );
  assertEquals(bad.calls.length, 1);
});

Deno.test("retryDelay: no wait while untried endpoints remain, then growing up to the maximum", () => {
  assertEquals([0, 1, 2].map((a) => retryDelay(a, 3)), [0, 0, 0]);
  assertEquals(retryDelay(3, 3), CLIENT_RETRY_MIN_MS);
  assertEquals(retryDelay(4, 3), 2 * CLIENT_RETRY_MIN_MS);
  assertEquals(retryDelay(1, 1), CLIENT_RETRY_MIN_MS);
  assertEquals(retryDelay(1_000, 1), CLIENT_RETRY_MAX_MS);
  for (let a = 1; a < 40; a++) assert(retryDelay(a, 2) >= retryDelay(a - 1, 2));
});

Deno.test("member calls: gateway paths and JSON, IDs as bigints, absent fields as zero values", async () => {
  const members = [
    { ID: "10906813271585048163", name: "m3", peerURLs: ["http://p3"], clientURLs: ["http://c3"] },
    { ID: "16", peerURLs: ["http://p4"], isLearner: true },
  ];
  const { fetch, calls } = fakeFetch((url) =>
    url.endsWith("/member/add")
      ? json({ header: HEADER, member: members[1], members })
      : url.endsWith("/transfer-leadership")
      ? json({})
      : json({ header: HEADER, members })
  );
  const client = new Client({ endpoints: ["http://a"], fetch });
  const list = await client.memberList();
  assertEquals(list.members, [
    {
      ID: 10906813271585048163n,
      name: "m3",
      peerURLs: ["http://p3"],
      clientURLs: ["http://c3"],
      isLearner: false,
    },
    { ID: 16n, name: "", peerURLs: ["http://p4"], clientURLs: [], isLearner: true },
  ]);
  assertEquals(
    (await client.memberAdd({ peerURLs: ["http://p4"], isLearner: true })).member?.ID,
    16n,
  );
  await client.memberRemove({ ID: 16n });
  await client.memberUpdate({ ID: 16n, peerURLs: ["http://p5"] });
  await client.memberPromote({ ID: 10906813271585048163n });
  assertEquals(await client.moveLeader({ targetID: 16n }), {});
  assertEquals(calls.map((c) => [c.url, c.body]), [
    ["http://a/v3/cluster/member/list", {}],
    ["http://a/v3/cluster/member/add", { peerURLs: ["http://p4"], isLearner: true }],
    ["http://a/v3/cluster/member/remove", { ID: "16" }],
    ["http://a/v3/cluster/member/update", { ID: "16", peerURLs: ["http://p5"] }],
    ["http://a/v3/cluster/member/promote", { ID: "10906813271585048163" }],
    ["http://a/v3/maintenance/transfer-leadership", { targetID: "16" }],
  ]);
});

Deno.test("member list and update are retried after an ambiguous failure; add, remove, promote are not", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.startsWith("http://a") ? reset() : json({ header: HEADER, members: [] })
  );
  const client = () => new Client({ endpoints: ["http://a", "http://b"], fetch });
  await client().memberList();
  await client().memberUpdate({ ID: 1n, peerURLs: ["http://p"] });
  await assertRejects(client().memberAdd({ peerURLs: ["http://p"] }), ConnectionError);
  await assertRejects(client().memberRemove({ ID: 1n }), ConnectionError);
  await assertRejects(client().memberPromote({ ID: 1n }), ConnectionError);
  await assertRejects(client().moveLeader({ targetID: 1n }), ConnectionError);
  assertEquals(calls.map((c) => c.url.replace(/\/v3\/.*\//, "/")), [
    "http://a/list",
    "http://b/list",
    "http://a/update",
    "http://b/update",
    "http://a/add",
    "http://a/remove",
    "http://a/promote",
    "http://a/transfer-leadership",
  ]);
});

Deno.test("a call that outlives its timeout rejects with context deadline exceeded", async () => {
  const { fetch } = fakeFetch(() => "hang");
  const client = new Client({ endpoints: ["http://a"], fetch, timeout: 50 });
  await assertRejects(client.get("k"), { message: "context deadline exceeded", code: 4 });
});

Deno.test("health and version use GET; a 503 health answer resolves unhealthy", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.endsWith("/health")
      ? json({ health: "false", reason: "ALARM NOSPACE" }, 503)
      : json({ etcdserver: "3.4.0", etcdcluster: "3.4.0", cairn: "0.1.0" })
  );
  const client = new Client({ endpoints: ["http://a"], fetch });
  assertEquals(await client.health(), { health: false, reason: "ALARM NOSPACE" });
  assertEquals(await client.version(), {
    etcdserver: "3.4.0",
    etcdcluster: "3.4.0",
    cairn: "0.1.0",
  });
  assertEquals(calls.map((c) => [c.method, c.url]), [
    ["GET", "http://a/health"],
    ["GET", "http://a/version"],
  ]);
});

/** A loopback port nothing listens on (bound, then released), so connections are refused. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("with real sockets, a refused endpoint fails over to a live one", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const body = await req.json();
      return json({
        header: HEADER,
        kvs: [{ key: body.key, value: "dg==", version: "1" }],
        count: "1",
      });
    },
  );
  try {
    const client = new Client({
      endpoints: [`http://127.0.0.1:${closedPort()}`, `http://127.0.0.1:${server.addr.port}`],
      timeout: 2000,
    });
    const res = await client.put("k", "v"); // a write: retried only because refusal is certain
    assertEquals(res.header.revision, 7);
    const got = await client.get("k");
    assertEquals([got.count, got.kvs[0].value], [1, enc.encode("v")]);
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("lease calls: gateway paths and bodies, keepalive's stream answer, TTL 0 when gone", async () => {
  const { fetch, calls } = fakeFetch((url) => {
    if (url.endsWith("/lease/grant")) return json({ header: HEADER, ID: "255", TTL: "30" });
    if (url.endsWith("/lease/keepalive")) {
      const n = calls.length;
      const body = n === 2
        ? { result: { header: HEADER, ID: "255", TTL: "30" } }
        : { result: { header: HEADER, ID: "1" } };
      return new Response(JSON.stringify(body) + "\n");
    }
    if (url.endsWith("/lease/timetolive")) {
      return json({ header: HEADER, ID: "255", TTL: "29", grantedTTL: "30", keys: ["aw=="] });
    }
    if (url.endsWith("/lease/leases")) return json({ header: HEADER, leases: [{ ID: "255" }] });
    return json({ header: HEADER });
  });
  const client = new Client({ endpoints: ["http://a"], fetch });
  const g = await client.leaseGrant({ TTL: 30 });
  assertEquals([g.ID, g.TTL], [255n, 30]);
  const ka = await client.leaseKeepAlive({ ID: 255n });
  assertEquals([ka.ID, ka.TTL, ka.header.revision], [255n, 30, 7]);
  const gone = await client.leaseKeepAlive({ ID: 1n });
  assertEquals([gone.ID, gone.TTL], [1n, 0]);
  const ttl = await client.leaseTimeToLive({ ID: 255n, keys: true });
  assertEquals([ttl.TTL, ttl.grantedTTL, ttl.keys], [29, 30, [enc.encode("k")]]);
  assertEquals((await client.leaseLeases()).leases, [{ ID: 255n }]);
  await client.leaseRevoke({ ID: 255n });
  assertEquals(calls.map((c) => [c.url, c.body]), [
    ["http://a/v3/lease/grant", { TTL: "30" }],
    ["http://a/v3/lease/keepalive", { ID: "255" }],
    ["http://a/v3/lease/keepalive", { ID: "1" }],
    ["http://a/v3/lease/timetolive", { ID: "255", keys: true }],
    ["http://a/v3/lease/leases", {}],
    ["http://a/v3/lease/revoke", { ID: "255" }],
  ]);
});

Deno.test("a keepalive stream's error frame rejects with its message and code", async () => {
  const { fetch } = fakeFetch(() =>
    new Response(
      JSON.stringify({
        error: { grpc_code: 7, http_code: 403, message: "etcdserver: permission denied" },
      }) + "\n",
    )
  );
  const err = await new Client({ endpoints: ["http://a"], fetch })
    .leaseKeepAlive({ ID: 5n }).catch((e) => e);
  assertEquals([err instanceof EtcdError, err.message, err.code, err.httpStatus], [
    true,
    "etcdserver: permission denied",
    7,
    403,
  ]);
});

Deno.test("lease grant and revoke are not retried after an ambiguous failure; keepalive and timetolive are", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.startsWith("http://a")
      ? reset()
      : url.endsWith("/keepalive")
      ? new Response(JSON.stringify({ result: { header: HEADER, ID: "9", TTL: "5" } }))
      : json({ header: HEADER, ID: "9", TTL: "5" })
  );
  const client = () => new Client({ endpoints: ["http://a", "http://b"], fetch });
  await assertRejects(client().leaseGrant({ TTL: 5 }), ConnectionError);
  await assertRejects(client().leaseRevoke({ ID: 9n }), ConnectionError);
  assertEquals(calls.length, 2);
  assertEquals((await client().leaseKeepAlive({ ID: 9n })).TTL, 5);
  await client().leaseTimeToLive({ ID: 9n });
  assertEquals(calls.map((c) => c.url).slice(2), [
    "http://a/v3/lease/keepalive",
    "http://b/v3/lease/keepalive",
    "http://a/v3/lease/timetolive",
    "http://b/v3/lease/timetolive",
  ]);
});

Deno.test("maintenance calls: alarm, defragment, hash and hashkv paths, bodies and answers", async () => {
  const alarms = [
    { memberID: "10276657743932975437", alarm: "NOSPACE" },
    { memberID: "1", alarm: "CORRUPT" },
  ];
  const { fetch, calls } = fakeFetch((url, n) => {
    if (url.endsWith("/alarm")) {
      const body = calls[n - 1].body as { action?: string; memberID?: string; alarm?: string };
      // GET is the enum's zero value: left out of the body.
      if (body.action === undefined) return json({ alarms });
      return json({ alarms: alarms.filter((a) => a.memberID === body.memberID) });
    }
    if (url.endsWith("/defragment")) return json({});
    if (url.endsWith("/hashkv")) {
      return json({ header: HEADER, hash: 4294967295, compact_revision: "-1" });
    }
    return json({ header: HEADER, hash: 17 });
  });
  const client = new Client({ endpoints: ["http://a"], fetch });
  const want = [
    { memberID: 10276657743932975437n, alarm: "NOSPACE" },
    { memberID: 1n, alarm: "CORRUPT" },
  ];
  assertEquals(await client.alarmList(), { alarms: want });
  // Disarm with no member and no kind: the list, then one DEACTIVATE per alarm.
  assertEquals(await client.alarmDisarm(), { alarms: want });
  assertEquals(await client.alarmDisarm({ memberID: 1n, alarm: "CORRUPT" }), {
    alarms: [want[1]],
  });
  assertEquals(await client.defragment({ endpoint: "http://b" }), {});
  assertEquals((await client.hash()).hash, 17);
  const hkv = await client.hashKV(5);
  assertEquals([hkv.hash, hkv.compact_revision, hkv.header.revision], [4294967295, -1, 7]);
  await client.hashKV();
  const deactivate = (memberID: string, alarm: string) => ({
    action: "DEACTIVATE",
    memberID,
    alarm,
  });
  assertEquals(calls.map((c) => [c.url, c.body]), [
    ["http://a/v3/maintenance/alarm", {}],
    ["http://a/v3/maintenance/alarm", {}],
    ["http://a/v3/maintenance/alarm", deactivate("10276657743932975437", "NOSPACE")],
    ["http://a/v3/maintenance/alarm", deactivate("1", "CORRUPT")],
    ["http://a/v3/maintenance/alarm", deactivate("1", "CORRUPT")],
    ["http://b/v3/maintenance/defragment", {}],
    ["http://a/v3/maintenance/hash", {}],
    ["http://a/v3/maintenance/hashkv", { revision: "5" }],
    ["http://a/v3/maintenance/hashkv", {}],
  ]);
});

Deno.test("alarm and hashkv are retried after an ambiguous failure; defragment is not", async () => {
  const { fetch, calls } = fakeFetch((url) =>
    url.startsWith("http://a") ? reset() : json({ header: HEADER, alarms: [] })
  );
  const client = () => new Client({ endpoints: ["http://a", "http://b"], fetch });
  await client().alarmList();
  await client().alarm({ action: "ACTIVATE", memberID: 1n, alarm: "NOSPACE" });
  await client().hashKV();
  await assertRejects(client().defragment(), ConnectionError);
  assertEquals(calls.map((c) => c.url.replace(/\/v3\/.*\//, "/")), [
    "http://a/alarm",
    "http://b/alarm",
    "http://a/alarm",
    "http://b/alarm",
    "http://a/hashkv",
    "http://b/hashkv",
    "http://a/defragment",
  ]);
});

Deno.test("alarmDisarm stops at the first failing DEACTIVATE with its error", async () => {
  const { fetch, calls } = fakeFetch((_url, n) => {
    const body = calls[n - 1].body as { action?: string };
    if (body.action === undefined) {
      return json({
        alarms: [{ memberID: "1", alarm: "NOSPACE" }, { memberID: "2", alarm: "NOSPACE" }],
      });
    }
    const message = "etcdserver: request timed out";
    return json({ error: message, message, code: 14 }, 503);
  });
  const client = new Client({ endpoints: ["http://a"], fetch, timeout: 300 });
  // Unavailable is retried until the call's deadline, which bounds the whole disarm.
  await assertRejects(client.alarmDisarm(), (e: unknown) => e instanceof EtcdError);
  assert(calls.every((c) => (c.body as { memberID?: string }).memberID !== "2"));
});

Deno.test("a TLS handshake the server refused counts as never sent; a connection closed later does not", () => {
  const failure = (cause: string) => new TypeError("fetch failed", { cause: new Error(cause) });
  assert(isConnectFailure(failure("received fatal alert: CertificateRequired")));
  assert(isConnectFailure(failure("received fatal alert: UnknownCA")));
  assert(isConnectFailure(failure("invalid peer certificate: UnknownIssuer")));
  assert(!isConnectFailure(failure("peer closed connection without sending TLS close_notify")));
  assert(!isConnectFailure(failure("connection reset by peer")));
});
