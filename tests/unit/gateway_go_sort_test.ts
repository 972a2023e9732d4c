/**
 * Tests of core/go_sort.ts, the port of Go 1.19's `sort.Sort` that range
 * sorting uses so ties come out in etcd's order. Exact agreement with etcd
 * is checked by tests/compat/kv_test.ts (large ranges with many ties); here:
 * the result is sorted, is a permutation of the input, and follows Go's
 * insertion sort (stable) for 12 elements or fewer.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { goSort } from "../../core/go_sort.ts";

/** Deterministic pseudo-random integers (xorshift32). */
function numbers(n: number, seed: number, range: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % range;
  });
}

Deno.test("goSort: sorts, keeps every element, for many sizes and tie densities", () => {
  for (const n of [0, 1, 2, 7, 12, 13, 49, 50, 51, 200, 1000, 5000]) {
    for (const range of [1, 3, 97, 1_000_000]) {
      for (const shape of ["random", "ascending", "descending", "organ"]) {
        let values = numbers(n, n * 31 + range, range);
        if (shape === "ascending") values.sort((a, b) => a - b);
        if (shape === "descending") values.sort((a, b) => b - a);
        if (shape === "organ") {
          values.sort((a, b) => a - b);
          values = values.filter((_, i) => i % 2 === 0).concat(
            values.filter((_, i) => i % 2 === 1).reverse(),
          );
        }
        const items = values.map((v, id) => ({ v, id }));
        goSort(items, (a, b) => a.v < b.v);
        for (let i = 1; i < items.length; i++) {
          assert(items[i - 1].v <= items[i].v, `n=${n} range=${range} ${shape}: order at ${i}`);
        }
        assertEquals(items.map((x) => x.id).sort((a, b) => a - b), values.map((_, i) => i));
      }
    }
  }
});

Deno.test("goSort: up to 12 elements is Go's insertion sort, which keeps ties in order", () => {
  const items = numbers(12, 7, 3).map((v, id) => ({ v, id }));
  const stable = [...items].sort((a, b) => a.v - b.v);
  goSort(items, (a, b) => a.v < b.v);
  assertEquals(items, stable);
});

Deno.test("goSort: larger inputs reorder ties (Go's sort is not stable)", () => {
  // 100 equal keys in reverse-sorted runs: pdqsort moves ties around, which
  // is exactly why a stable sort cannot reproduce etcd's order.
  const items = Array.from({ length: 100 }, (_, id) => ({ v: id < 50 ? 1 : 0, id }));
  goSort(items, (a, b) => a.v < b.v);
  const ids = items.filter((x) => x.v === 0).map((x) => x.id);
  assert(ids.length === 50);
  assert(ids.some((id, i) => i > 0 && id < ids[i - 1]), "ties were not reordered");
});
