import assert from "node:assert/strict";
import { Compactor, REVISION_MODE_INTERVAL_MS } from "../../server/compactor.ts";
import { parseRetention } from "../../server/config.ts";

function target() {
  const state = { rev: 1, compactions: [] as number[] };
  return {
    state,
    currentRevision: () => state.rev,
    compact: (r: number) => {
      state.compactions.push(r);
      return Promise.resolve();
    },
  };
}

Deno.test("compactor: retention parsing follows etcd (plain number = hours in periodic mode)", () => {
  assert.equal(parseRetention("periodic", "1"), 3_600_000);
  assert.equal(parseRetention("periodic", "1h30m"), 5_400_000);
  assert.equal(parseRetention("periodic", "10s"), 10_000);
  assert.equal(parseRetention("revision", "1000"), 1000);
  assert.throws(() => parseRetention("revision", "1h"));
  assert.throws(() => parseRetention("periodic", "soon"));
});

Deno.test("compactor: periodic mode compacts at the revision from one retention ago", async () => {
  const t = target();
  const c = new Compactor("periodic", 60_000, t); // 1 minute: sample every 6 s
  assert.equal(c.intervalMs, 6_000);
  for (let now = 0; now <= 120_000; now += 6_000) {
    t.state.rev = 100 + now / 1000; // one revision per second
    await c.tick(now);
  }
  // At t=60 s the sample from t=0 (rev 100) became a retention old.
  assert.equal(t.state.compactions[0], 100);
  // At t=120 s the revision a minute earlier was 160.
  assert.equal(t.state.compactions.at(-1), 160);
  assert.ok(t.state.compactions.every((r, i, a) => i === 0 || r > a[i - 1]));
});

Deno.test("compactor: revision mode keeps the last N revisions, every 5 minutes", async () => {
  const t = target();
  const c = new Compactor("revision", 1000, t);
  t.state.rev = 500;
  await c.tick(0);
  assert.deepEqual(t.state.compactions, [], "nothing below zero");
  t.state.rev = 5000;
  await c.tick(1000);
  assert.deepEqual(t.state.compactions, [], "not due before the interval");
  await c.tick(REVISION_MODE_INTERVAL_MS);
  assert.deepEqual(t.state.compactions, [4000]);
  await c.tick(2 * REVISION_MODE_INTERVAL_MS);
  assert.deepEqual(t.state.compactions, [4000], "no repeat without new revisions");
});
