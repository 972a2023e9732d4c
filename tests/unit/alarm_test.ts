import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { AlarmSet, alarmText, putCost, txnCost } from "../../core/alarm.ts";
import { Errors } from "../../core/errors.ts";
import type { TxnRequest } from "../../core/api/types.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("alarms: raise, list by kind, clear, and survive encoding", () => {
  const set = new AlarmSet();
  assertEquals(set.activate(7n, "NOSPACE"), {
    alarm: { memberID: 7n, alarm: "NOSPACE" },
    added: true,
  });
  // Raising it again answers the alarm, without a second copy.
  assertEquals(set.activate(7n, "NOSPACE"), {
    alarm: { memberID: 7n, alarm: "NOSPACE" },
    added: false,
  });
  set.activate(9n, "CORRUPT");
  assertEquals(set.size, 2);
  assertEquals(set.get("CORRUPT"), [{ memberID: 9n, alarm: "CORRUPT" }]);
  const copy = AlarmSet.decode(set.encode());
  assertEquals(copy.get(), set.get());
  assertEquals(copy.deactivate(7n, "CORRUPT"), undefined);
  assertEquals(copy.deactivate(7n, "NOSPACE"), { memberID: 7n, alarm: "NOSPACE" });
  assertEquals(copy.get(), [{ memberID: 9n, alarm: "CORRUPT" }]);
  assertEquals(AlarmSet.decode(undefined).size, 0);
});

Deno.test("alarms: NOSPACE refuses what adds data, CORRUPT refuses every write", () => {
  const putTxn: TxnRequest = {
    compare: [],
    success: [{ request_put: { key: bytes("k") } }],
    failure: [],
  };
  const delTxn: TxnRequest = {
    compare: [],
    success: [],
    failure: [{ request_delete_range: { key: bytes("k") } }],
  };
  const none = new AlarmSet();
  for (const type of ["put", "delete_range", "compaction", "lease_grant", "lease_revoke"]) {
    assertEquals(none.refuse({ type }), undefined);
  }
  const nospace = new AlarmSet();
  nospace.activate(1n, "NOSPACE");
  assertEquals(nospace.refuse({ type: "put" }), Errors.NoSpace());
  assertEquals(nospace.refuse({ type: "lease_grant" }), Errors.NoSpace());
  assertEquals(nospace.refuse({ type: "txn", txn: putTxn }), Errors.NoSpace());
  assertEquals(nospace.refuse({ type: "txn", txn: delTxn }), undefined);
  for (const type of ["delete_range", "compaction", "lease_revoke", "lease_checkpoint"]) {
    assertEquals(nospace.refuse({ type }), undefined, type);
  }
  const corrupt = new AlarmSet();
  corrupt.activate(1n, "CORRUPT");
  for (const type of ["put", "delete_range", "compaction", "lease_grant", "lease_revoke"]) {
    assertEquals(corrupt.refuse({ type }), Errors.Corrupt(), type);
  }
  assertEquals(corrupt.refuse({ type: "txn", txn: delTxn }), Errors.Corrupt());
  assertEquals(corrupt.refuse({ type: "lease_checkpoint" }), undefined);
});

Deno.test("alarms: etcd's quota costs and Status text", () => {
  assertEquals(putCost({ key: bytes("abc"), value: bytes("12345") }), 256 + 8);
  const txn: TxnRequest = {
    compare: [],
    success: [
      { request_put: { key: bytes("a"), value: bytes("1") } },
      { request_range: { key: bytes("a") } },
    ],
    failure: [
      { request_put: { key: bytes("b"), value: bytes("22") } },
      { request_put: { key: bytes("c") } },
      // A nested txn's puts are not counted, as in etcd.
      {
        request_txn: {
          compare: [],
          success: [{ request_put: { key: bytes("d"), value: bytes("x") } }],
          failure: [],
        },
      },
    ],
  };
  assertEquals(txnCost(txn), 2 * 256 + 3 + 1);
  assertEquals(
    txnCost({ compare: [], success: [{ request_range: { key: bytes("a") } }], failure: [] }),
    0,
  );
  assert(alarmText({ memberID: 10276657743932975437n, alarm: "NOSPACE" }).endsWith("NOSPACE "));
  assertEquals(
    alarmText({ memberID: 10276657743932975437n, alarm: "NOSPACE" }),
    "memberID:10276657743932975437 alarm:NOSPACE ",
  );
  // gogoproto's text form leaves zero fields out.
  assertEquals(alarmText({ memberID: 0n, alarm: "CORRUPT" }), "alarm:CORRUPT ");
  assertEquals(alarmText({ memberID: 1n, alarm: "NONE" }), "memberID:1 ");
});
