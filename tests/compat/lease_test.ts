/**
 * Differential test of the Lease service on the JSON gateway: grant, revoke,
 * keepalive, timetolive and leases (and their /v3/kv/lease/ and /v3beta
 * aliases), and how leases act on keys (put with a lease, ignore_lease,
 * revoke and expiry deleting the attached keys in one revision), sent to
 * real etcd 3.4 and to cairn from the same fresh start. Every response must
 * match byte for byte except cluster_id, member_id and raft_term, and:
 *
 * - IDs the server picks (grant with ID 0) differ between two clusters, so
 *   those replies are compared with the ID masked, and follow-ups send each
 *   server its own ID;
 * - `keys` in timetolive come in Go map order on etcd (a different order on
 *   every call), so they are compared sorted;
 * - a remaining TTL is compared exactly only where it is read well inside
 *   the first second after a grant or keep-alive, or half-way between two
 *   seconds after a sleep; elsewhere it is masked, because the two servers
 *   may read it either side of a second boundary.
 *
 * Observed on etcd 3.4.23. H = {"cluster_id":"…","member_id":"…",
 * "revision":"<current>","raft_term":"2"}. Successful replies: 200 with
 * Content-Type: application/json, Grpc-Metadata-Content-Type:
 * application/grpc and the CORS headers; error replies have no
 * Grpc-Metadata-Content-Type. Lease calls leave the revision alone, except
 * a revoke or expiry of a lease that has keys: that deletes them all in one
 * new revision, the revoke's H.revision.
 *
 * grant
 *   {"ID":"100","TTL":300}             → {"header":H,"ID":"100","TTL":"300"}
 *   TTL 1, 0, -5, "-1" or absent       → "TTL":"2" (the minimum)
 *   TTL "9000000000"                   → "TTL":"9000000000"
 *   TTL "9000000001"                   → 400 {"error":"etcdserver: too large lease TTL",
 *                                        "message":"etcdserver: too large lease TTL","code":11}
 *                                        (checked first: also for an existing ID)
 *   an existing ID                     → 412 {"error":"etcdserver: lease already exists",
 *                                        "message":"etcdserver: lease already exists","code":9}
 *   ID 0, "0", null or absent; a body of "" or null; {"ttl":50,"id":"300"} (names are
 *   case-sensitive, so both are ignored) → a new positive ID, e.g. "ID":"4909383413784008222"
 *   ID "-7", "-9223372036854775808", "9223372036854775807", 9007199254740993 (a JSON number
 *   above 2^53) → kept exactly as given
 * revoke
 *   {"ID":"20"}                        → {"header":H}
 *   unknown, already revoked or absent → 404 {"error":"etcdserver: requested lease not found",
 *                                        "message":"etcdserver: requested lease not found","code":5}
 * timetolive
 *   {"ID":"110"}                       → {"header":H,"ID":"110","TTL":"99","grantedTTL":"100"}
 *                                        (whole seconds left, truncated: 99 right after a grant
 *                                        of 100, 8999999999 after one of 9000000000)
 *   {"ID":"11","keys":true}            → {"header":H,"ID":"11","TTL":"359","grantedTTL":"360",
 *                                        "keys":["ay8x","ay81"]} (no `keys` when there are none)
 *   unknown, revoked or expired        → {"header":H,"ID":"999","TTL":"-1"}, with or without keys
 *   {}                                 → {"header":H,"TTL":"-1"}
 * leases
 *   {}                                 → {"header":H,"leases":[{"ID":"110"},{"ID":"100"},…]},
 *                                        by expiry time, soonest first (a keep-alive moves a
 *                                        lease back); no leases → {"header":H}. The body may be
 *                                        "" and any field, of any type, is ignored; only bad
 *                                        JSON is an error.
 * keepalive (a stream: the body is concatenated messages, whitespace between them allowed)
 *   {"ID":"40"}{"ID":"999"}{"ID":40}{} → 200, Content-Type: application/json,
 *     Grpc-Metadata-Content-Type: application/grpc, Transfer-Encoding: chunked, one line per
 *     message, then the response ends (unlike a watch, it does not stay open):
 *       {"result":{"header":H,"ID":"40","TTL":"30"}}\n   (the full granted TTL)
 *       {"result":{"header":H,"ID":"999"}}\n             (unknown lease: no TTL)
 *       {"result":{"header":H,"ID":"40","TTL":"30"}}\n
 *       {"result":{"header":H}}\n                        (ID 0; also for a body of null)
 *   an empty body                      → 200, Content-Type: application/json, no
 *                                        Grpc-Metadata-Content-Type, empty body
 *   a bad first message                → 500, not chunked, no trailing newline, code 2:
 *     '{"ID":'       {"error":"unexpected EOF","message":"unexpected EOF","code":2}
 *     '{"ID":"bad"}' "invalid character 'b' looking for beginning of value"
 *     '[]'           "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"
 *   a bad message after good ones      → the good ones' lines, then the end: no error line, and
 *                                        nothing after the bad one is answered
 * aliases
 *   /v3/kv/lease/{revoke,timetolive,leases} answer as /v3/lease/…; /v3/kv/lease/grant and
 *   /v3/kv/lease/keepalive do not exist: 404 text/plain; charset=utf-8 "Not Found\n" with
 *   X-Content-Type-Options: nosniff (for any method). Everything is under /v3beta/ as well,
 *   including /v3beta/kv/lease/….
 * methods: GET, PUT or DELETE on any lease endpoint → 405 text/plain; charset=utf-8
 *   "Method Not Allowed\n" with X-Content-Type-Options: nosniff.
 * bad input on grant, revoke and timetolive → 400, code 3, e.g.
 *   '{' or '{"ID":'      {"error":"unexpected EOF","message":"unexpected EOF","code":3}
 *   '[]'                 "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"
 *   {"ID":"x"}           "invalid character 'x' looking for beginning of value"
 *   {"ID":true}          "json: cannot unmarshal bool into Go value of type int64"
 *   {"ID":1e3}, 5.5      "json: cannot unmarshal number 1e3 into Go value of type int64"
 *   {"ID":"9223372036854775808"} "json: cannot unmarshal number 9223372036854775808 into Go
 *                        value of type int64"
 *   {"ID":[10]}          "json: cannot unmarshal array into Go value of type int64"
 *   {"keys":"yes"}       "json: cannot unmarshal string into Go value of type bool"
 *   {"ID":" 999"} is read as 999 (leading space allowed inside the string).
 * keys: kv/put (or a txn put) with an unknown lease, or lease "-1" → 404 code 5 "etcdserver:
 *   requested lease not found"; lease "0" means none. A put without a lease detaches the key; a
 *   put with another lease moves it; ignore_lease keeps it; a delete removes it from the lease.
 *   Revoke and expiry delete the keys in key order, all in one watch frame.
 *
 * The gateway of etcd 3.4 answers a stream only once the whole request body
 * has arrived (keep-alive included), so each keep-alive stream here is one
 * request body of concatenated messages.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  b64,
  COMPARED_HEADERS,
  compatName,
  HAVE_ETCD,
  mask,
  type Pair,
  StreamLines,
  withPair,
} from "./harness.ts";

type Side = "etcd" | "cairn";

/** One exchange, read with a deadline (a stream left open must not hang the test). */
interface Reply {
  status: number;
  headers: string;
  contentType: string | null;
  /** Masked body (cluster_id, member_id, raft_term). */
  body: string;
  /** False when the deadline passed before the body ended. */
  ended: boolean;
}

async function fetchTimed(
  url: string,
  method: string,
  path: string,
  body: string | undefined,
  ms = 5000,
): Promise<Reply> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  let text = "";
  try {
    const res = await fetch(url + path, { method, body, signal: abort.signal });
    const headers = COMPARED_HEADERS.filter((h) => res.headers.has(h))
      .map((h) => `${h}: ${res.headers.get(h)}`).join("\n");
    const decoder = new TextDecoder();
    let ended = true;
    try {
      for await (const chunk of res.body!) text += decoder.decode(chunk, { stream: true });
    } catch {
      ended = false;
    }
    return {
      status: res.status,
      headers,
      contentType: res.headers.get("content-type"),
      body: mask(text),
      ended,
    };
  } catch (err) {
    return { status: 0, headers: "", contentType: null, body: `failed: ${err}`, ended: false };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends `body` (or each server its own `body(side)`) to both servers,
 * applies `norm` to both masked bodies, and records a difference in
 * `pair.diffs` as the harness does (a reply still open after 5 s is a
 * difference too). Returns both replies, not normalized.
 */
async function compare(
  pair: Pair,
  path: string,
  body: string | undefined | ((side: Side) => string),
  norm: (body: string) => string = (b) => b,
  method = "POST",
): Promise<{ etcd: Reply; cairn: Reply }> {
  const text = (side: Side) => typeof body === "function" ? body(side) : body;
  const [e, c] = await Promise.all([
    fetchTimed(pair.etcd.url, method, path, text("etcd")),
    fetchTimed(pair.cairn.url, method, path, text("cairn")),
  ]);
  pair.compared++;
  const [eb, cb] = [norm(e.body), norm(c.body)];
  if (e.status !== c.status || e.headers !== c.headers || eb !== cb || e.ended !== c.ended) {
    const shown = text("etcd") ?? "";
    const end = (r: Reply) => r.ended ? "" : " (still open after 5 s)";
    const headers = e.headers === c.headers
      ? ""
      : `\n  etcd headers:  ${e.headers.replaceAll("\n", "; ")}` +
        `\n  cairn headers: ${c.headers.replaceAll("\n", "; ")}`;
    pair.diffs.push(
      `${method} ${path} ${shown.slice(0, 200)}\n  etcd:  ${e.status} ${e.contentType} ${
        eb.slice(0, 600)
      }${end(e)}\n  cairn: ${c.status} ${c.contentType} ${cb.slice(0, 600)}${end(c)}${headers}`,
    );
  }
  return { etcd: e, cairn: c };
}

/** Masks every lease ID (for IDs the servers pick). */
const maskID = (b: string) => b.replace(/"ID":"-?\d+"/g, '"ID":"*"');
/** Masks the remaining TTL (not grantedTTL). */
const maskTTL = (b: string) => b.replace(/"TTL":"-?\d+"/g, '"TTL":"*"');
/** Sorts the `keys` of a timetolive reply (etcd lists them in Go map order). */
const sortKeys = (b: string) =>
  b.replace(/"keys":\[([^\]]*)\]/g, (_, l: string) => `"keys":[${l.split(",").sort().join(",")}]`);

/** The keep-alive stream: one request body of concatenated messages. */
async function keepalive(
  pair: Pair,
  messages: unknown[] | string,
  path = "/v3/lease/keepalive",
): Promise<Reply> {
  const text = typeof messages === "string"
    ? messages
    : messages.map((m) => JSON.stringify(m)).join("");
  const { etcd } = await compare(pair, path, text);
  assert(etcd.ended, "etcd ends the keep-alive stream after the request body");
  return etcd;
}

/** A watch of every key under `prefix` (with prev_kv) on both servers. */
class Watch {
  readonly etcd: StreamLines;
  readonly cairn: StreamLines;
  constructor(pair: Pair, prefix: string) {
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const body = JSON.stringify({
      create_request: { key: b64(prefix), range_end: b64(end), prev_kv: true },
    });
    this.etcd = new StreamLines(pair.etcd.url + "/v3/watch", body);
    this.cairn = new StreamLines(pair.cairn.url + "/v3/watch", body);
  }
  /** The next `n` frames of both, compared; returns etcd's. */
  async expect(n: number, ms = 5000): Promise<string[]> {
    const [e, c] = await Promise.all([this.etcd.take(n, ms), this.cairn.take(n, ms)]);
    assertEquals(c, e);
    assertEquals(e.length, n, `etcd sent ${e.length} of ${n} frames`);
    return e;
  }
  /** Nothing more arrived on either. */
  async quiet(): Promise<void> {
    const [e, c] = await Promise.all([this.etcd.extra(), this.cairn.extra()]);
    assertEquals(c, e);
    assertEquals(e, []);
  }
  close(): void {
    this.etcd.close();
    this.cairn.close();
  }
}

/** The header revision of a reply body. */
function revision(body: string): number {
  return Number(JSON.parse(body).header.revision);
}

/** The ID in a grant reply, or "0" when there is none (a failed grant). */
function idOf(reply: Reply): string {
  try {
    return String(JSON.parse(reply.body).ID ?? "0");
  } catch {
    return "0";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: compatName("compat: lease grant, revoke, keepalive, timetolive and leases match etcd 3.4"),
  ignore: !HAVE_ETCD,
  async fn(t) {
    await withPair(async (pair) => {
      const grant = (ID: unknown, TTL: unknown) => pair.post("/v3/lease/grant", { ID, TTL });
      const revoke = (ID: unknown) => pair.post("/v3/lease/revoke", { ID });
      const put = (k: string, extra: Record<string, unknown> = {}) =>
        pair.post("/v3/kv/put", { key: b64(k), value: b64(`v-${k}`), ...extra });

      await t.step("a fresh server: no leases, unknown IDs", async () => {
        const list = await pair.post("/v3/lease/leases", {});
        assert(!list.body.includes("leases"), list.body);
        await pair.post("/v3/lease/timetolive", { ID: "999" });
        await pair.post("/v3/lease/timetolive", { ID: "999", keys: true });
        const zero = await pair.post("/v3/lease/timetolive", {});
        assert(zero.body.endsWith('},"TTL":"-1"}'), zero.body);
        const gone = await revoke("999");
        assertEquals(gone.status, 404);
        await pair.post("/v3/lease/revoke", {});
        await keepalive(pair, [{ ID: "999" }]);
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("grant: explicit IDs, the TTL minimum and maximum, existing IDs", async () => {
        const ok = await grant("100", 300);
        assert(ok.body.endsWith(',"ID":"100","TTL":"300"}'), ok.body);
        // Below the minimum (ceil(1.5 × 1 s election timeout) = 2 s): raised to 2.
        for (const [id, ttl] of [[101, 1], ["102", 0], ["103", -5], ["107", "-1"]]) {
          const r = await grant(id, ttl);
          assert(r.body.endsWith(`"TTL":"2"}`), r.body);
        }
        await pair.post("/v3/lease/grant", { ID: "106" });
        // The maximum is 9,000,000,000 s.
        await grant("104", "9000000000");
        const big = await grant("105", "9000000001");
        assertEquals(big.status, 400);
        assert(big.body.includes("etcdserver: too large lease TTL"), big.body);
        // The TTL is checked before the ID is.
        await grant("100", 9000000001);
        const again = await grant("100", 300);
        assertEquals(again.status, 412);
        assert(again.body.includes("etcdserver: lease already exists"), again.body);
        await grant(100, 5);
        await grant(104, "9000000000");
        // Any non-zero int64 is a valid ID, as a string or a number.
        await grant("-7", 310);
        await grant("-9223372036854775808", 320);
        await grant("9223372036854775807", 330);
        await pair.post("/v3/lease/grant", '{"ID":9007199254740993,"TTL":340}');
        await pair.post("/v3/lease/grant", '{"ID":9007199254740993,"TTL":340}');
        // The short ones are revoked now, so none expires later in the test.
        for (const id of ["101", "102", "103", "106", "107"]) {
          const r = await revoke(id);
          assertEquals(r.status, 200);
        }
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("grant with ID 0: the server picks the ID (compared masked)", async () => {
        const bodies: unknown[] = [
          { TTL: 60 },
          { ID: 0, TTL: 61 },
          { ID: "0", TTL: 62 },
          { ID: null, TTL: 63 },
          // Names are case-sensitive: both are ignored, so TTL 2 and a new ID.
          { ttl: 50, id: "300" },
          {},
          "",
          "null",
        ];
        const picked: string[] = [];
        for (const body of bodies) {
          const text = typeof body === "string" ? body : JSON.stringify(body);
          const r = await compare(pair, "/v3/lease/grant", text, maskID);
          assertEquals(r.etcd.status, 200, r.etcd.body);
          const id = idOf(r.etcd);
          assert(/^[1-9]\d*$/.test(id) && BigInt(id) < 2n ** 63n, r.etcd.body);
          picked.push(id);
          const ids = { etcd: id, cairn: idOf(r.cairn) };
          // Read right after the grant: the remaining TTL is exact.
          await compare(
            pair,
            "/v3/lease/timetolive",
            (side) => JSON.stringify({ ID: ids[side], keys: true }),
            maskID,
          );
          await compare(pair, "/v3/lease/revoke", (side) => JSON.stringify({ ID: ids[side] }));
        }
        assertEquals(new Set(picked).size, picked.length);
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("timetolive right after a grant, with and without keys, aliases", async () => {
        await grant("110", 100);
        // Well inside the first second: 99 s left (whole seconds, truncated).
        const ttl = await pair.post("/v3/lease/timetolive", { ID: "110" });
        assert(ttl.body.endsWith(',"ID":"110","TTL":"99","grantedTTL":"100"}'), ttl.body);
        await pair.post("/v3/lease/timetolive", { ID: 110, keys: true });
        await pair.post("/v3/lease/timetolive", { ID: "110", keys: false });
        await pair.post("/v3/kv/lease/timetolive", { ID: "110" });
        await pair.post("/v3beta/lease/timetolive", { ID: "110" });
        await pair.post("/v3beta/kv/lease/timetolive", { ID: "110", keys: true });
        await grant("111", "9000000000");
        await pair.post("/v3/lease/timetolive", { ID: "111" });
        await revoke("111");
        await pair.post("/v3/lease/timetolive", { ID: "111" });
        await pair.post("/v3/lease/timetolive", '{"ID":9007199254740993}');
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("put with a lease, ignore_lease, keys moving between leases", async () => {
        await grant("10", 350);
        await grant("11", 360);
        await put("k/1", { lease: "10" });
        await put("k/2", { lease: 10 });
        await put("k/3", { lease: "10", prev_kv: true });
        await put("k/4", { lease: "10" });
        const unknown = await put("k/x", { lease: "12345" });
        assertEquals(unknown.status, 404);
        assert(unknown.body.includes("etcdserver: requested lease not found"), unknown.body);
        await put("k/x", { lease: "-1" });
        await put("k/0", { lease: "0" });
        // Moved to lease 11; detached; kept by ignore_lease; deleted.
        await put("k/1", { lease: "11", prev_kv: true });
        await put("k/2", { prev_kv: true });
        await put("k/3", { ignore_lease: true, prev_kv: true });
        await pair.post("/v3/kv/deleterange", { key: b64("k/4") });
        await put("k/none", { ignore_lease: true });
        await put("k/3", { ignore_lease: true, lease: "11" });
        await pair.post("/v3/kv/txn", {
          success: [{ request_put: { key: b64("k/t"), value: b64("t"), lease: "77" } }],
        });
        await pair.post("/v3/kv/txn", {
          compare: [{ key: b64("k/1"), target: "LEASE", result: "EQUAL", lease: "11" }],
          success: [{ request_put: { key: b64("k/5"), value: b64("5"), lease: "11" } }],
        });
        await pair.post("/v3/kv/txn", {
          compare: [{ key: b64("k/2"), target: "LEASE", result: "EQUAL", lease: "10" }],
          success: [{ request_put: { key: b64("k/6"), value: b64("6"), lease: "10" } }],
          failure: [{ request_range: { key: b64("k/2") } }],
        });
        await pair.post("/v3/kv/range", { key: b64("k/"), range_end: b64("k0") });
        // Granted a while ago in this step: the remaining TTL may be read
        // either side of a second boundary, so it is masked.
        const norm = (b: string) => sortKeys(maskTTL(b));
        const ten = await compare(pair, "/v3/lease/timetolive", '{"ID":"10","keys":true}', norm);
        assert(ten.etcd.body.endsWith(',"grantedTTL":"350","keys":["ay8z"]}'), ten.etcd.body);
        await compare(pair, "/v3/lease/timetolive", '{"ID":"11","keys":true}', norm);
        // A lease whose keys were all detached has no `keys`, and revoking
        // it deletes nothing, so the revision stays.
        await grant("12", 370);
        await put("k/7", { lease: "12" });
        await put("k/7");
        const none = await compare(
          pair,
          "/v3/lease/timetolive",
          '{"ID":"12","keys":true}',
          maskTTL,
        );
        assert(none.etcd.body.endsWith('"grantedTTL":"370"}'), none.etcd.body);
        const before = await pair.post("/v3/kv/range", { key: b64("k/7") });
        const r = await revoke("12");
        assertEquals(revision(r.body), revision(before.body));
        await pair.post("/v3/kv/range", { key: b64("k/7") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("revoke deletes every attached key in one revision", async () => {
        await grant("20", 380);
        for (const k of ["r/3", "r/1", "r/5", "r/2", "r/4"]) await put(k, { lease: "20" });
        await put("r/6");
        const w = new Watch(pair, "r/");
        await w.expect(1); // created
        const r = await revoke("20");
        const rev = revision(r.body);
        const [frame] = await w.expect(1);
        // All five DELETEs in one frame, in key order, at the revoke's revision.
        const events = JSON.parse(frame).result.events as { type: string; kv: { key: string } }[];
        assertEquals(events.map((e) => [e.type, atob(e.kv.key)]), [
          ["DELETE", "r/1"],
          ["DELETE", "r/2"],
          ["DELETE", "r/3"],
          ["DELETE", "r/4"],
          ["DELETE", "r/5"],
        ]);
        assert(frame.includes(`"revision":"${rev}"`));
        await w.quiet();
        w.close();
        await pair.post("/v3/kv/range", { key: b64("r/"), range_end: b64("r0") });
        await pair.post("/v3/kv/range", {
          key: b64("r/"),
          range_end: b64("r0"),
          revision: rev - 1,
        });
        await revoke("20");
        await pair.post("/v3/kv/lease/revoke", { ID: "20" });
        await pair.post("/v3/lease/timetolive", { ID: "20", keys: true });
        await keepalive(pair, [{ ID: "20" }]);
        // The aliases revoke as well.
        await grant("21", 390);
        await put("r/7", { lease: "21" });
        await pair.post("/v3/kv/lease/revoke", { ID: "21" });
        await grant("22", 390);
        await put("r/8", { lease: 22 });
        await pair.post("/v3beta/lease/revoke", { ID: 22 });
        await pair.post("/v3beta/kv/lease/revoke", { ID: 22 });
        await pair.post("/v3/kv/range", { key: b64("r/"), range_end: b64("r0") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("keepalive streams", async () => {
        await grant("40", 30);
        const one = await keepalive(pair, [{ ID: "40" }]);
        assert(one.body.endsWith(',"ID":"40","TTL":"30"}}\n'), one.body);
        assert(one.headers.includes("grpc-metadata-content-type: application/grpc"), one.headers);
        const four = await keepalive(pair, [{ ID: "40" }, { ID: "999" }, { ID: 40 }, {}]);
        assertEquals(four.body.split("\n").length, 5);
        await keepalive(pair, '{"ID":"40"}\n  {"ID":"104"}\n');
        await grant("41", 1);
        await keepalive(pair, [{ ID: "41" }]); // TTL 2, the minimum it got
        await revoke("41");
        await keepalive(pair, [{ ID: "40" }], "/v3beta/lease/keepalive");
        // Bad input: before the first message, an error; after, the end.
        const empty = await keepalive(pair, "");
        assertEquals([empty.status, empty.body], [200, ""]);
        const bad = await keepalive(pair, '{"ID":');
        assertEquals(bad.status, 500);
        await keepalive(pair, '{"ID":"bad"}');
        await keepalive(pair, "[]");
        await keepalive(pair, "null");
        const later = await keepalive(pair, '{"ID":"40"}{bad');
        assertEquals(later.body.split("\n").length, 2);
        await keepalive(pair, '{"ID":"40"}{"ID":true}{"ID":"40"}');
        const alias = await keepalive(pair, [{ ID: "40" }], "/v3/kv/lease/keepalive");
        assertEquals(alias.status, 404);
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("keepalive renews to the full TTL", async () => {
        await grant("42", 10);
        // 1.5 s after the grant: 8.5 s left, read as 8, half a second from
        // either boundary.
        await sleep(1500);
        const left = await pair.post("/v3/lease/timetolive", { ID: "42" });
        assert(left.body.endsWith('"TTL":"8","grantedTTL":"10"}'), left.body);
        await keepalive(pair, [{ ID: "42" }]);
        const renewed = await pair.post("/v3/lease/timetolive", { ID: "42" });
        assert(renewed.body.endsWith('"TTL":"9","grantedTTL":"10"}'), renewed.body);
        await revoke("40");
        await revoke("42");
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("expiry deletes the attached keys in one revision", async () => {
        await grant("30", 1); // raised to 2 s
        await put("e/2", { lease: "30" });
        await put("e/1", { lease: 30 });
        await put("e/3");
        const w = new Watch(pair, "e/");
        await w.expect(1); // created
        // etcd revokes an expired lease up to ~0.5 s after its TTL.
        const [frame] = await w.expect(1, 6000);
        assertEquals((frame.match(/"type":"DELETE"/g) ?? []).length, 2);
        await w.quiet();
        w.close();
        await pair.post("/v3/lease/timetolive", { ID: "30", keys: true });
        await keepalive(pair, [{ ID: "30" }]);
        await pair.post("/v3/kv/range", { key: b64("e/"), range_end: b64("e0") });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("leases: listed by expiry time, soonest first", async () => {
        // Live now, in expiry order: 110 (100 s), 100 (300), -7 (310),
        // min int64 (320), max int64 (330), 2^53 + 1 (340), 10 (350),
        // 11 (360), 104 (9e9 s, kept alive).
        const list = await pair.post("/v3/lease/leases", {});
        assert(
          list.body.endsWith(
            ',"leases":[{"ID":"110"},{"ID":"100"},{"ID":"-7"},' +
              '{"ID":"-9223372036854775808"},{"ID":"9223372036854775807"},' +
              '{"ID":"9007199254740993"},{"ID":"10"},{"ID":"11"},{"ID":"104"}]}',
          ),
          list.body,
        );
        await grant("50", 500);
        await grant("51", 400);
        await grant("52", 600);
        await grant("53", 400);
        await pair.post("/v3/lease/leases", {});
        // A keep-alive moves 51 after 53 (same TTL, later expiry).
        await keepalive(pair, [{ ID: "51" }]);
        await pair.post("/v3/lease/leases", {});
        await pair.post("/v3/kv/lease/leases", {});
        await pair.post("/v3beta/lease/leases", {});
        await pair.post("/v3beta/kv/lease/leases", {});
        await pair.post("/v3/lease/leases", "");
        await pair.post("/v3/lease/leases", { x: 1, ID: "50" });
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("paths that do not exist, and methods other than POST", async () => {
        const grantAlias = await pair.post("/v3/kv/lease/grant", { ID: "60", TTL: 60 });
        assertEquals(grantAlias.status, 404);
        await pair.send("GET", "/v3/kv/lease/grant");
        await pair.send("GET", "/v3/kv/lease/keepalive");
        for (const prefix of ["/v3/lease/", "/v3/kv/lease/", "/v3beta/lease/"]) {
          for (const name of ["revoke", "timetolive", "leases"]) {
            const r = await pair.send("GET", prefix + name);
            assertEquals(r.status, 405);
          }
        }
        await pair.send("GET", "/v3/lease/grant");
        await pair.send("GET", "/v3/lease/keepalive");
        await pair.send("PUT", "/v3/lease/grant", '{"ID":"61","TTL":60}');
        await pair.send("DELETE", "/v3/lease/revoke", '{"ID":"10"}');
        assertEquals(pair.takeDiffs(), []);
      });

      await t.step("bad JSON and wrong types", async () => {
        const bodies = [
          "{",
          '{"ID":',
          "[]",
          '{"ID":"x"}',
          '{"ID":true}',
          '{"ID":1e3}',
          '{"ID":5.5}',
          '{"ID":"9223372036854775808"}',
          '{"ID":" 999"}',
          '{"ID":"999","keys":"yes"}',
          '{"ID":[10]}',
        ];
        for (const path of ["/v3/lease/revoke", "/v3/lease/timetolive", "/v3/lease/leases"]) {
          for (const body of bodies) await pair.post(path, body);
        }
        for (const body of bodies.slice(0, 3)) await pair.post("/v3/lease/grant", body);
        await pair.post("/v3/lease/grant", '{"TTL":"x","ID":"62"}');
        await pair.post("/v3/lease/grant", '{"TTL":5.5,"ID":"62"}');
        await pair.post("/v3/lease/grant", '{"TTL":true,"ID":"62"}');
        await pair.post("/v3/lease/grant", '{"TTL":60,"ID":"9223372036854775808"}');
        await pair.post("/v3/lease/grant", '{"TTL":60,"ID":1e3}');
        await pair.post("/v3/lease/leases", {});
        assertEquals(pair.takeDiffs(), []);
      });
    });
  },
});
