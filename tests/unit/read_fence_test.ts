import assert from "node:assert/strict";
import { createFenceBuffer, ReadFence } from "../../server/raftnode/read_fence.ts";
import { EtcdError } from "../../core/errors.ts";

Deno.test("read fence: a read waits for every acknowledged write to be visible", async () => {
  const sab = createFenceBuffer(3);
  const main = new ReadFence(sab);
  const worker = new ReadFence(sab); // another thread's handle on the same memory
  assert.equal(worker.wait(), undefined, "nothing acknowledged beyond what is visible");
  main.acknowledge(5);
  const pending = worker.wait();
  assert.ok(pending !== undefined);
  let done = false;
  pending.then(() => done = true);
  main.publish(4);
  worker.wake();
  await Promise.resolve();
  assert.equal(done, false, "index 4 visible is not enough for an acknowledged 5");
  main.publish(5);
  assert.equal(worker.visibleIndex, 5);
  worker.wake();
  await pending;
  assert.equal(done, true);
  assert.equal(worker.wait(), undefined);
});

Deno.test("read fence: after a failed commit, waiting reads fail with etcd's stopped error", async () => {
  const sab = createFenceBuffer(1);
  const main = new ReadFence(sab);
  const worker = new ReadFence(sab);
  main.acknowledge(2);
  const pending = worker.wait()!;
  main.fail();
  worker.wake();
  await assert.rejects(pending, (e) => e instanceof EtcdError && e.message.includes("stopped"));
});

Deno.test("read fence: a read index waits until that index is visible; the term and peers are shared", async () => {
  const buffer = createFenceBuffer(5);
  const main = new ReadFence(buffer);
  const other = new ReadFence(buffer);
  assert.equal(other.waitFor(5), undefined, "visible already: no wait");
  const waiting = other.waitFor(8);
  assert.ok(waiting instanceof Promise);
  let done = false;
  waiting.then(() => done = true);
  main.publish(7);
  other.wake();
  await Promise.resolve();
  assert.equal(done, false, "7 is not 8");
  main.publish(8);
  other.wake();
  await waiting;
  assert.equal(done, true);
  main.setTerm(4);
  main.setClustered(true);
  assert.equal(other.term, 4);
  assert.equal(other.clustered, true);
  main.setClustered(false);
  assert.equal(other.clustered, false);
});
