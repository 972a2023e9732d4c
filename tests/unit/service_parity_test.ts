/**
 * One table of requests, valid and invalid, run through the embedded Store
 * (mod.ts `openStore`) and through the JSON gateway (in-process hono app over
 * a member opened the same way): both must give the same answer (the same
 * JSON once the Store's response is encoded) or the same error (message,
 * gRPC code and HTTP status), and that answer must be the one etcd 3.4 gives
 * (each row names it). Both sides start empty with the same IDs and limits,
 * so revisions, headers and Raft indexes line up row by row.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  type CompactionRequest,
  type DeleteRangeRequest,
  Errors,
  EtcdError,
  openStore,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type Store,
  type TxnRequest,
} from "../../mod.ts";
import { type MessageName, stringifyGo, toJson } from "../../core/api/codec.ts";
import { MAX_TXN_DEPTH } from "../../core/limits.ts";
import { createGateway } from "../../server/gateway/mod.ts";
import { memberId } from "../../server/ids.ts";
import { openMember } from "../../server/member.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);
const bytes = (n: number) => new Uint8Array(n).fill(0x78);

/** A request of the table, for one service method. */
type Call =
  | { method: "range"; req: RangeRequest }
  | { method: "put"; req: PutRequest }
  | { method: "deleteRange"; req: DeleteRangeRequest }
  | { method: "txn"; req: TxnRequest }
  | { method: "compact"; req: CompactionRequest }
  | { method: "status"; req: Record<never, never> };

/** A row: the call, the answer etcd gives (ok or its error) and, if needed, the JSON body as sent. */
type Row = Call & {
  name: string;
  want: "ok" | (() => EtcdError);
  /** The gateway body, when the request is too deep for the codec's (recursive) encoder. */
  body?: string;
};

const ROUTES: Record<Call["method"], [path: string, request: MessageName, response: MessageName]> =
  {
    range: ["/v3/kv/range", "RangeRequest", "RangeResponse"],
    put: ["/v3/kv/put", "PutRequest", "PutResponse"],
    deleteRange: ["/v3/kv/deleterange", "DeleteRangeRequest", "DeleteRangeResponse"],
    txn: ["/v3/kv/txn", "TxnRequest", "TxnResponse"],
    compact: ["/v3/kv/compaction", "CompactionRequest", "CompactionResponse"],
    status: ["/v3/maintenance/status", "StatusRequest", "StatusResponse"],
  };

/** What a client sees: HTTP status and JSON body (an error as the gateway writes it). */
interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

function errorOutcome(e: EtcdError): Outcome {
  return { status: e.httpStatus, body: { error: e.message, message: e.message, code: e.code } };
}

/** The Store's answer, encoded as the gateway encodes answers and errors. */
async function viaStore(store: Store, row: Row): Promise<Outcome> {
  try {
    let res: unknown;
    switch (row.method) {
      case "range":
        res = await store.range(row.req);
        break;
      case "put":
        res = await store.put(row.req);
        break;
      case "deleteRange":
        res = await store.deleteRange(row.req);
        break;
      case "txn":
        res = await store.txn(row.req);
        break;
      case "compact":
        res = await store.compact(row.req);
        break;
      case "status":
        res = await store.status();
        break;
    }
    const type = ROUTES[row.method][2];
    return { status: 200, body: JSON.parse(stringifyGo(toJson(type, res as never))) };
  } catch (err) {
    if (err instanceof EtcdError) return errorOutcome(err);
    // As the gateway answers an unexpected error: gRPC Unknown.
    return errorOutcome(new EtcdError(String((err as Error)?.message ?? err), 2));
  }
}

async function viaGateway(app: ReturnType<typeof createGateway>, row: Row): Promise<Outcome> {
  const [path, type] = ROUTES[row.method];
  const body = row.body ?? stringifyGo(toJson(type, row.req as never));
  const res = await app.fetch(new Request(`http://cairn${path}`, { method: "POST", body }));
  return { status: res.status, body: JSON.parse(await res.text()) };
}

/** The database sizes depend on LMDB's page reuse, not on the request. */
function comparable(row: Row, o: Outcome): Outcome {
  if (row.method !== "status" || o.status !== 200) return o;
  const { dbSize: _s, dbSizeInUse: _u, ...rest } = o.body;
  return { status: o.status, body: rest };
}

/**
 * Opens an embedded store and a gateway-served member with the same IDs and
 * limits, runs `rows` through both in order and compares each answer.
 */
async function runParity(limits: { maxTxnOps: number; maxRequestBytes: number }, rows: Row[]) {
  const storeDir = Deno.makeTempDirSync({ prefix: "cairn-parity-store-" });
  const gatewayDir = Deno.makeTempDirSync({ prefix: "cairn-parity-gateway-" });
  const store = await openStore(storeDir, limits);
  // openStore's identity: one member, its ID also the cluster's.
  const id = memberId(["http://localhost:2380"], "etcd-cluster");
  const member = await openMember(gatewayDir, { memberId: id, clusterId: id }, limits);
  const app = createGateway(member.service, {
    maxRequestBytes: limits.maxRequestBytes,
    cairnVersion: "0",
  });
  try {
    for (const row of rows) {
      const fromStore = comparable(row, await viaStore(store, row));
      const fromGateway = comparable(row, await viaGateway(app, row));
      assertEquals(fromStore, fromGateway, `${row.name}: the Store and the gateway differ`);
      if (row.want === "ok") {
        assertEquals(fromStore.status, 200, `${row.name}: ${JSON.stringify(fromStore.body)}`);
      } else {
        assertEquals(fromStore, errorOutcome(row.want()), `${row.name}: not etcd's answer`);
      }
    }
  } finally {
    await store.close();
    await member.close();
    Deno.removeSync(storeDir, { recursive: true });
    Deno.removeSync(gatewayDir, { recursive: true });
  }
}

const put = (key: string, value = "v"): RequestOp => ({
  request_put: { key: b(key), value: b(value) },
});
const get = (key: string, range_end?: Uint8Array): RequestOp => ({
  request_range: range_end ? { key: b(key), range_end } : { key: b(key) },
});
const txn = (success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({
  compare: [],
  success,
  failure,
});

/** A txn of `depth` levels (the outer one is level 1), the innermost holding `inner`. */
function nested(depth: number, inner: RequestOp): TxnRequest {
  let t = txn([inner]);
  for (let level = 1; level < depth; level++) t = txn([{ request_txn: t }]);
  return t;
}

/** The JSON of `nested(depth, put(key))`, written without the (recursive) encoder. */
function nestedJson(depth: number, key: string): string {
  let s = `{"success":[{"request_put":{"key":"${btoa(key)}","value":"dg=="}}]}`;
  for (let level = 1; level < depth; level++) s = `{"success":[{"request_txn":${s}}]}`;
  return s;
}

Deno.test("service parity: the Store and the gateway give etcd's answers and errors alike", async () => {
  // --max-txn-ops 4, --max-request-bytes 4096 (gRPC's limit is 4096 + 512 KiB, not reached).
  const big = bytes(5000);
  await runParity({ maxTxnOps: 4, maxRequestBytes: 4096 }, [
    { name: "put", method: "put", req: { key: b("k1"), value: b("v1") }, want: "ok" },
    { name: "put prev_kv", method: "put", req: { key: b("k1"), prev_kv: true }, want: "ok" },
    { name: "put k2", method: "put", req: { key: b("k2"), value: b("v2") }, want: "ok" },
    { name: "put, empty key", method: "put", req: { key: b("") }, want: Errors.EmptyKey },
    { name: "range, empty key", method: "range", req: { key: b("") }, want: Errors.EmptyKey },
    {
      name: "deleterange, empty key",
      method: "deleteRange",
      req: { key: b("") },
      want: Errors.EmptyKey,
    },
    {
      name: "range, prefix, sorted, limited",
      method: "range",
      req: { key: b("k"), range_end: b("l"), limit: 1, sort_order: "DESCEND" },
      want: "ok",
    },
    {
      name: "put, request too large",
      method: "put",
      req: { key: b("k3"), value: big },
      want: Errors.RequestTooLarge,
    },
    {
      name: "put, empty key before request too large",
      method: "put",
      req: { key: b(""), value: big },
      want: Errors.EmptyKey,
    },
    {
      name: "deleterange, request too large",
      method: "deleteRange",
      req: { key: b("a"), range_end: big },
      want: Errors.RequestTooLarge,
    },
    {
      name: "put, key too large",
      method: "put",
      req: { key: bytes(2000) },
      want: Errors.KeyTooLarge,
    },
    {
      name: "txn, too many ops",
      method: "txn",
      req: txn([get("a"), get("b"), get("c"), get("d"), get("e")]),
      want: Errors.TooManyOps,
    },
    {
      name: "txn, too many compares",
      method: "txn",
      req: {
        ...txn([]),
        compare: ["a", "b", "c", "d", "e"].map((k) => ({
          key: b(k),
          target: "VERSION" as const,
          result: "EQUAL" as const,
          version: 0,
        })),
      },
      want: Errors.TooManyOps,
    },
    {
      name: "txn, duplicate key",
      method: "txn",
      req: txn([put("d"), put("d")]),
      want: Errors.DuplicateKey,
    },
    {
      name: "txn, put inside a deleted range",
      method: "txn",
      req: txn([{ request_delete_range: { key: b("a"), range_end: b("z") } }, put("m")]),
      want: Errors.DuplicateKey,
    },
    {
      name: "txn, empty op",
      method: "txn",
      req: txn([{} as RequestOp]),
      want: Errors.KeyNotFound,
    },
    {
      name: "txn, read-only: no proposal, no size limit",
      method: "txn",
      req: txn([get("a", big)]),
      want: "ok",
    },
    {
      name: "txn, nested read-only txn: a proposal (etcd's isTxnReadonly), too large",
      method: "txn",
      req: txn([{ request_txn: txn([get("a", big)]) }]),
      want: Errors.RequestTooLarge,
    },
    {
      name: "txn, nested read-only txn",
      method: "txn",
      req: txn([{ request_txn: txn([get("k1")]) }]),
      want: "ok",
    },
    {
      name: "txn, put too large",
      method: "txn",
      req: txn([{ request_put: { key: b("t"), value: big } }]),
      want: Errors.RequestTooLarge,
    },
    {
      name: "txn, nesting as deep as --max-txn-ops allows",
      method: "txn",
      req: nested(4, put("deep")),
      want: "ok",
    },
    {
      name: "txn, nesting one level deeper",
      method: "txn",
      req: nested(5, put("deep")),
      want: Errors.TooManyOps,
    },
    {
      name: "txn, nesting far beyond the JS stack",
      method: "txn",
      req: nested(3000, put("deep")),
      body: nestedJson(3000, "deep"),
      want: Errors.TooManyOps,
    },
    {
      name: "range, future revision",
      method: "range",
      req: { key: b("k1"), revision: 1000 },
      want: Errors.FutureRev,
    },
    {
      name: "txn, range at a future revision",
      method: "txn",
      req: txn([{ request_range: { key: b("k1"), revision: 1000 } }]),
      want: Errors.FutureRev,
    },
    {
      name: "put, lease not found",
      method: "put",
      req: { key: b("k1"), lease: 7n },
      want: Errors.LeaseNotFound,
    },
    {
      name: "txn, put with a lease not found",
      method: "txn",
      req: txn([{ request_put: { key: b("k1"), lease: 7n } }]),
      want: Errors.LeaseNotFound,
    },
    {
      name: "put, ignore_value without the key",
      method: "put",
      req: { key: b("absent"), ignore_value: true },
      want: Errors.KeyNotFound,
    },
    {
      name: "put, ignore_value with a value",
      method: "put",
      req: { key: b("k1"), value: b("x"), ignore_value: true },
      want: Errors.ValueProvided,
    },
    {
      name: "put, ignore_lease with a lease",
      method: "put",
      req: { key: b("k1"), lease: 5n, ignore_lease: true },
      want: Errors.LeaseProvided,
    },
    {
      name: "put, ignore_value on an existing key",
      method: "put",
      req: { key: b("k1"), ignore_value: true, prev_kv: true },
      want: "ok",
    },
    {
      name: "txn, compares pick the failure branch",
      method: "txn",
      req: {
        compare: [{ key: b("k1"), target: "VALUE", result: "EQUAL", value: b("nope") }],
        success: [put("s")],
        failure: [put("f"), get("k", b("l"))],
      },
      want: "ok",
    },
    { name: "compact", method: "compact", req: { revision: 3 }, want: "ok" },
    {
      name: "range, compacted revision",
      method: "range",
      req: { key: b("k1"), revision: 2 },
      want: Errors.Compacted,
    },
    {
      name: "compact, compacted revision",
      method: "compact",
      req: { revision: 3 },
      want: Errors.Compacted,
    },
    {
      name: "compact, future revision",
      method: "compact",
      req: { revision: 1000 },
      want: Errors.FutureRev,
    },
    {
      name: "compact, physical",
      method: "compact",
      req: { revision: 4, physical: true },
      want: "ok",
    },
    {
      name: "deleterange, prev_kv",
      method: "deleteRange",
      req: { key: b("k"), range_end: b("l"), prev_kv: true },
      want: "ok",
    },
    { name: "status", method: "status", req: {}, want: "ok" },
  ]);
});

Deno.test("service parity: nesting up to MAX_TXN_DEPTH works and one level more is too many ops", async () => {
  // A --max-txn-ops above MAX_TXN_DEPTH: cairn's own bound decides.
  await runParity({ maxTxnOps: 10 * MAX_TXN_DEPTH, maxRequestBytes: 1572864 }, [
    {
      name: "MAX_TXN_DEPTH levels",
      method: "txn",
      req: nested(MAX_TXN_DEPTH, put("deep")),
      want: "ok",
    },
    {
      name: "MAX_TXN_DEPTH levels of reads (proposed: it nests txns)",
      method: "txn",
      req: nested(MAX_TXN_DEPTH, get("deep")),
      want: "ok",
    },
    {
      name: "MAX_TXN_DEPTH + 1 levels",
      method: "txn",
      req: nested(MAX_TXN_DEPTH + 1, put("deep")),
      want: Errors.TooManyOps,
    },
    {
      name: "3000 levels",
      method: "txn",
      req: nested(3000, put("deep")),
      body: nestedJson(3000, "deep"),
      want: Errors.TooManyOps,
    },
    { name: "status", method: "status", req: {}, want: "ok" },
  ]);
});
