import assert from "node:assert/strict";
import { openBackend } from "../../native/lmdb.ts";
import { Applier } from "../../server/raftnode/applier.ts";
import { encodeRequest, entryData, type InternalRequest } from "../../server/raftnode/request.ts";
import { openMember } from "../../server/member.ts";
import { EtcdServer } from "../../server/etcdserver/mod.ts";
import { log, LogOutputs } from "../../server/log.ts";
import { loggableRequest, loggableTxn } from "../../server/slow_request.ts";
import { WARNING_APPLY_DURATION_MS } from "../../core/limits.ts";

const b = (s: string) => new TextEncoder().encode(s);

interface Entry {
  level: string;
  ts: string;
  msg: string;
  [field: string]: unknown;
}

/** Run `fn` with this thread's log going to a file; returns the entries it wrote. */
async function logged(fn: () => Promise<void> | void): Promise<Entry[]> {
  const file = Deno.makeTempFileSync({ prefix: "cairn-slow-log-" });
  const outputs = LogOutputs.open([file]);
  log.useOutputs(outputs);
  try {
    await fn();
  } finally {
    log.useOutputs(LogOutputs.open(["stderr"]));
    outputs.close();
  }
  const text = Deno.readTextFileSync(file);
  Deno.removeSync(file);
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** A clock that moves `stepMs` forward at every reading. */
function steppingClock(stepMs: number): () => number {
  let t = 0;
  return () => (t += stepMs);
}

Deno.test("slow request: the threshold is etcd's 100 ms default", () => {
  assert.equal(WARNING_APPLY_DURATION_MS, 100);
});

Deno.test("slow request: a read-only range over the threshold is etcd's warning with its fields", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-slow-" });
  const m = await openMember(dir, { memberId: 1n, clusterId: 2n }, {
    maxTxnOps: 128,
    maxRequestBytes: 1572864,
  });
  try {
    await m.service.kv.put({ key: b("foo"), value: b("bar") });
    // Every reading of the clock is 150 ms after the last: each read takes 150 ms.
    const slow = new EtcdServer(m.backend, m.node, {
      memberId: 1n,
      clusterId: 2n,
      now: steppingClock(150),
    });
    const fast = new EtcdServer(m.backend, m.node, {
      memberId: 1n,
      clusterId: 2n,
      now: steppingClock(100),
    });
    const entries = await logged(async () => {
      await fast.kv.range({ key: b("foo") });
      await slow.kv.range({ key: b("a"), range_end: b("z"), limit: 5 });
      await slow.kv.txn({
        compare: [{ result: "EQUAL", target: "VALUE", key: b("foo"), value: b("bar") }],
        success: [{ request_range: { key: b("foo") } }],
        failure: [],
      });
      await assert.rejects(slow.kv.range({ key: b("foo"), revision: 99 }));
      slow.close();
      fast.close();
    });
    const warnings = entries.filter((e) => e.msg === "apply request took too long");
    // The 100 ms read is not over the threshold; the three 150 ms ones are.
    assert.equal(warnings.length, 3, JSON.stringify(entries));
    const [range, txn, failed] = warnings;
    assert.equal(range.level, "warn");
    assert.match(range.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(range.took, "150ms");
    assert.equal(range["expected-duration"], "100ms");
    assert.equal(range.prefix, "read-only range ");
    assert.equal(range.request, 'key:"a" range_end:"z" limit:5 ');
    assert.match(range.response as string, /^range_response_count:1 size:\d+$/);
    assert.equal(
      txn.request,
      'compare:<target:VALUE key:"foo" value_size:3 > success:<request_range:<key:"foo" > > failure:<>',
    );
    assert.match(txn.response as string, /^responses:<range_response_count:1> size:\d+$/);
    assert.equal(failed.response, "");
    assert.equal(failed.error, "etcdserver: mvcc: required revision is a future revision");
  } finally {
    await m.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("slow request: an entry that applies over the threshold is logged with etcd's request text", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-slow-apply-" });
  const backend = openBackend(dir);
  try {
    const applier = new Applier(backend, undefined, { now: steppingClock(120) });
    const requests: InternalRequest[] = [
      { type: "put", put: { key: b("foo"), value: b("bar") } },
      { type: "delete_range", delete_range: { key: b("foo") } },
      { type: "compaction", compaction: { revision: 99 } },
    ];
    const entries = await logged(async () => {
      const batch = applier.apply(requests.map((req, i) => ({
        term: 1,
        index: i + 1,
        type: "normal" as const,
        data: entryData(7 + i, encodeRequest(req)),
      })));
      await batch.committed;
    });
    assert.deepEqual(
      entries.map((e) => [e.level, e.msg, e.took, e["expected-duration"], e.prefix, e.request]),
      [
        [
          "warn",
          "apply request took too long",
          "120ms",
          "100ms",
          "",
          'header:<ID:7 > put:<key:"foo" value_size:3 >',
        ],
        [
          "warn",
          "apply request took too long",
          "120ms",
          "100ms",
          "",
          'header:<ID:8 > delete_range:<key:"foo" > ',
        ],
        [
          "warn",
          "apply request took too long",
          "120ms",
          "100ms",
          "",
          "header:<ID:9 > compaction:<revision:99 > ",
        ],
      ],
    );
    assert.equal(entries[0].response, "size:4");
    // The compaction failed (a future revision): its error is logged, no response.
    assert.equal(entries[2].response, "");
    assert.equal(entries[2].error, "etcdserver: mvcc: required revision is a future revision");
  } finally {
    await backend.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("slow request: requests print as etcd's loggable text (values by size, leases in hex)", () => {
  assert.equal(
    loggableRequest(1, {
      type: "lease_grant",
      lease_grant: { TTL: 100, ID: 0x464da2358188580an },
    }),
    "header:<ID:1 > lease_grant:<ttl:100-second id:464da2358188580a>",
  );
  assert.equal(
    loggableRequest(2, { type: "lease_revoke", lease_revoke: { ID: 10n } }),
    "header:<ID:2 > lease_revoke:<id:000000000000000a>",
  );
  assert.equal(
    loggableRequest(3, {
      type: "put",
      put: { key: b('a"\n\x01'), value: new Uint8Array(10), lease: 5n, prev_kv: true },
    }),
    'header:<ID:3 > put:<key:"a\\"\\n\\001" value_size:10 lease:5 prev_kv:true >',
  );
  assert.equal(
    loggableTxn({
      compare: [{ result: "GREATER", target: "MOD", key: b("k"), mod_revision: 0 }],
      success: [{ request_put: { key: b("k"), value: b("vv") } }],
      failure: [{ request_delete_range: { key: b("k"), range_end: b("l") } }],
    }),
    'compare:<result:GREATER target:MOD key:"k" mod_revision:0 > ' +
      'success:<request_put:<key:"k" value_size:2 >> ' +
      'failure:<request_delete_range:<key:"k" range_end:"l" > >',
  );
});
