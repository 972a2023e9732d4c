/**
 * A Porcupine-style linearizability checker (Wing & Gong search with Lowe's
 * memoization, per-key P-compositionality) over a single-register KV model.
 *
 * Histories record each client operation's call and return time on one
 * monotonic clock. Intervals are closed (an operation returning at t is
 * concurrent with one called at t). Writes whose outcome is unknown (the
 * client timed out) return at +Infinity; failed reads are left out.
 *
 * @module
 */

/** One client operation on one key. */
export interface Operation {
  client: number;
  key: string;
  kind: "put" | "get" | "delete";
  /** put: the value written (unique per history). */
  value?: string;
  /** get: the value read, null if the key was absent. */
  output?: string | null;
  /** Call time. */
  call: number;
  /** Return time; Infinity if the outcome is unknown. */
  ret: number;
}

/** Outcome of a check. */
export type CheckResult = { result: "ok" } | { result: "illegal"; key: string } | {
  result: "unknown";
  key: string;
};

type State = string | null;

/** The sequential specification of one key: returns the next state, or undefined if `op` is not legal in `s`. */
function step(s: State, op: Operation): State | undefined {
  switch (op.kind) {
    case "put":
      return op.value ?? null;
    case "delete":
      return null;
    case "get":
      return op.output === s ? s : undefined;
  }
}

interface Node {
  op: number; // index into ops
  isCall: boolean;
  match: Node | undefined; // call -> its return
  prev: Node | undefined;
  next: Node | undefined;
}

/**
 * Checks one key's history. Exponential in the worst case; `budget` bounds
 * the number of search steps, after which the result is "unknown".
 */
export function checkKey(ops: Operation[], budget = 2_000_000): "ok" | "illegal" | "unknown" {
  if (ops.length === 0) return "ok";
  const events: { t: number; isCall: boolean; op: number }[] = [];
  ops.forEach((o, i) => {
    events.push({ t: o.call, isCall: true, op: i });
    events.push({ t: o.ret, isCall: false, op: i });
  });
  // Calls before returns at equal times: closed intervals overlap.
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let last = head;
  const calls = new Map<number, Node>();
  for (const e of events) {
    const n: Node = { op: e.op, isCall: e.isCall, match: undefined, prev: last, next: undefined };
    last.next = n;
    last = n;
    if (e.isCall) calls.set(e.op, n);
    else calls.get(e.op)!.match = n;
  }
  const lift = (n: Node): void => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node): void => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  const cache = new Set<string>();
  const stack: { node: Node; state: State }[] = [];
  let linearized = 0n;
  let state: State = null;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > budget) return "unknown";
    if (entry === undefined) return "illegal";
    if (entry.isCall) {
      const next = step(state, ops[entry.op]);
      if (next !== undefined) {
        const lin = linearized | (1n << BigInt(entry.op));
        const key = `${lin.toString(36)}|${next}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          state = next;
          linearized = lin;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
    } else {
      // Reached a return whose call is not linearized yet: backtrack.
      const top = stack.pop();
      if (!top) return "illegal";
      state = top.state;
      linearized &= ~(1n << BigInt(top.node.op));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return "ok";
}

/** Checks a whole history, key by key (P-compositionality: keys are independent registers). */
export function checkHistory(ops: Operation[], budgetPerKey = 2_000_000): CheckResult {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (!l) byKey.set(o.key, l = []);
    l.push(o);
  }
  let unknown: string | undefined;
  for (const [key, l] of byKey) {
    const r = checkKey(l, budgetPerKey);
    if (r === "illegal") return { result: "illegal", key };
    if (r === "unknown") unknown = key;
  }
  return unknown === undefined ? { result: "ok" } : { result: "unknown", key: unknown };
}
