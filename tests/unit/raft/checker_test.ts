/**
 * The linearizability checker must accept linearizable histories and reject
 * the classic anomalies (stale read after a completed write, lost write,
 * reads going back in time).
 */

import assert from "node:assert/strict";
import { checkHistory, checkKey, type Operation } from "../../sim/linearizability.ts";

function put(client: number, value: string, call: number, ret: number, key = "k"): Operation {
  return { client, key, kind: "put", value, call, ret };
}
function get(
  client: number,
  output: string | null,
  call: number,
  ret: number,
  key = "k",
): Operation {
  return { client, key, kind: "get", output, call, ret };
}

Deno.test("linearizability: sequential and overlapping histories that have a linearization pass", () => {
  assert.equal(checkKey([put(1, "a", 0, 1), get(2, "a", 2, 3)]), "ok");
  // A read concurrent with a write may see either value.
  assert.equal(checkKey([put(1, "a", 0, 10), get(2, null, 1, 2)]), "ok");
  assert.equal(checkKey([put(1, "a", 0, 10), get(2, "a", 1, 2)]), "ok");
  // Closed intervals: a read called at the instant a write returns may see it.
  assert.equal(checkKey([put(1, "a", 0, 5), get(2, "a", 5, 6)]), "ok");
  // A write with unknown outcome (ret Infinity) may take effect late or never.
  assert.equal(checkKey([put(1, "a", 0, Infinity), get(2, null, 5, 6), get(2, "a", 7, 8)]), "ok");
  assert.equal(checkKey([put(1, "a", 0, Infinity), get(2, null, 5, 6)]), "ok");
});

Deno.test("linearizability: a stale read after a completed write is rejected (Jepsen etcd 0.4.1)", () => {
  assert.equal(checkKey([put(1, "a", 0, 1), put(1, "b", 2, 3), get(2, "a", 4, 5)]), "illegal");
});

Deno.test("linearizability: a read of a value never written is rejected", () => {
  assert.equal(checkKey([put(1, "a", 0, 1), get(2, "zzz", 2, 3)]), "illegal");
});

Deno.test("linearizability: reads may not go back in time", () => {
  const h = [put(1, "a", 0, 1), put(1, "b", 2, 20), get(2, "b", 3, 4), get(3, "a", 5, 6)];
  assert.equal(checkKey(h), "illegal");
});

Deno.test("linearizability: keys are checked independently; one bad key fails the history", () => {
  const ok = [put(1, "a", 0, 1, "x"), get(2, "a", 2, 3, "x")];
  const bad = [put(1, "b", 0, 1, "y"), get(2, null, 2, 3, "y")];
  assert.deepEqual(checkHistory(ok), { result: "ok" });
  assert.deepEqual(checkHistory([...ok, ...bad]), { result: "illegal", key: "y" });
});

Deno.test("linearizability: the search budget yields unknown instead of running forever", () => {
  const h: Operation[] = [];
  for (let i = 0; i < 40; i++) h.push(put(i, `v${i}`, 0, Infinity));
  h.push(get(99, "nope", 1, 2));
  assert.equal(checkKey(h, 1000), "unknown");
});
